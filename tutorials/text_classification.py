"""
Title: Text classification with Transformer
Author: the tftransformer developers, following keras.io
Description: keras.io's example, heading by heading, on `tftransformer`'s
    `TransformerClassifier` (the NMT tutorial's encoder), then multi-label classification
    of the embedded corpus's topic tags, then the course's other two models in its
    order: an LSTM (multi-label, binary cross-entropy) and one-vs-rest logistic regression.
Mirrors: https://keras.io/examples/nlp/text_classification_with_transformer/

Run: `python tutorials/text_classification.py [--smoke] [--out DIR]`.
"""

"""
## Setup
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import matplotlib  # noqa: E402

if not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")  # no display: figures go to files
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tftransformer import TransformerClassifier  # noqa: E402
from tftransformer.classification.labelled import LabelVocab, read_labelled  # noqa: E402
from tftransformer.classification.linear import LinearClassifier, l2_for  # noqa: E402
from tftransformer.classification.metrics import f1_scores  # noqa: E402
from tftransformer.classification.model import classifier_loss_and_metrics  # noqa: E402
from tftransformer.classification.recurrent import RecurrentClassifier  # noqa: E402
from tftransformer.classification.serving_classifier import tokenize_texts  # noqa: E402
from tftransformer.classification.thresholds import choose_thresholds  # noqa: E402
from tftransformer.corpus import CorpusError  # noqa: E402
from tftransformer.plotting import plot_history  # noqa: E402
from tftransformer.runs.classify import ClassifySettings, build_text_tokenizer  # noqa: E402
from tftransformer.tokenizers import load_tokenizers  # noqa: E402

parser = argparse.ArgumentParser(description="Text classification with TransformerClassifier.")
parser.add_argument("--smoke", action="store_true", help="less data and fewer epochs, for CI")
parser.add_argument("--out", default="tutorials_out/text_classification")
args = parser.parse_args()
OUT = Path(args.out)
OUT.mkdir(parents=True, exist_ok=True)
keras.utils.set_random_seed(0)
EPOCHS = 2 if args.smoke else 10

"""
## Implement a Transformer block as a layer

keras.io writes its own block (self-attention, feed-forward, two Add & Norm). Here the
block is the NMT tutorial's `EncoderLayer` (`GlobalSelfAttention` + `FeedForward`), with
its padding mask passed to every attention layer.

## Implement embedding layer

keras.io adds a *learned* position embedding; `PositionalEmbedding` uses the NMT
tutorial's sinusoidal encoding and `mask_zero=True`, so padding is masked and left out of
the pooled vector.

## Download and prepare dataset

keras.io classifies IMDB reviews (positive / negative). With network, this script uses
TFDS `imdb_reviews`; offline (and with `--smoke`) it classifies the embedded corpus's
single-topic sentences into their topic, and says so.
"""

data = None
if not args.smoke:
    try:
        train = read_labelled("tfds:imdb_reviews", "train")
        val = read_labelled("tfds:imdb_reviews", "validation")
        data = "tfds:imdb_reviews"
    except CorpusError as error:
        print(f"TFDS imdb_reviews is not reachable ({str(error)[:80]}...)")
if data is None:
    data = "embedded"
    print("Data: the embedded corpus's single-topic sentences (not IMDB)")
    train = [e for e in read_labelled("embedded", "train") if len(e.labels) == 1]
    val = [e for e in read_labelled("embedded", "validation") if len(e.labels) == 1]
if args.smoke:
    train, val = train[:600], val[:100]
vocab = LabelVocab.from_examples(train)
val = [e for e in val if e.labels[0] in vocab.index]
print(len(train), "Training sequences")
print(len(val), "Validation sequences")

# The tutorials keep the Subword tokenizers guide's WordPiece (`classify train` defaults to
# SentencePiece: docs/classification.md).
settings = ClassifySettings(max_tokens=200, min_token_count=2, tokenizer="wordpiece")
build_text_tokenizer([e.text for e in train], settings, OUT / "tokenizer")
tokenizer = load_tokenizers(OUT / "tokenizer").text
x_train = tokenize_texts(tokenizer, tf.constant([e.text for e in train]), settings.max_tokens)
x_val = tokenize_texts(tokenizer, tf.constant([e.text for e in val]), settings.max_tokens)
y_train, y_val = vocab.class_ids(train), vocab.class_ids(val)
print(x_train.shape, x_val.shape)

"""
## Create classifier model using transformer layer

keras.io: embedding 32, 2 heads, feed-forward 32, one block, average pooling, dropout,
softmax. The same sizes here, multi-class mode (softmax over the labels).
"""

model = TransformerClassifier(
    num_layers=1, d_model=32, num_heads=2, dff=32, dropout_rate=0.1,
    vocab_size=tokenizer.get_vocab_size(), num_labels=len(vocab.names), mode="multiclass",
)  # fmt: skip

"""
## Train and Evaluate
"""

loss, metrics = classifier_loss_and_metrics("multiclass", len(vocab.names))
model.compile(optimizer="adam", loss=loss, metrics=metrics)
history = model.fit(x_train, y_train, batch_size=32, epochs=EPOCHS,
                    validation_data=(x_val, y_val))  # fmt: skip
plot_history(history.history, OUT / "multiclass_history.png")
scores = np.asarray(model.scores(model(x_val, training=False)))
print("softmax rows sum to 1:", np.allclose(scores.sum(1), 1.0, atol=1e-5))
print(f"validation accuracy: {np.mean(scores.argmax(1) == y_val):.3f}")

"""
## Multi-label classification on the embedded topic tags

Beyond keras.io: a sentence can be about several topics ("I bought bread at the market":
food and shopping). `mode="multilabel"` gives each label its own sigmoid and trains with
binary cross-entropy; a label is predicted when its probability reaches the threshold.
"""

ml_train = read_labelled("embedded", "train")
ml_test = read_labelled("embedded", "test")
if args.smoke:
    ml_train = ml_train[:600]
ml_vocab = LabelVocab.from_examples(ml_train)
ml_test = [e for e in ml_test if set(e.labels) <= set(ml_vocab.names)]
build_text_tokenizer([e.text for e in ml_train], settings, OUT / "ml_tokenizer")
ml_tokenizer = load_tokenizers(OUT / "ml_tokenizer").text
mx_train = tokenize_texts(ml_tokenizer, tf.constant([e.text for e in ml_train]), 64)
mx_test = tokenize_texts(ml_tokenizer, tf.constant([e.text for e in ml_test]), 64)
multilabel = TransformerClassifier(
    num_layers=2, d_model=64, num_heads=4, dff=128, dropout_rate=0.1,
    vocab_size=ml_tokenizer.get_vocab_size(), num_labels=len(ml_vocab.names),
    mode="multilabel", threshold=0.5,
)  # fmt: skip
loss, metrics = classifier_loss_and_metrics("multilabel", len(ml_vocab.names))
multilabel.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=metrics)
ml_history = multilabel.fit(mx_train, ml_vocab.multi_hot(ml_train), batch_size=32,
                            epochs=EPOCHS * 2, verbose=2)  # fmt: skip
plot_history(ml_history.history, OUT / "multilabel_history.png")
ml_scores = np.asarray(multilabel.scores(multilabel(mx_test, training=False)))
for example, row in list(zip(ml_test, ml_scores, strict=True))[:3]:
    chosen = [ml_vocab.names[i] for i in np.argsort(-row) if row[i] >= 0.5]
    print(f"{example.text!r}: predicted {chosen}, true {list(example.labels)}")

"""
## The course's recurrent classifier: an LSTM's final hidden state

The course reads a sentence with an LSTM and classifies its last layer's final hidden state
(`output, (hidden, cell) = lstm(x)`; `fc(hidden[-1])`). `RecurrentClassifier` is that model
(`classify train --model lstm`): `Embedding(mask_zero=True)` -> LSTM -> final hidden state
-> dropout -> `Dense(num_labels)` logits. Padding is masked, so it never reaches the state.
"""

rnn = RecurrentClassifier(
    vocab_size=ml_tokenizer.get_vocab_size(), num_labels=len(ml_vocab.names), cell="lstm",
    embedding_dim=64, units=64, mode="multilabel",
)  # fmt: skip

"""
## Multi-label: binary cross-entropy, one sigmoid per label

Each label is its own yes/no decision, so the loss is binary cross-entropy on each label's
logit (not a softmax over labels, which would make the labels compete for one unit of
probability). `classifier_loss_and_metrics("multilabel", ...)` gives exactly that.
"""

loss, metrics = classifier_loss_and_metrics("multilabel", len(ml_vocab.names))
rnn.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss, metrics=metrics)
rnn.fit(mx_train, ml_vocab.multi_hot(ml_train), batch_size=64, epochs=EPOCHS, verbose=2)
rnn_scores = np.asarray(rnn.scores(rnn(mx_test, training=False)))

"""
## One-vs-rest logistic regression

The classical baseline: one independent logistic regression per label on TF-IDF features.
A sigmoid per label over one `Dense` layer, trained with binary cross-entropy, *is* that
model; `LinearClassifier` (`classify train --model linear`) computes TF-IDF over the subword
ids in-graph and sets the L2 penalty that scikit-learn's `C=1` implies (`l2_for`). Below,
scikit-learn's `OneVsRestClassifier(LogisticRegression())` on the same features.

Both are precise but shy at the 0.5 threshold; `choose_thresholds` picks a threshold per
label on held-out data (`classify train --threshold auto`).
"""

linear = LinearClassifier(
    vocab_size=ml_tokenizer.get_vocab_size(), num_labels=len(ml_vocab.names),
    l2=l2_for(1.0, len(ml_train), len(ml_vocab.names), "multilabel"),
)  # fmt: skip
linear.build((None, None))
linear.adapt([mx_train])
linear.compile(optimizer=keras.optimizers.Adam(0.05), loss=loss)
full_batch = tf.data.Dataset.from_tensors((mx_train, ml_vocab.multi_hot(ml_train)))
linear.fit(full_batch.repeat(100 if args.smoke else 400), verbose=0, shuffle=False)

ml_val = [
    e for e in read_labelled("embedded", "validation") if set(e.labels) <= set(ml_vocab.names)
]
mx_val = tokenize_texts(ml_tokenizer, tf.constant([e.text for e in ml_val]), 64)


def scores_of(model, ids):
    return np.asarray(model.scores(model(ids, training=False)))


# (name, test scores, validation scores): the thresholds are chosen on validation.
rows = [(name, scores_of(model, mx_test), scores_of(model, mx_val))
        for name, model in (("TransformerClassifier", multilabel), ("LSTM", rnn),
                            ("LinearClassifier", linear))]  # fmt: skip
try:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
except ImportError:
    print("scikit-learn is not installed (pip install 'tftransformer[bench]'); skipping it")
else:
    tfidf = linear.features  # the same features as LinearClassifier's
    baseline = OneVsRestClassifier(LogisticRegression(max_iter=1000))
    baseline.fit(np.asarray(tfidf(mx_train)), ml_vocab.multi_hot(ml_train))
    rows.append(("sklearn OneVsRest(LogReg)", baseline.predict_proba(np.asarray(tfidf(mx_test))),
                 baseline.predict_proba(np.asarray(tfidf(mx_val)))))  # fmt: skip

truth = ml_vocab.multi_hot(ml_test) > 0
print(f"{'model':28s} {'micro-F1 @0.5':>13s} {'micro-F1 @auto':>14s} {'macro-F1 @0.5':>13s}")
for name, scores, val_scores in rows:
    at_half = f1_scores(truth, scores >= 0.5)
    thresholds = choose_thresholds(ml_vocab.multi_hot(ml_val) > 0, val_scores)
    at_auto = f1_scores(truth, scores >= np.asarray(thresholds))
    print(f"{name:28s} {at_half['micro_f1']:13.3f} {at_auto['micro_f1']:14.3f} "
          f"{at_half['macro_f1']:13.3f}")
print("Done.")
