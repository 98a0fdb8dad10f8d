"""Bad input to every entry point (issue 9).

Entry points: the Python `Translator` (the tutorial's, traced as the CLI runs
it) and `FastTranslator` (greedy and beam search), the CLI (`translate`,
`classify predict`), and both exported SavedModels (`serving_default`, and
the translator's `beam_search`). Each gets the same hostile strings, a batch
of none, a batch mixing all of them, and the wrong dtype or rank: each returns
a well-formed result of the right shape (input trimmed to MAX_TOKENS tokens)
or raises an error naming the argument at fault. Hypothesis fuzzes the
tokenizer and the exported signatures with arbitrary Unicode and bytes.
"""

import io
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tftransformer import FastTranslator
from tftransformer.cli import main
from tftransformer.runs.run import Run
from tftransformer.tokenizers import RESERVED_TOKENS, load_tokenizers
from tftransformer.translator import Translator, make_translate_fn

# The hostile strings (bytes where Python strings cannot carry them).
BAD_TEXTS = {
    "empty": "",
    "whitespace only": " \t \u3000\u00a0 ",
    "10,000 characters": "a" * 10_000,
    "1,000 words": " ".join(["livro"] * 1_000),  # > MAX_TOKENS tokens
    "invalid UTF-8": b"ol\xe1 \xff\xfe mundo \xc3",
    "emoji / CJK / RTL": "😀👍🏽 你好世界 مرحبا بالعالم שלום",
    "control characters": "a\x00b\x07c\x1b[31md\u200b\u202e\x7f",
}
NORMAL = "este é o primeiro livro que eu fiz."
MIXED_BATCH = [NORMAL, *BAD_TEXTS.values()]
BAD_TEXTS_INDEX = {name: i + 1 for i, name in enumerate(BAD_TEXTS)}  # position in MIXED_BATCH
FUZZ = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,  # the same examples on every run (CI is reproducible)
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
any_text = st.one_of(st.text(max_size=300), st.binary(max_size=300))


def as_bytes(text):
    return text if isinstance(text, bytes) else text.encode("utf-8")


def check_translations(outputs, count, max_tokens=None):
    """`count` valid UTF-8 strings, no reserved token in them, at most `max_tokens` words."""
    if hasattr(outputs, "numpy"):
        outputs = outputs.numpy()
    outputs = [as_bytes(o.numpy() if hasattr(o, "numpy") else o) for o in outputs]
    assert len(outputs) == count
    for output in outputs:
        text = output.decode("utf-8")  # strict: raises on invalid UTF-8
        for token in RESERVED_TOKENS:
            if token != "[UNK]":
                assert token not in text, text
        if max_tokens is not None:
            assert len(text.split()) <= max_tokens
    return outputs


@pytest.fixture(scope="module")
def loaded(tiny_run):
    run = Run(tiny_run)
    return run.settings, run.tokenizers, run.model


def trim_pair(tokenizer):
    """(longer, cut): 200 words, and the same 200 followed by 800 other words.

    Both are longer than MAX_TOKENS tokens, so trimmed alike they are the same input; an
    input trimmed too late (or not at all) also sees the other words. Both words are in
    `tokenizer`'s vocabulary, so they are not both [UNK]. (A trim at 4 * MAX_TOKENS moves a
    classifier's scores by about 0.26: checked.)
    """
    words = [w.decode() for w in tokenizer.vocab.numpy()]
    first, other = [w for w in words if w.isalpha()][:2]
    cut = " ".join([first] * 200)
    return cut + " " + " ".join([other] * 800), cut


@pytest.fixture(scope="module")
def pt_trim_pair(loaded):
    return trim_pair(loaded[1].pt)


# --- Translator (the tutorial's greedy loop) -----------------------------------------------


@pytest.fixture(scope="module")
def translate_fn(loaded):
    _settings, tokenizers, model = loaded
    return make_translate_fn(Translator(tokenizers, model), max_length=12)


@pytest.mark.parametrize("name", sorted(BAD_TEXTS))
def test_translator_bad_strings(translate_fn, name):
    check_translations([translate_fn(tf.constant(BAD_TEXTS[name]))], 1, max_tokens=12)


def test_translator_trims_long_input_to_max_tokens(translate_fn, pt_trim_pair):
    long, cut = (translate_fn(tf.constant(s)).numpy() for s in pt_trim_pair)
    assert long == cut


@pytest.mark.parametrize(
    "sentence, error, needle",
    [
        ("a Python string", TypeError, "sentence must be a scalar tf.string tensor"),
        (tf.constant(3), TypeError, "sentence must be a scalar tf.string tensor"),
        (tf.constant(["a", "b"]), ValueError, "got shape (2,); use FastTranslator"),
        (tf.constant([], tf.string), ValueError, "got shape (0,)"),
        (tf.constant([["a"]]), ValueError, "got shape (1, 1)"),
    ],
)
def test_translator_wrong_type_or_rank(loaded, sentence, error, needle):
    _settings, tokenizers, model = loaded
    with pytest.raises(error) as caught:
        Translator(tokenizers, model)(sentence, max_length=2)
    assert needle in str(caught.value)


# --- FastTranslator ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast(loaded):
    _settings, tokenizers, model = loaded
    return FastTranslator(tokenizers, model, max_length=12, jit_compile=False)


@pytest.fixture(params=["greedy", "beam_search"])
def fast_decode(fast, request):
    return getattr(fast, request.param)


def test_fast_translator_mixed_batch(fast_decode):
    outputs = fast_decode(tf.constant([as_bytes(t) for t in MIXED_BATCH]))
    assert outputs.dtype == tf.string and outputs.shape == [len(MIXED_BATCH)]
    check_translations(outputs, len(MIXED_BATCH), max_tokens=12)
    # Blank input: "" as the CLI prints, not a sentence invented from [START] [END].
    for name in ("empty", "whitespace only"):
        assert outputs[BAD_TEXTS_INDEX[name]].numpy() == b""


def test_fast_translator_with_xla_mixed_batch(loaded):
    """The default (XLA-compiled, padded shapes) path on the same hostile batch."""
    _settings, tokenizers, model = loaded
    fast = FastTranslator(tokenizers, model, max_length=4)
    outputs = fast.greedy(tf.constant([as_bytes(t) for t in MIXED_BATCH]))
    check_translations(outputs, len(MIXED_BATCH), max_tokens=4)


def test_fast_translator_empty_batch(fast_decode):
    outputs = fast_decode(tf.constant([], tf.string))
    assert outputs.dtype == tf.string and outputs.shape == [0]


def test_fast_translator_trims_long_input(fast_decode, pt_trim_pair):
    # One call each: after trimming both are the same (1, MAX_TOKENS) ids, so the very
    # same computation runs and the outputs are equal exactly (in one batch, rows in
    # different positions may round differently and flip a near-tied token).
    long, cut = (fast_decode(tf.constant([s])).numpy() for s in pt_trim_pair)
    assert long == cut


@pytest.mark.parametrize(
    "sentences, error, needle",
    [
        (tf.constant([1, 2]), TypeError, "sentences must be a tf.string tensor, got dtype int32"),
        (tf.constant([["a"]]), ValueError, "sentences must have shape [batch], got (1, 1)"),
        (5, TypeError, "sentences must be strings, got 5"),
        (["a", 3], TypeError, "sentences must be strings"),
        (None, TypeError, "sentences must be strings, got None"),
    ],
)
def test_fast_translator_wrong_type_or_rank(fast_decode, sentences, error, needle):
    with pytest.raises(error) as caught:
        fast_decode(sentences)
    assert needle in str(caught.value)


# --- the CLI -------------------------------------------------------------------------------


def _as_argv(text):
    # What Python makes of command-line bytes: undecodable ones become surrogate escapes.
    return os.fsdecode(text) if isinstance(text, bytes) else text


def test_cli_translate_arguments(tiny_run, capsys):
    # A NUL cannot be in a real argv; main() takes a Python list, so it is tried here too.
    argv = ["translate", "--max-length", "4", str(tiny_run), *map(_as_argv, MIXED_BATCH)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(MIXED_BATCH)  # one line per input
    check_translations([line.encode() for line in lines[:-1]], len(MIXED_BATCH), max_tokens=4)
    assert lines[BAD_TEXTS_INDEX["empty"]] == "" and lines[BAD_TEXTS_INDEX["whitespace only"]] == ""


def _stdin(monkeypatch, texts):
    data = b"".join(as_bytes(t) + b"\n" for t in texts)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_cli_translate_stdin_with_bad_bytes(tiny_run, capsys, monkeypatch):
    _stdin(monkeypatch, MIXED_BATCH)
    assert main(["translate", str(tiny_run), "--max-length", "4"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == len(MIXED_BATCH)


def test_cli_translate_no_input(tiny_run, capsys, monkeypatch):
    _stdin(monkeypatch, [])
    assert main(["translate", str(tiny_run)]) == 0
    assert capsys.readouterr().out == ""


def test_cli_classify_predict_hostile_lines(tiny_classifier_run, capsys, monkeypatch):
    _stdin(monkeypatch, MIXED_BATCH)
    assert main(["classify", "predict", str(tiny_classifier_run)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == len(MIXED_BATCH)
    argv = ["classify", "predict", str(tiny_classifier_run), *map(_as_argv, MIXED_BATCH)]
    assert main(argv) == 0
    assert capsys.readouterr().out.count("\n") == len(MIXED_BATCH)


def test_cli_usage_error_with_undecodable_argument(capsys):
    argv = ["translate", "run", "--max-length", "4", os.fsdecode(b"ol\xe1")]  # extra positional
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "unrecognized arguments" in err and "ol\\udce1" in err and err.count("\n") == 0


@pytest.mark.parametrize("value", ["0", "-3", "x", "1e9999"])
def test_cli_bad_max_length(tiny_run, capsys, value):
    assert main(["translate", str(tiny_run), "--max-length", value, "oi"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--max-length" in err and value in err and err.count("\n") == 0


# --- exported SavedModels ------------------------------------------------------------------


@pytest.fixture(scope="module")
def translator_export(tiny_translator_export):
    return tf.saved_model.load(str(tiny_translator_export))


@pytest.fixture(scope="module")
def classifier_export(tiny_classifier_export):
    return tf.saved_model.load(str(tiny_classifier_export))


@pytest.fixture(params=["serving_default", "beam_search"])
def translate_signature(translator_export, request):
    return translator_export.signatures[request.param]


def test_exported_translator_mixed_batch(translate_signature):
    out = translate_signature(sentences=tf.constant([as_bytes(t) for t in MIXED_BATCH]))
    translations = out["translations"]
    assert translations.dtype == tf.string and translations.shape == [len(MIXED_BATCH)]
    check_translations(translations, len(MIXED_BATCH), max_tokens=128)


def test_exported_translator_empty_batch_and_truncation(translate_signature, pt_trim_pair):
    assert translate_signature(sentences=tf.constant([], tf.string))["translations"].shape == [0]
    # One request each, so the very same computation runs (see the FastTranslator test).
    long, cut = (translate_signature(sentences=tf.constant([s]))["translations"].numpy()
                 for s in pt_trim_pair)  # fmt: skip
    assert long == cut


def _classifier_checks(out, count, labels):
    scores, names, predicted = (out[k].numpy() for k in ("scores", "labels", "predicted"))
    assert scores.shape == names.shape == predicted.shape == (count, len(labels))
    assert scores.dtype == np.float32 and predicted.dtype == bool
    assert np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()
    assert all(list(row) == labels for row in names)
    np.testing.assert_array_equal(predicted, scores >= 0.5)


@pytest.fixture(scope="module")
def label_names(tiny_classifier_run):
    names = (tiny_classifier_run / "labels.txt").read_text(encoding="utf-8").split()
    return [n.encode() for n in names]


def test_exported_classifier_mixed_and_empty_batch(
    classifier_export, label_names, tiny_classifier_run
):
    classify = classifier_export.signatures["serving_default"]
    out = classify(texts=tf.constant([as_bytes(t) for t in MIXED_BATCH]))
    _classifier_checks(out, len(MIXED_BATCH), label_names)
    _classifier_checks(classify(texts=tf.constant([], tf.string)), 0, label_names)
    # Trimmed alike (see `trim_pair`). Two rows of one batch may differ in the last float32
    # bits (oneDNN blocks rows differently), about 1e-7; a wrong trim moves them by > 1e-3.
    tokenizer = load_tokenizers(tiny_classifier_run / "tokenizer").text
    out = classify(texts=tf.constant(trim_pair(tokenizer)))
    np.testing.assert_allclose(out["scores"][0], out["scores"][1], rtol=0, atol=1e-6)




def _signature(export, which, translator_export, classifier_export):
    if which == "translator":
        return translator_export.signatures["serving_default"], "sentences"
    return classifier_export.signatures["serving_default"], "texts"


@pytest.mark.parametrize("which", ["translator", "classifier"])
@pytest.mark.parametrize(
    "value, error, needle",
    [
        (tf.constant([1, 2]), tf.errors.InvalidArgumentError, "expected to be a string tensor"),
        (tf.constant([1.5]), tf.errors.InvalidArgumentError, "expected to be a string tensor"),
        (tf.constant([["a"]]), tf.errors.InvalidArgumentError, "must_have_shape_batch"),
        (tf.constant("one"), tf.errors.InvalidArgumentError, "must_have_shape_batch"),
        ("one", TypeError, "Can not cast TensorSpec(shape=(), dtype=tf.string"),
    ],
)
def test_exported_signatures_reject_wrong_dtype_or_rank(
    which, value, error, needle, translator_export, classifier_export
):
    function, name = _signature(None, which, translator_export, classifier_export)
    with pytest.raises(error) as caught:
        function(**{name: value})
    assert needle in str(caught.value)
    if error is tf.errors.InvalidArgumentError and "shape" in needle:
        assert "is not compatible with expected shape [?]" in str(caught.value)


# --- Hypothesis: arbitrary Unicode and bytes ------------------------------------------------


@pytest.fixture(scope="module")
def run_tokenizers(tiny_run):
    return load_tokenizers(tiny_run / "tokenizers")


@FUZZ
@given(texts=st.lists(any_text, max_size=4))
def test_fuzz_tokenize_is_framed_and_in_vocabulary(run_tokenizers, texts):
    for tokenizer in (run_tokenizers.pt, run_tokenizers.en):
        ids = tokenizer.tokenize(tf.constant([as_bytes(t) for t in texts], tf.string))
        assert ids.shape[0] == len(texts)
        size = int(tokenizer.get_vocab_size())
        for row in ids.to_list():
            assert row[0] == 2 and row[-1] == 3 and all(0 <= i < size for i in row)
        check_translations(tokenizer.detokenize(ids), len(texts))


@FUZZ
@given(data=st.data())
def test_fuzz_round_trip_of_vocabulary_words(run_tokenizers, data):
    """Whole words of the vocabulary, joined by spaces, come back exactly."""
    vocab = [w.decode() for w in run_tokenizers.en.vocab.numpy()]
    if any(w.startswith("\u2581") for w in vocab):  # SentencePiece: "\u2581word" starts a word
        words = [w[1:] for w in vocab if w.startswith("\u2581") and len(w) > 1]
    else:  # WordPiece: "##" continues one
        words = [w for w in vocab if w not in RESERVED_TOKENS and not w.startswith("##")]
    chosen = data.draw(st.lists(st.sampled_from(words), min_size=1, max_size=12))
    text = " ".join(chosen)
    ids = run_tokenizers.en.tokenize(tf.constant([text]))
    assert run_tokenizers.en.detokenize(ids).numpy()[0].decode() == text


@FUZZ
@given(texts=st.lists(any_text, max_size=3))
def test_fuzz_exported_classifier(classifier_export, label_names, texts):
    out = classifier_export.signatures["serving_default"](
        texts=tf.constant([as_bytes(t) for t in texts], tf.string)
    )
    _classifier_checks(out, len(texts), label_names)


@settings(FUZZ, max_examples=4)
@given(texts=st.lists(any_text, max_size=2))
def test_fuzz_exported_translator(translator_export, texts):
    out = translator_export.signatures["serving_default"](
        sentences=tf.constant([as_bytes(t) for t in texts], tf.string)
    )
    check_translations(out["translations"], len(texts), max_tokens=128)


@FUZZ
@given(texts=st.lists(any_text, max_size=4))
def test_fuzz_fast_translator(fast, texts):
    batch = tf.constant([as_bytes(t) for t in texts], tf.string)
    check_translations(fast.greedy(batch), len(texts), max_tokens=12)
    check_translations(fast.beam_search(batch, beam_size=2), len(texts), max_tokens=12)


def test_blank_is_what_python_strips():
    # The CLI skips `not sentence.strip()`; the graph's BLANK pattern must agree on every
    # character of the Basic Multilingual Plane (surrogates aside).
    from tftransformer.inference.fast_translator import BLANK

    chars = [chr(c) for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    matched = tf.strings.regex_full_match(tf.constant(chars), BLANK).numpy()
    assert [c for c, m in zip(chars, matched, strict=True) if m != c.isspace()] == []
