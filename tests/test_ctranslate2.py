"""The CTranslate2 conversion: the same greedy ids as `FastTranslator`, and `export --format`."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, copy_run
from decisive import decisive_rows

from tftransformer import FastTranslator, Transformer, TransformerConfig
from tftransformer.cli import main
from tftransformer.corpus import load_corpus
from tftransformer.inference.ctranslate2_converter import (
    ConversionError,
    convert,
    source_tokens,
    translate,
    vocabulary,
)
from tftransformer.runs.run import Run

ctranslate2 = pytest.importorskip("ctranslate2")
MAX_LENGTH = 24


def _sentences(n):
    return [pt.decode() for pt, _ in load_corpus("embedded", "test").take(n).as_numpy_iterator()]


def ctranslate2_ids(model_dir, tokenizers, sentences, max_length=MAX_LENGTH):
    """Greedy ids from CTranslate2, framed like FastTranslator's: [START] ... [END]."""
    translator = ctranslate2.Translator(str(model_dir), device="cpu", intra_threads=2)
    # CTranslate2 forbids [END] as the first token unless told (min_decoding_length=1);
    # FastTranslator, as the tutorial, may stop at once.
    results = translator.translate_batch(source_tokens(tokenizers.pt, sentences), beam_size=1,
                                         max_decoding_length=max_length,
                                         min_decoding_length=0)  # fmt: skip
    index = {piece: i for i, piece in enumerate(vocabulary(tokenizers.en))}
    rows = []
    for result in results:
        ids = [index[piece] for piece in result.hypotheses[0]]
        rows.append([2, *ids, *([3] if len(ids) < max_length else [])])
    return rows


def fast_ids(model, tokenizers, sentences, max_length=MAX_LENGTH):
    found = FastTranslator(tokenizers, model).greedy_ids(sentences, max_length)
    ids, lengths = found["ids"].numpy(), found["lengths"].numpy()
    return [list(row[: length + 1]) for row, length in zip(ids, lengths, strict=True)]


def _assert_same_greedy_ids(model, tokenizers, model_dir, sentences):
    ours = fast_ids(model, tokenizers, sentences)
    theirs = ctranslate2_ids(model_dir, tokenizers, sentences)
    contexts = tokenizers.pt.tokenize(np.array(sentences)).to_tensor().numpy()
    decisive = decisive_rows(model, contexts, ours)
    assert len(decisive) >= len(sentences) // 2, "too few rows without near-ties to compare"
    for i in decisive:
        assert [int(t) for t in theirs[i]] == [int(t) for t in ours[i]], sentences[i]


def test_converted_weights_decode_the_same_greedy_ids(tokenizers, tmp_path):
    keras.utils.set_random_seed(3)
    model = Transformer.from_hparams(
        TransformerConfig(**TINY),
        input_vocab_size=int(tokenizers.pt.get_vocab_size()),
        target_vocab_size=int(tokenizers.en.get_vocab_size()),
    )
    model.build(((None, None), (None, None)))
    convert(model, tokenizers, tmp_path / "ct2")
    assert (tmp_path / "ct2" / "model.bin").exists()
    config = json.loads((tmp_path / "ct2" / "config.json").read_text())
    assert config["layer_norm_epsilon"] == 1e-3 and config["decoder_start_token"] == "[START]"
    _assert_same_greedy_ids(model, tokenizers, tmp_path / "ct2", _sentences(16))


def test_a_wrong_vocabulary_is_refused(tokenizers, tmp_path):
    model = Transformer.from_hparams(TransformerConfig(num_layers=1, d_model=8, dff=8,
                                                       num_heads=1),
                                     input_vocab_size=11, target_vocab_size=13)  # fmt: skip
    model.build(((None, None), (None, None)))
    with pytest.raises(ConversionError, match="do not match the model's 11/13"):
        convert(model, tokenizers, tmp_path / "ct2")
    with pytest.raises(ConversionError, match="quantization"):
        convert(model, tokenizers, tmp_path / "ct2", quantization="int4")
    assert not (tmp_path / "ct2").exists()


def test_export_format_ctranslate2_float32_and_int8(tiny_run, tmp_path, capsys):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    for quantization in ("float32", "int8"):
        args = ["export", str(run_dir), "--format", "ctranslate2", "--quantization", quantization]
        assert main(args) == 0
        path = run_dir / "export" / "ctranslate2" / quantization
        assert capsys.readouterr().out.strip() == str(path)
        assert (path / "model.bin").exists()
    run = Run(run_dir)
    sentences = _sentences(8)
    exact = ctranslate2_ids(run_dir / "export/ctranslate2/float32", run.tokenizers, sentences)
    ours = fast_ids(run.model, run.tokenizers, sentences)
    contexts = run.tokenizers.pt.tokenize(np.array(sentences)).to_tensor().numpy()
    decisive = decisive_rows(run.model, contexts, ours)
    assert decisive, "no row without near-ties to compare"
    for i in decisive:
        assert exact[i] == [int(t) for t in ours[i]]
    # The package-level translate: the same ids, detokenized; blank sentences give "".
    translator = ctranslate2.Translator(str(run_dir / "export/ctranslate2/float32"), device="cpu")
    texts = translate(translator, run.tokenizers, [sentences[0], " \t", "", sentences[1]],
                      max_length=MAX_LENGTH)  # fmt: skip
    expected = run.tokenizers.en.detokenize(tf.ragged.constant(exact[:2], tf.int64)).numpy()
    assert texts == [expected[0].decode(), "", "", expected[1].decode()]
    assert texts[0] and texts[3]
    assert translate(translator, run.tokenizers, []) == []
    rough = ctranslate2_ids(run_dir / "export/ctranslate2/int8", run.tokenizers, sentences)
    assert len(rough) == len(sentences) and all(row[0] == 2 for row in rough)
    # Quantized: smaller (a tiny model is mostly its float embeddings, so not 4x).
    sizes = {q: (run_dir / "export/ctranslate2" / q / "model.bin").stat().st_size
             for q in ("float32", "int8")}  # fmt: skip
    assert sizes["int8"] < 0.9 * sizes["float32"]


def test_export_flag_mismatches_are_named(tiny_run, tmp_path, capsys):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    assert main(["export", str(run_dir), "--format", "ctranslate2", "--version", "2"]) == 2
    assert "--version is for --format savedmodel" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--quantization", "int8"]) == 2
    assert "--quantization int8 is not for --format savedmodel" in capsys.readouterr().err
