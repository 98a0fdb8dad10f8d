"""The LiteRT export: built-in ops plus tf-text's kernels only, the same greedy ids as
`FastTranslator`, one well-formed row per hostile input, and one-line errors."""

import json
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf
from conftest import copy_run
from decisive import decisive_rows
from fresh_process import python_json
from test_reliability_inputs import BAD_TEXTS

from tftransformer import FastTranslator
from tftransformer.cli import main
from tftransformer.corpus import load_corpus
from tftransformer.inference.litert import TF_TEXT_OPS, LiteRTTranslator, op_names
from tftransformer.runs.export import litert_path
from tftransformer.runs.paths import RunDir
from tftransformer.runs.run import Run

pytest.importorskip("ai_edge_litert")
text = pytest.importorskip("tensorflow_text")

# What a user's program on the device side needs: the interpreter, tf-text's kernels, numpy.
# (This is also the docs' minimal Python example: docs/on-device.md.)
FRESH_TRANSLATE = """
import json, sys
import numpy as np
from ai_edge_litert.interpreter import InterpreterWithCustomOps
from tensorflow_text import tflite_registrar

interpreter = InterpreterWithCustomOps(
    custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS, model_path=sys.argv[1])
interpreter.allocate_tensors()
(sentence,) = interpreter.get_input_details()
translation, ids = interpreter.get_output_details()
found = []
for line in json.loads(sys.argv[2]):
    interpreter.set_tensor(sentence["index"], np.array([line.encode()], dtype=object))
    interpreter.invoke()
    found.append([interpreter.get_tensor(translation["index"])[0].decode(),
                  interpreter.get_tensor(ids["index"]).tolist()])
print(json.dumps([found, sorted(m for m in sys.modules if m.startswith("tftransformer"))]))
"""


def _sentences(n):
    return [pt.decode() for pt, _ in load_corpus("embedded", "test").take(n).as_numpy_iterator()]


@pytest.fixture(scope="module")
def litert_run(tiny_run, tmp_path_factory):
    run_dir = copy_run(tiny_run, tmp_path_factory.mktemp("litert") / "run")
    assert main(["export", str(run_dir), "--format", "litert"]) == 0
    return run_dir


def test_the_file_uses_built_in_ops_and_the_tf_text_kernels_only(litert_run, capsys):
    path = litert_path(RunDir(litert_run))
    ops = op_names(path.read_bytes())
    assert ops["custom"] == sorted(TF_TEXT_OPS)  # no Select-TF ("Flex") op, nothing else
    assert {"WHILE", "DYNAMIC_UPDATE_SLICE", "FULLY_CONNECTED"} <= set(ops["builtin"])
    assert "SCATTER_ND" not in ops["builtin"]


def test_greedy_ids_equal_fast_translators_in_a_fresh_process(litert_run):
    run = Run(litert_run)
    sentences = _sentences(32)
    path = litert_path(run.dir)
    # The fresh process imports the interpreter and tf-text only, never tftransformer.
    found, modules = python_json(FRESH_TRANSLATE, str(path), json.dumps(sentences))
    assert modules == []
    ours = FastTranslator(run.tokenizers, run.model).greedy_ids(sentences, run.max_tokens)
    ids, lengths = ours["ids"].numpy(), ours["lengths"].numpy()
    ours = [list(row[: n + 1]) for row, n in zip(ids, lengths, strict=True)]
    # Compare where the fast tokenizer reads the sentence as the run's own tokenizer does
    # (every character in the vocabulary) and no step nearly ties.
    fast = text.FastSentencepieceTokenizer(
        open(run.tokenizers.pt.get_vocab_path().numpy().decode(), "rb").read()
    )
    contexts = run.tokenizers.pt.tokenize(tf.constant(sentences)).to_tensor().numpy()
    same_pieces = [
        i for i, s in enumerate(sentences)
        if fast.tokenize([s]).flat_values.numpy().tolist()
        == run.tokenizers.pt.tokenize(tf.constant([s])).flat_values.numpy()[1:-1].tolist()
    ]  # fmt: skip
    # (The tiny run learned its vocabulary from 24 sentences, so many test sentences hold a
    # character it lacks, which the fast tokenizer reads as [UNK]: see the next test.)
    decisive = set(decisive_rows(run.model, contexts, ours)) & set(same_pieces)
    assert len(decisive) >= 6, f"too few rows to compare: {len(decisive)}"
    for i in decisive:
        row = found[i][1]
        assert row[: len(ours[i])] == [int(t) for t in ours[i]], sentences[i]
        assert not any(row[len(ours[i]) :]), "ids after [END] are padding"
        pieces = run.tokenizers.en.lookup(tf.constant([ours[i]], tf.int64)).numpy()[0]
        if not any(p.startswith(b"<0x") for p in pieces):  # byte pieces: see the next test
            expected = run.tokenizers.en.detokenize(tf.constant([ours[i]], tf.int64))[0]
            assert found[i][0] == expected.numpy().decode()


def test_hostile_inputs_give_one_row_each_and_blank_gives_empty(litert_run):
    translator = LiteRTTranslator(litert_path(RunDir(litert_run)))
    inputs = list(BAD_TEXTS.values())
    found = translator.translate(inputs)
    assert len(found) == len(inputs) and all(isinstance(t, str) for t in found)
    for name, value in BAD_TEXTS.items():
        value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        blank = not value.strip()
        assert (found[list(BAD_TEXTS).index(name)] == "") == blank, name
    # The file itself answers a sentence of word boundaries only with "" (no step runs).
    for blank in ("", "   ", " \t\n \u3000"):
        out = translator.run(blank)
        assert out["translation"] == "" and out["ids"].tolist() == [2] + [0] * (len(out["ids"]) - 1)


def test_a_character_the_vocabulary_lacks_is_one_unk_in_and_byte_pieces_drop_out(litert_run):
    """The on-device tokenizer's documented difference from the SavedModel's."""
    run = Run(litert_run)
    fast = text.FastSentencepieceTokenizer(
        open(run.tokenizers.pt.get_vocab_path().numpy().decode(), "rb").read()
    )
    snowman = "bom ☃ dia"  # U+2603: in no training sentence
    classic = run.tokenizers.pt.tokenize(tf.constant([snowman])).flat_values.numpy()[1:-1]
    looked_up = run.tokenizers.pt.lookup(tf.constant([classic], tf.int64)).numpy()[0]
    pieces = [p.decode() for p in looked_up]
    byte_pieces = [i for i, p in enumerate(pieces) if p.startswith("<0x")]
    assert len(byte_pieces) == 3  # the SavedModel spells it in its three UTF-8 bytes
    on_device = fast.tokenize([snowman]).flat_values.numpy().tolist()
    expected = [int(t) for t in classic[: byte_pieces[0]]] + [1]
    expected += [int(t) for t in classic[byte_pieces[-1] + 1 :]]
    assert on_device == expected  # ... the file reads it as one [UNK] (id 1)
    en_fast = text.FastSentencepieceTokenizer(
        open(run.tokenizers.en.get_vocab_path().numpy().decode(), "rb").read()
    )
    ids = run.tokenizers.en.tokenize(tf.constant(["ok ☃"])).flat_values.numpy()[1:-1]
    assert run.tokenizers.en.detokenize(tf.constant([ids], tf.int64)).numpy()[0].decode() == "ok ☃"
    assert en_fast.detokenize([ids.astype("int32")]).numpy()[0].decode().strip() == "ok"
    assert isinstance(LiteRTTranslator(litert_path(run.dir)).translate([snowman])[0], str)


@pytest.mark.slow
def test_exporting_twice_gives_the_same_file_and_int8_is_smaller(litert_run, tmp_path):
    # Two `tftransformer export` commands, as a user runs them (one process each: inside one
    # process, Keras numbers its name scopes on, and tensor names would differ).
    files = []
    for name in ("first", "second"):
        run = copy_run(litert_run, tmp_path / name)
        shutil.rmtree(run / "export", ignore_errors=True)  # copy_run may leave it out
        subprocess.run([sys.executable, "-m", "tftransformer", "export", str(run), "--format",
                        "litert"], check=True, capture_output=True, timeout=600)  # fmt: skip
        files.append(litert_path(RunDir(run)).read_bytes())
    assert files[0] == files[1]
    again = tmp_path / "first"
    assert main(["export", str(again), "--format", "litert", "--quantization", "dynamic-int8"]) == 0
    int8 = litert_path(RunDir(again), "dynamic-int8")
    assert int8.stat().st_size < len(files[0])
    assert len(LiteRTTranslator(int8).translate(_sentences(2))) == 2


def test_translate_engine_litert(litert_run, tmp_path, capsys):
    assert main(["translate", str(litert_run), _sentences(1)[0], " ", "--engine", "litert"]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert lines[0] and lines[1] == "" and lines[2:] == [""]
    bare = copy_run(litert_run, tmp_path / "bare")
    shutil.rmtree(bare / "export", ignore_errors=True)
    assert main(["translate", str(bare), "bom dia", "--engine", "litert"]) == 2
    err = capsys.readouterr().err
    assert "--format litert` first" in err and err.count("\n") == 1
    assert main(["translate", str(bare), "x", "--engine", "litert", "--decode", "beam"]) == 2
    assert "greedily only" in capsys.readouterr().err


def test_bad_runs_fail_in_one_line_naming_the_file(tiny_run, tmp_path, capsys):
    missing = copy_run(tiny_run, tmp_path / "missing")
    (missing / "model.keras").unlink()
    assert main(["export", str(missing), "--format", "litert"]) == 2
    err = capsys.readouterr().err
    assert "model.keras" in err and err.count("\n") == 1
    corrupt = copy_run(tiny_run, tmp_path / "corrupt")
    (corrupt / "model.keras").write_bytes(b"not a zip file")
    assert main(["export", str(corrupt), "--format", "litert"]) == 2
    err = capsys.readouterr().err
    assert "model.keras" in err and err.count("\n") == 1
    assert not (corrupt / "export" / "litert").exists()


@pytest.mark.slow
def test_a_wordpiece_run_is_refused_in_one_line(tiny_wordpiece_training, tmp_path, capsys):
    out = copy_run(tiny_wordpiece_training[0], tmp_path / "wordpiece")
    assert main(["export", str(out), "--format", "litert"]) == 2
    err = capsys.readouterr().err
    assert "wordpiece run cannot be exported for LiteRT" in err and err.count("\n") == 1
    assert not (out / "export" / "litert").exists()
