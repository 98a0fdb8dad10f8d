"""
Title: Text classification with Transformer
Author: the tftransformer developers, following keras.io
Description: keras.io's example, heading by heading, on `tftransformer`'s
    `TransformerClassifier` (the NMT tutorial's encoder), then multi-label classification
    of the embedded corpus's topic tags, compared with TF-IDF + one-vs-rest logistic
    regression.
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
from tftransformer.classification.export import tokenize_texts  # noqa: E402
from tftransformer.classification.labelled import LabelVocab, read_labelled  # noqa: E402
from tftransformer.classification.metrics import f1_scores  # noqa: E402
from tftransformer.classification.model import classifier_loss_and_metrics  # noqa: E402
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

settings = ClassifySettings(max_tokens=200, min_token_count=2)
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
ours = f1_scores(ml_vocab.multi_hot(ml_test) > 0, ml_scores >= 0.5)
for example, row in list(zip(ml_test, ml_scores, strict=True))[:3]:
    chosen = [ml_vocab.names[i] for i in np.argsort(-row) if row[i] >= 0.5]
    print(f"{example.text!r}: predicted {chosen}, true {list(example.labels)}")

"""
## Compare with TF-IDF + one-vs-rest logistic regression

The standard multi-label baseline: TF-IDF features and one logistic regression per label
(scikit-learn). `benchmarks/classify_baseline.py` adds an LSTM and timings.
"""

try:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
except ImportError:
    print("scikit-learn is not installed (pip install 'tftransformer[bench]'); skipping")
else:
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    baseline = OneVsRestClassifier(LogisticRegression(max_iter=1000))
    baseline.fit(vectorizer.fit_transform([e.text for e in ml_train]), ml_vocab.multi_hot(ml_train))
    base_scores = baseline.predict_proba(vectorizer.transform([e.text for e in ml_test]))
    theirs = f1_scores(ml_vocab.multi_hot(ml_test) > 0, base_scores >= 0.5)
    print(f"{'model':28s} micro-F1 macro-F1")
    print(f"{'TransformerClassifier':28s} {ours['micro_f1']:8.3f} {ours['macro_f1']:8.3f}")
    print(f"{'TF-IDF + OneVsRest(LogReg)':28s} {theirs['micro_f1']:8.3f} {theirs['macro_f1']:8.3f}")
print("Done.")
