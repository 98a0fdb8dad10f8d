"""The course's other classifiers: LSTM/GRU and one-vs-rest logistic regression on TF-IDF.

Learned (the synthetic keyword task of test_classifier.py), masked, matched
against scikit-learn, saved, and exported like `TransformerClassifier`.
"""


import keras
import numpy as np
import pytest
import tensorflow as tf
from fresh_process import python_json
from test_classifier import KEYWORDS, synthetic

from tftransformer.classification.linear import LinearClassifier, TfIdf, l2_for
from tftransformer.classification.metrics import f1_scores
from tftransformer.classification.model import classifier_loss_and_metrics
from tftransformer.classification.recurrent import RecurrentClassifier
from tftransformer.classification.serving_classifier import ExportClassifier, tokenize_texts
from tftransformer.export import save_servable
from tftransformer.runs.classify import ClassifySettings, build_text_tokenizer
from tftransformer.tokenizers import load_tokenizers

NAMES = sorted(KEYWORDS)


@pytest.fixture(scope="module")
def text_tokenizer(tmp_path_factory):
    texts, _ = synthetic(300, 0, True)
    path = tmp_path_factory.mktemp("tok") / "tokenizer"
    build_text_tokenizer(texts, ClassifySettings(min_token_count=1), path)
    return load_tokenizers(path).text


def _data(tokenizer, n, seed, mode):
    texts, labels = synthetic(n, seed, mode == "multilabel")
    if mode == "multilabel":
        y = np.array([[k in ls for k in NAMES] for ls in labels], "float32")
    else:
        y = np.array([NAMES.index(ls[0]) for ls in labels], "int64")
    return texts, y, tokenize_texts(tokenizer, tf.constant(texts), 32).numpy()


def _model(kind, tokenizer, mode, train_ids=None, examples=600):
    vocab_size = int(tokenizer.get_vocab_size())
    if kind == "linear":
        model = LinearClassifier(vocab_size=vocab_size, num_labels=3, mode=mode,
                                 l2=l2_for(1.0, examples, 3, mode))  # fmt: skip
        model.build((None, None))
        model.adapt([train_ids])
        return model
    return RecurrentClassifier(
        vocab_size=vocab_size, num_labels=3, cell=kind, embedding_dim=16, units=16,
        num_layers=1, dropout_rate=0.0, mode=mode,
    )  # fmt: skip


def _train(kind, tokenizer, mode):
    _, y, x = _data(tokenizer, 600, 1, mode)
    model = _model(kind, tokenizer, mode, x)
    loss, metrics = classifier_loss_and_metrics(mode, 3)
    rate = 0.05 if kind == "linear" else 1e-2
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss, metrics=metrics)
    model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    return model


_TRAINED = {}


def trained(kind, tokenizer, mode):
    """Each (model, mode) trained once per module."""
    if (kind, mode) not in _TRAINED:
        keras.utils.set_random_seed(0)
        _TRAINED[kind, mode] = _train(kind, tokenizer, mode)
    return _TRAINED[kind, mode]


@pytest.mark.parametrize("kind", ["lstm", "gru", "linear"])
@pytest.mark.parametrize("mode", ["multilabel", "multiclass"])
def test_each_model_learns_the_keyword_rule(kind, mode, text_tokenizer):
    model = trained(kind, text_tokenizer, mode)
    _, y, x = _data(text_tokenizer, 200, 99, mode)
    scores = np.asarray(model.scores(model(x, training=False)))
    predicted = np.asarray(model.predicted(scores))
    if mode == "multilabel":
        assert f1_scores(y > 0, predicted)["micro_f1"] >= 0.95
    else:
        np.testing.assert_allclose(scores.sum(1), 1.0, rtol=1e-5)
        assert np.all(predicted.sum(1) == 1)
        assert np.mean(scores.argmax(1) == y) >= 0.95


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_does_not_change_recurrent_logits(cell, bidirectional, text_tokenizer):
    keras.utils.set_random_seed(1)
    model = RecurrentClassifier(
        vocab_size=text_tokenizer.get_vocab_size(), num_labels=3, cell=cell, embedding_dim=8,
        units=8, num_layers=2, bidirectional=bidirectional,
    )  # fmt: skip
    x = tokenize_texts(text_tokenizer, tf.constant(["the apple", "a river of stars and clouds"]),
                       32)  # fmt: skip
    padded = tf.pad(x, [[0, 0], [0, 9]])
    logits = np.asarray(model(x, training=False))
    np.testing.assert_allclose(logits, model(padded, training=False), atol=1e-6)
    # ...while a real token does change them: the mask, not a dead network.
    other = tf.concat([x[:, :1], tf.fill([2, 1], tf.cast(5, x.dtype)), x[:, 1:]], axis=1)
    assert np.abs(logits - np.asarray(model(other, training=False))).max() > 1e-4
    width = 8 * (2 if bidirectional else 1)
    assert model.head.kernel.shape == (width, 3)  # the final hidden state, both directions


def _kept_ids(ids):
    return [[int(i) for i in row if i not in (0, 2, 3)] for row in ids]


def test_tfidf_equals_scikit_learns(text_tokenizer):
    from sklearn.feature_extraction.text import TfidfVectorizer

    _, _, x = _data(text_tokenizer, 300, 1, "multilabel")
    vocab_size = int(text_tokenizer.get_vocab_size())
    layer = TfIdf(vocab_size)
    layer.adapt([x[:100], x[100:]])  # batches, as `classify train` gives them
    vectorizer = TfidfVectorizer(analyzer=lambda ids: ids, lowercase=False, sublinear_tf=True,
                                 vocabulary=list(range(vocab_size)))  # fmt: skip
    expected = vectorizer.fit_transform(_kept_ids(x)).toarray()
    _, _, held_out = _data(text_tokenizer, 50, 7, "multilabel")
    np.testing.assert_allclose(layer(x), expected, atol=1e-6)
    np.testing.assert_allclose(layer(held_out),
                               vectorizer.transform(_kept_ids(held_out)).toarray(),
                               atol=1e-6)  # fmt: skip
    # Padding, [START] and [END] are not features.
    np.testing.assert_array_equal(np.asarray(layer(x))[:, [0, 2, 3]], 0.0)


def test_linear_model_is_one_vs_rest_logistic_regression(text_tokenizer):
    """Same features and the same L2 (C=1): the same optimum as scikit-learn's.

    Full-batch Adam to convergence; probabilities within 0.01 and micro-F1
    within 0.01 of `OneVsRestClassifier(LogisticRegression(C=1.0))`.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    _, y, x = _data(text_tokenizer, 600, 1, "multilabel")
    _, y_test, x_test = _data(text_tokenizer, 200, 99, "multilabel")
    vectorizer = TfidfVectorizer(analyzer=lambda ids: ids, lowercase=False, sublinear_tf=True,
                                 vocabulary=list(range(int(text_tokenizer.get_vocab_size()))))
    features = vectorizer.fit_transform(_kept_ids(x))
    sklearn_model = OneVsRestClassifier(LogisticRegression(C=1.0, max_iter=1000))
    sklearn_model.fit(features, y)
    expected = sklearn_model.predict_proba(vectorizer.transform(_kept_ids(x_test)))

    model = _model("linear", text_tokenizer, "multilabel", x)
    loss, _ = classifier_loss_and_metrics("multilabel", 3)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
    full_batch = tf.data.Dataset.from_tensors((x, y)).repeat(800)  # 800 steps, one epoch
    model.fit(full_batch, epochs=1, verbose=0, shuffle=False)
    got = np.asarray(model.scores(model(x_test)))
    assert np.abs(got - expected).max() < 0.01
    ours = f1_scores(y_test > 0, got >= 0.5)["micro_f1"]
    theirs = f1_scores(y_test > 0, expected >= 0.5)["micro_f1"]
    assert abs(ours - theirs) <= 0.01


def test_per_label_thresholds_decide_and_round_trip(text_tokenizer, tmp_path):
    model = trained("gru", text_tokenizer, "multilabel")
    model.set_thresholds([0.2, 0.5, 0.9])
    scores = np.array([[0.25, 0.25, 0.85], [0.1, 0.6, 0.95]], "float32")
    np.testing.assert_array_equal(model.predicted(scores),
                                  [[True, False, False], [False, True, True]])  # fmt: skip
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    assert restored.threshold == [0.2, 0.5, 0.9]
    with pytest.raises(ValueError, match="one per label"):
        model.set_thresholds([0.5, 0.5])
    with pytest.raises(ValueError, match="between 0 and 1"):
        model.set_thresholds([0.5, 0.5, 1.0])
    model.set_thresholds(0.5)


@pytest.mark.parametrize("kind", ["lstm", "gru", "linear"])
def test_keras_round_trip(kind, text_tokenizer, tmp_path):
    model = trained(kind, text_tokenizer, "multilabel")
    _, _, x = _data(text_tokenizer, 20, 5, "multilabel")
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    assert type(restored) is type(model)
    assert restored.get_config() == model.get_config()
    np.testing.assert_array_equal(restored(x, training=False), model(x, training=False))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="cell"):
        RecurrentClassifier(vocab_size=9, num_labels=2, cell="rnn")
    with pytest.raises(ValueError, match="mode"):
        RecurrentClassifier(vocab_size=9, num_labels=2, mode="multi")
    with pytest.raises(ValueError, match="l2"):
        LinearClassifier(vocab_size=9, num_labels=2, l2=-1)
    with pytest.raises(ValueError, match="C must be positive"):
        l2_for(0, 10, 2, "multilabel")


def test_exports_reload_in_a_fresh_process(text_tokenizer, tmp_path):
    """Each model's export, loaded with only TF + TF Text, scores as `predict` does."""
    texts = ["the apple in the river", "", " ".join(["banana star"] * 600), "cloud"]
    exports, expected = {}, {}
    for kind in ("lstm", "gru", "linear"):
        model = trained(kind, text_tokenizer, "multilabel")
        module = ExportClassifier(text_tokenizer, model, NAMES, max_tokens=32)
        exports[kind] = str(save_servable(module, tmp_path / kind,
                                          {"serving_default": module.classify}))  # fmt: skip
        x = tokenize_texts(text_tokenizer, tf.constant(texts), 32)
        expected[kind] = np.asarray(model.scores(model(x, training=False)))
    code = f"""
import json, sys
import tensorflow as tf
import tensorflow_text
out = {{}}
for kind, path in {exports!r}.items():
    fn = tf.saved_model.load(path).signatures["serving_default"]
    got = fn(texts=tf.constant({texts!r}))
    out[kind] = {{"scores": got["scores"].numpy().tolist(),
                 "predicted": got["predicted"].numpy().tolist()}}
assert not any(m.startswith("tftransformer") for m in sys.modules)
print(json.dumps(out))
"""
    got = python_json(code)
    for kind, scores in expected.items():
        # Equal within float32 rounding: another process may pick other kernels.
        np.testing.assert_allclose(got[kind]["scores"], scores, rtol=0, atol=1e-6)
        model = trained(kind, text_tokenizer, "multilabel")
        assert got[kind]["predicted"] == np.asarray(
            model.predicted(np.array(got[kind]["scores"], "float32"))
        ).tolist()
