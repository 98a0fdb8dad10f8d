"""End to end on a tiny config: train, translate, evaluate, plot, export, resume."""

import dataclasses
import io
import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf
from conftest import TINY_HPARAMS, TINY_TRAIN_FLAGS, InterruptAt, copy_run
from decisive import MARGIN, greedy_margin, target_ids, text_ids
from fresh_process import python_json

from tftransformer import FastTranslator
from tftransformer.cli import main
from tftransformer.corpus import load_corpus
from tftransformer.data import MAX_TOKENS
from tftransformer.runs.paths import RunDir
from tftransformer.runs.run import Run
from tftransformer.runs.train import TrainSettings, train_run
from tftransformer.runs.translate import translate_all
from tftransformer.translator import Translator, make_translate_fn

LONG_SENTENCE = " ".join(["eu gosto muito de comer pão com manteiga"] * 40)  # > MAX_TOKENS


@pytest.fixture(scope="module")
def run_dir(tiny_run, tmp_path_factory):
    """The session's tiny run (trained once, by `tftransformer train`), copied: tests here
    add exports and plots to it."""
    return copy_run(tiny_run, tmp_path_factory.mktemp("run") / "pt_en")


def test_train_writes_the_run_dir(run_dir, capsys):
    run = RunDir(run_dir)
    for path in (run.config, run.model, run.history, run.tokenizers / "saved_model.pb"):
        assert path.exists(), path
    assert (run.checkpoints / "backup" / "state.weights.h5").exists()
    assert (run.checkpoints / "epoch-001.weights.h5").exists()
    assert any(run.logs.rglob("*tfevents*"))
    history = json.loads(run.history.read_text())
    assert set(history) >= {"loss", "masked_accuracy", "val_loss", "val_masked_accuracy"}
    assert all(len(v) == 1 for v in history.values())
    config = json.loads(run.config.read_text())
    assert config["hparams"]["d_model"] == 16 and config["corpus"] == "embedded"
    assert not [p for p in run_dir.rglob(".*tmp*")]  # no temp files left behind


def test_train_prints_scores_and_examples(tiny_run_printed):
    printed = tiny_run_printed
    assert "Test BLEU" in printed and "chrF" in printed
    assert "greedy decoding" in printed and "beam search: beam 4" in printed
    assert printed.count("Ground truth") == 3


def test_translate_arguments_one_line_each(run_dir, capsys):
    assert main(["translate", str(run_dir), "Bom dia.", "", "Eu gosto de livros."]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert len(lines) == 4 and lines[-1] == ""  # three lines, newline-terminated
    assert lines[1] == ""  # (a one-epoch model's translation of "Bom dia." may be empty too)


def test_translate_decoders_agree_where_they_must(run_dir, capsys):
    inputs = ["Bom dia.", "", "Eu gosto de livros.", "O gato dorme."]
    outputs = {}
    for decode in ("tutorial", "greedy", "beam"):
        extra = ["--no-jit-compile"] if decode == "beam" else []
        argv = ["translate", str(run_dir), *inputs, "--decode", decode, "--max-length", "12"]
        assert main([*argv, *extra]) == 0
        outputs[decode] = capsys.readouterr().out.split("\n")[:-1]
        assert len(outputs[decode]) == 4 and outputs[decode][1] == ""
    # Cached greedy = the tutorial's loop, token for token, on the inputs where the
    # tiny model never nearly ties (where float rounding could pick either token).
    run = Run(run_dir)
    tokenizers, model = run.tokenizers, run.model
    translator = Translator(tokenizers, model)
    decisive = 0
    for i, sentence in enumerate(inputs):
        if not sentence:
            continue
        pieces = translator(tf.constant(sentence), max_length=12)[1].numpy()
        ids = target_ids(tokenizers, [p.decode() for p in pieces])
        if greedy_margin(model, text_ids(tokenizers, sentence), ids) > MARGIN:
            decisive += 1
            assert outputs["greedy"][i] == outputs["tutorial"][i], sentence
    assert decisive >= 2
    assert main(["translate", str(run_dir), "oi", "--decode", "beam", "--beam-size", "1"]) == 0
    assert main(["translate", str(run_dir), "oi", "--alpha", "-1"]) == 2
    assert "--alpha" in capsys.readouterr().err


def test_translate_all_keeps_order_and_batches_by_length():
    seen = []

    def fake(batch):
        seen.append(list(batch))
        return [s.upper() for s in batch]

    sentences = ["ccc", "", "a", "bb", "  ", "dddd", "e"]
    assert translate_all(fake, sentences, batch_size=2) == [
        "CCC", "", "A", "BB", "", "DDDD", "E",
    ]  # fmt: skip
    assert seen == [["a", "e"], ["bb", "ccc"], ["dddd"]]
    seen.clear()
    translate_all(fake, ["x"] * 5, batch_size=4)
    assert [len(batch) for batch in seen] == [3, 2]  # no batch of one left over


def test_each_translation_is_one_output_line_whatever_it_holds():
    from tftransformer.cli.common import as_line

    # SentencePiece spells rare characters as byte pieces, so a translation can hold any
    # character that some reader takes for a line break.
    text = "a\nb\rc\x0bd\x0ce\x1cf\x1dg\x1eh\x85i\u2028j\u2029k\r\nl"
    line = as_line(text)
    assert line.splitlines() == [line] and len(line) == len(text)
    assert io.TextIOWrapper(io.BytesIO((line + "\n").encode())).readlines() == [line + "\n"]
    assert as_line("Não, 세계! 😀") == "Não, 세계! 😀"


def test_translate_stdin_one_line_per_input(run_dir, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Bom dia.\n\nObrigado!\n"))
    assert main(["translate", str(run_dir), "--max-length", "5"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 3 and captured.out.split("\n")[1] == ""


def test_translate_shows_progress_on_stderr_for_long_inputs(run_dir, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Bom dia.\n" * 12))
    assert main(["translate", str(run_dir), "--max-length", "3"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 12 and "12/12" in captured.err


def test_evaluate_scores_and_hypotheses(run_dir, tmp_path, capsys):
    hyps = tmp_path / "hyps.txt"
    args = ["evaluate", str(run_dir), "--limit", "5", "--hypotheses", str(hyps)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "BLEU" in printed
    # Scored as published (raw references, sacrebleu's signature); this SentencePiece run
    # (the default) has no normalized scores: test_sentencepiece checks WordPiece's.
    assert "sacrebleu on raw references: BLEU nrefs:1|case:mixed" in printed
    assert "normalized" not in printed
    written = hyps.read_text(encoding="utf-8").splitlines()
    assert len(written) == 5
    # --hypotheses holds exactly what `translate` prints for the same sentences (the same
    # five, in the same batch, so the very same computation).
    pairs = load_corpus("embedded", "test").take(5).as_numpy_iterator()
    sources = [pt.decode() for pt, _en in pairs]
    assert main(["translate", str(run_dir), *sources]) == 0
    assert capsys.readouterr().out.splitlines() == written


def test_plot_writes_valid_pngs(run_dir, tmp_path, capsys):
    import matplotlib.image

    assert main(["plot", str(run_dir), "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == [
        "attention_head.png",
        "attention_heads.png",
        "history.png",
        "learning_rate.png",
        "positional_encoding.png",
    ]
    for name in names:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(tmp_path / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


@pytest.fixture(scope="module")
def exported(run_dir):
    assert main(["export", str(run_dir)]) == 0
    return RunDir(run_dir).export_root("translator") / "1"


def test_export_layout_and_versions(run_dir, exported, capsys):
    assert (exported / "saved_model.pb").exists()
    assert main(["export", str(run_dir)]) == 0
    assert (exported.parent / "2" / "saved_model.pb").exists()
    capsys.readouterr()
    assert main(["export", str(run_dir), "--version", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    leftovers = [p.name for p in exported.parent.iterdir() if p.name not in ("1", "2")]
    assert leftovers == []


def test_saved_model_cli_lists_the_signature(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "show", "--dir", str(exported), "--tag_set", "serve",
         "--signature_def", "serving_default"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "inputs['sentences']" in result.stdout and "outputs['translations']" in result.stdout
    assert "DT_STRING" in result.stdout and "(-1)" in result.stdout
    loaded = tf.saved_model.load(str(exported))
    assert set(loaded.signatures) == {"serving_default", "beam_search"}


@pytest.mark.slow
def test_export_matches_in_process_translator_in_a_fresh_process(run_dir, exported):
    # Enough sentences that a tiny model has at least two without a near-tie.
    sentences = ["este é o primeiro livro que eu fiz.", "", "Bom dia!", LONG_SENTENCE,
                 "A casa é grande.", "Eu gosto de ler livros.", "O gato dorme no sofá.",
                 "Não gosto de dirigir na cidade grande."]  # fmt: skip
    run = Run(run_dir)
    tokenizers, model = run.tokenizers, run.model
    # serving_default (cached greedy) must give what the tutorial's Translator gives.
    translator = Translator(tokenizers, model)
    translate_fn = make_translate_fn(translator, MAX_TOKENS)
    # The export answers blank input with "" (a deviation; the tutorial's Translator, kept
    # faithful, invents a sentence from [START] [END]).
    expected = [translate_fn(tf.constant(s)).numpy().decode() if s.strip() else ""
                for s in sentences]  # fmt: skip
    # Batched cached greedy equals the tutorial's loop where the model never nearly ties.
    tutorial_pieces = tf.function(
        lambda s: translator(s, max_length=MAX_TOKENS)[1],
        input_signature=[tf.TensorSpec([], tf.string)],
    )
    decisive = []
    for i, sentence in enumerate(sentences):
        pieces = tutorial_pieces(tf.constant(sentence)).numpy()
        ids = target_ids(tokenizers, [p.decode() for p in pieces])
        context = text_ids(tokenizers, sentence, MAX_TOKENS)
        if greedy_margin(model, context, ids) > MARGIN:
            decisive.append(i)
    assert len(decisive) >= 2, decisive
    fast = FastTranslator(tokenizers, model, MAX_TOKENS, jit_compile=False)
    expected_beam = [t.decode() for t in fast.beam_search(sentences, 4, 0.6).numpy()]
    code = f"""
import json, sys
import tensorflow as tf
import tensorflow_text
model = tf.saved_model.load({str(exported)!r})
sentences = tf.constant({sentences!r})
out = model.signatures["serving_default"](sentences=sentences)["translations"]
beam = model.signatures["beam_search"](sentences=sentences)["translations"]
scalar = model(tf.constant({sentences[0]!r}))
assert not any(m.startswith("tftransformer") for m in sys.modules)
texts = [t.decode() for t in out.numpy()] + [scalar.numpy().decode()]
print(json.dumps(texts + [t.decode() for t in beam.numpy()]))
"""
    got = python_json(code)
    assert [got[i] for i in decisive] == [expected[i] for i in decisive]
    # The same graph on the same batch (another process): exactly the same text.
    n = len(sentences)  # got: n greedy rows, the scalar call's answer, n beam rows
    assert got[n] == expected[0] and got[n + 1 :] == expected_beam
    # Blank input: "" from both signatures, as the CLI prints (sentences[1] is "").
    assert got[1] == "" and got[n + 1 + 1] == ""


@pytest.mark.slow
def test_interrupted_training_resumes_where_it_stopped(tmp_path, capsys):
    out = tmp_path / "resume"
    settings = TrainSettings(epochs=3, batch_size=8, limit=24, warmup_steps=10)
    settings.hparams = dataclasses.replace(settings.hparams, **TINY_HPARAMS)  # default dropout
    with pytest.raises(KeyboardInterrupt):
        train_run(out, settings, verbose=0, save_every=2, extra_callbacks=[InterruptAt(1, 2)])
    backup = json.loads((out / "checkpoints" / "backup" / "meta.json").read_text())
    assert backup["epochs_done"] == 1  # epoch 1 done; epoch 2 interrupted after its 3rd step
    first_loss = backup["history"]["loss"][0]
    # The same command again, through the CLI: resumes after epoch 1, not from scratch.
    at = TINY_TRAIN_FLAGS.index("--batch-size") + 1
    flags = [*TINY_TRAIN_FLAGS[:at], "8", *TINY_TRAIN_FLAGS[at + 1 :]]
    assert main(["train", "--out", str(out), "--epochs", "3", *flags]) == 0
    assert "Resuming" in capsys.readouterr().out
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 3 and history["loss"][0] == first_loss
    model = Run(out).model
    # Epoch 1 (3 steps), the 2 steps of epoch 2 in the mid-epoch backup (every 2
    # steps; the third was lost to the interruption), then epochs 2 and 3 again.
    assert int(model.optimizer.iterations.numpy()) == 3 + 2 + 3 + 3


def test_rerun_with_other_settings_is_refused(run_dir, capsys):
    at = TINY_TRAIN_FLAGS.index("--d-model") + 1
    flags = [*TINY_TRAIN_FLAGS[:at], "32", *TINY_TRAIN_FLAGS[at + 1 :]]
    assert main(["train", "--out", str(run_dir), "--epochs", "1", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert "config.json" in err and "hparams" in err and err.count("\n") == 0


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["translate", "/nonexistent/run", "oi"], "no such run directory"),
        (["evaluate", "/nonexistent/run"], "no such run directory"),
        (["train", "--corpus", "bogus", "--out", "{tmp}/r", "--limit", "4"], "bogus"),
        (["train", "--corpus", "tsv:{tmp}/missing.tsv", "--out", "{tmp}/r2"], "missing.tsv"),
        (["train", "--epochs", "0"], "positive integer"),
        (["export", "{tmp}"], "config.json: missing"),
    ],
)
def test_user_errors_are_one_line_exit_2(argv, needle, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "Traceback" not in err and err.count("\n") == 0


def test_python_m_entry_point_and_console_script():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "tftransformer", "translate", "/nonexistent"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2 and "no such run directory" in result.stderr
