"""TransformerClassifier: multi-label and multi-class, learned, masked, exported."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from fresh_process import python_json

from tftransformer.classification.metrics import f1_scores
from tftransformer.classification.model import TransformerClassifier, classifier_loss_and_metrics
from tftransformer.classification.serving_classifier import ExportClassifier, tokenize_texts
from tftransformer.export import save_servable
from tftransformer.runs.classify import ClassifySettings, build_text_tokenizer
from tftransformer.tokenizers import load_tokenizers

FILLER = "the a of to and in is it that was for on with as at by this from or have".split()
KEYWORDS = {"fruit": ["apple", "banana"], "water": ["river", "ocean"], "sky": ["cloud", "star"]}


def synthetic(n, seed, multilabel):
    """Texts whose labels are exactly the keyword groups they contain."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        words = list(rng.choice(FILLER, size=rng.integers(3, 8)))
        if multilabel:
            present = [k for k in KEYWORDS if rng.random() < 0.45]
        else:
            present = [list(KEYWORDS)[rng.integers(3)]]
        for key in present:
            words.insert(rng.integers(len(words) + 1), rng.choice(KEYWORDS[key]))
        texts.append(" ".join(words))
        labels.append(present)
    return texts, labels


@pytest.fixture(scope="module")
def text_tokenizer(tmp_path_factory):
    texts, _ = synthetic(300, 0, True)
    settings = ClassifySettings(min_token_count=1)
    path = tmp_path_factory.mktemp("tok") / "tokenizer"
    build_text_tokenizer(texts, settings, path)
    return load_tokenizers(path).text


def _train(tokenizer, mode):
    multilabel = mode == "multilabel"
    names = sorted(KEYWORDS)
    train_texts, train_labels = synthetic(600, 1, multilabel)
    if multilabel:
        y = np.array([[k in ls for k in names] for ls in train_labels], "float32")
    else:
        y = np.array([names.index(ls[0]) for ls in train_labels], "int64")
    x = tokenize_texts(tokenizer, tf.constant(train_texts), 32)
    model = TransformerClassifier(
        num_layers=1, d_model=16, num_heads=2, dff=32, dropout_rate=0.0,
        vocab_size=tokenizer.get_vocab_size(), num_labels=3, mode=mode,
    )  # fmt: skip
    loss, metrics = classifier_loss_and_metrics(mode, 3)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss, metrics=metrics)
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def multilabel_model(text_tokenizer):
    return _train(text_tokenizer, "multilabel")


@pytest.fixture(scope="module")
def multiclass_model(text_tokenizer):
    return _train(text_tokenizer, "multiclass")


def _held_out(tokenizer, multilabel):
    texts, labels = synthetic(200, 99, multilabel)
    return texts, labels, tokenize_texts(tokenizer, tf.constant(texts), 32)


def test_multilabel_learns_the_keyword_rule(multilabel_model, text_tokenizer):
    texts, labels, x = _held_out(text_tokenizer, True)
    scores = np.asarray(multilabel_model.scores(multilabel_model(x, training=False)))
    truth = np.array([[k in ls for k in sorted(KEYWORDS)] for ls in labels])
    predicted = np.asarray(multilabel_model.predicted(scores))
    assert f1_scores(truth, predicted)["micro_f1"] >= 0.95
    # Independent sigmoids: rows need not sum to 1; rows with no label exist.
    assert np.any(np.abs(scores.sum(1) - 1) > 0.3) and np.any(~predicted.any(1))


def test_multiclass_softmax_sums_to_one_and_learns(multiclass_model, text_tokenizer):
    texts, labels, x = _held_out(text_tokenizer, False)
    scores = np.asarray(multiclass_model.scores(multiclass_model(x, training=False)))
    np.testing.assert_allclose(scores.sum(1), 1.0, rtol=1e-5)
    predicted = np.asarray(multiclass_model.predicted(scores))
    assert np.all(predicted.sum(1) == 1)
    accuracy = np.mean(scores.argmax(1) == [sorted(KEYWORDS).index(ls[0]) for ls in labels])
    assert accuracy >= 0.95


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padding_does_not_change_predictions(text_tokenizer, pooling):
    model = TransformerClassifier(
        num_layers=2, d_model=16, num_heads=2, dff=32,
        vocab_size=text_tokenizer.get_vocab_size(), num_labels=3, pooling=pooling,
    )  # fmt: skip
    x = tokenize_texts(
        text_tokenizer, tf.constant(["the apple", "a river of stars and clouds"]), 32
    )
    padded = tf.pad(x, [[0, 0], [0, 9]])
    np.testing.assert_allclose(model(x, training=False), model(padded, training=False), atol=1e-5)


def test_keras_round_trip(multilabel_model, text_tokenizer, tmp_path):
    x = tokenize_texts(text_tokenizer, tf.constant(["the apple in the river"]), 32)
    multilabel_model.save(tmp_path / "c.keras")
    restored = keras.models.load_model(tmp_path / "c.keras")
    assert restored.get_config() == multilabel_model.get_config()
    np.testing.assert_array_equal(restored(x, training=False), multilabel_model(x, training=False))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mode"):
        TransformerClassifier(num_layers=1, d_model=8, num_heads=1, dff=8, vocab_size=9,
                              num_labels=2, mode="multi")  # fmt: skip
    with pytest.raises(ValueError, match="threshold"):
        TransformerClassifier(num_layers=1, d_model=8, num_heads=1, dff=8, vocab_size=9,
                              num_labels=2, threshold=1.5)  # fmt: skip


@pytest.mark.parametrize("mode", ["multilabel", "multiclass"])
def test_export_in_a_fresh_process(mode, request, text_tokenizer, tmp_path):
    model = request.getfixturevalue(f"{mode}_model")
    module = ExportClassifier(text_tokenizer, model, sorted(KEYWORDS), max_tokens=32)
    path = save_servable(module, tmp_path / "classifier", {"serving_default": module.classify})
    texts = ["the apple in the river", "", " ".join(["banana star"] * 600), "cloud"]
    x = tokenize_texts(text_tokenizer, tf.constant(texts), 32)
    eager = np.asarray(model.scores(model(x, training=False)))
    expected = module.classify(tf.constant(texts))["scores"].numpy()  # the exported graph
    np.testing.assert_allclose(expected, eager, atol=1e-6)
    code = f"""
import json, sys
import tensorflow as tf
import tensorflow_text
model = tf.saved_model.load({str(path)!r})
fn = model.signatures["serving_default"]
out = fn(texts=tf.constant({texts!r}))
empty = fn(texts=tf.constant([], tf.string))
assert not any(m.startswith("tftransformer") for m in sys.modules)
print(json.dumps({{
    "scores": out["scores"].numpy().tolist(),
    "labels": [[l.decode() for l in row] for row in out["labels"].numpy()],
    "predicted": out["predicted"].numpy().tolist(),
    "dtypes": [out[k].dtype.name for k in ("scores", "labels", "predicted")],
    "empty": [list(empty[k].shape) for k in ("scores", "labels", "predicted")],
}}))
"""
    got = python_json(code)
    # Another process may pick other kernels or thread blocking: equal within float32
    # rounding (scores lie in [0, 1]; a wrong tokenizer or weight moves them by > 1e-3).
    got_scores = np.array(got["scores"], "float32")
    np.testing.assert_allclose(got_scores, expected, rtol=0, atol=1e-6)
    assert got["labels"] == [sorted(KEYWORDS)] * 4
    if mode == "multilabel":
        assert got["predicted"] == (got_scores >= 0.5).tolist()
    else:
        np.testing.assert_allclose(np.sum(got["scores"], axis=1), 1.0, rtol=1e-5)
        assert got["predicted"] == (got_scores == got_scores.max(1, keepdims=True)).tolist()
    assert got["dtypes"] == ["float32", "string", "bool"]
    assert got["empty"] == [[0, 3], [0, 3], [0, 3]]


def test_f1_scores_hand_computed():
    truth = np.array([[1, 0], [1, 1], [0, 1]], bool)
    pred = np.array([[1, 0], [0, 1], [1, 1]], bool)
    scores = f1_scores(truth, pred)
    # label 0: tp 1 fp 1 fn 1 -> 0.5; label 1: tp 2 fp 0 fn 0 -> 1.0
    assert scores["macro_f1"] == pytest.approx(0.75)
    assert scores["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert json.dumps(scores)


def test_classify_defaults_to_sentencepiece_and_old_runs_read_as_wordpiece():
    assert ClassifySettings().tokenizer == "sentencepiece"
    old = ClassifySettings().to_json()
    old.pop("tokenizer")  # a config.json from before the setting: WordPiece, the default then
    assert ClassifySettings.from_json(old, "config.json").tokenizer == "wordpiece"


def test_classifier_fit_runs_dropout():
    # As for the Transformer: with a zero learning rate fit's loss differs from evaluate's
    # only if dropout ran in fit.
    keras.utils.set_random_seed(0)
    ids = np.random.default_rng(0).integers(1, 40, (8, 9))
    labels = np.arange(8) % 3
    model = TransformerClassifier(
        num_layers=1, d_model=16, num_heads=2, dff=32, dropout_rate=0.3, vocab_size=40,
        num_labels=3,
    )  # fmt: skip
    loss, _metrics = classifier_loss_and_metrics("multiclass", 3)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    fitted = model.fit(ids, labels, batch_size=8, verbose=0).history["loss"][0]
    assert abs(fitted - model.evaluate(ids, labels, batch_size=8, verbose=0)) > 1e-3
