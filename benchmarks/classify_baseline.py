"""Multi-label topic classification: our TransformerClassifier vs two baselines.

On the same train/validation/test splits (default: the embedded corpus's
topic tags, English side), side by side in one run:

  1. `TransformerClassifier` (the translator's encoder, mean pooling, one
     sigmoid per label, binary cross-entropy) — `tftransformer.runs.classify`;
  2. a recurrent baseline in Keras: Embedding -> LSTM -> final hidden state ->
     Dense(num_labels) with one sigmoid per label (the classic RNN recipe),
     on the same token ids;
  3. TF-IDF + OneVsRestClassifier(LogisticRegression()) from scikit-learn.

Prints micro/macro F1, precision and recall on the test split, training time
and inference time per example. Decision threshold 0.5 for all three.

    python benchmarks/classify_baseline.py [--epochs 10] [--data embedded] [--smoke]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from tftransformer.classification.export import tokenize_texts
from tftransformer.classification.labelled import read_labelled
from tftransformer.classification.metrics import f1_scores
from tftransformer.config import TransformerConfig
from tftransformer.runs.classify import ClassifySettings, predict_scores, train_classifier


def lstm_baseline(tokenizer, vocab, train, val, test, settings, units=128):
    keras.utils.set_random_seed(settings.seed)

    def ids(examples):
        return tokenize_texts(tokenizer, tf.constant([e.text for e in examples]),
                              settings.max_tokens)  # fmt: skip

    model = keras.Sequential([
        keras.layers.Embedding(int(tokenizer.get_vocab_size()), settings.hparams.d_model,
                               mask_zero=True),
        keras.layers.LSTM(units),  # the final hidden state
        keras.layers.Dense(len(vocab.names), activation="sigmoid"),
    ])  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="binary_crossentropy")
    start = time.perf_counter()
    model.fit(ids(train), vocab.multi_hot(train), validation_data=(ids(val), vocab.multi_hot(val)),
              epochs=settings.epochs, batch_size=settings.batch_size, verbose=0)  # fmt: skip
    train_s = time.perf_counter() - start
    x_test = ids(test)
    start = time.perf_counter()
    scores = model.predict(x_test, batch_size=256, verbose=0)
    infer_s = time.perf_counter() - start
    return scores, train_s, infer_s


def tfidf_baseline(train, test, vocab):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vectorizer.fit_transform([e.text for e in train])
    classifier = OneVsRestClassifier(LogisticRegression(max_iter=1000))
    classifier.fit(x_train, vocab.multi_hot(train))
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    scores = classifier.predict_proba(vectorizer.transform([e.text for e in test]))
    infer_s = time.perf_counter() - start
    return scores, train_s, infer_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="embedded")
    parser.add_argument("--side", default="en", choices=("en", "pt"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="tiny model, 2 epochs, 300 examples")
    args = parser.parse_args(argv)

    settings = ClassifySettings(data=args.data, side=args.side, epochs=args.epochs)
    if args.smoke:
        settings.epochs, settings.limit = 2, 300
        settings.hparams = TransformerConfig(num_layers=1, d_model=32, dff=64, num_heads=2)
    test = read_labelled(settings.data, "test", settings.side, settings.limit)
    train = read_labelled(settings.data, "train", settings.side, settings.limit)
    val = read_labelled(settings.data, "validation", settings.side, settings.limit)

    rows = []
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        model, tokenizer, vocab, _ = train_classifier(run_dir, settings, verbose=0)
        train_s = time.perf_counter() - start
        vocab.check(test, "test split")
        predict_scores(model, tokenizer, [e.text for e in test[:8]], settings.max_tokens)  # warm
        start = time.perf_counter()
        scores = predict_scores(model, tokenizer, [e.text for e in test], settings.max_tokens,
                                batch_size=256)  # fmt: skip
        infer_s = time.perf_counter() - start
        rows.append(("TransformerClassifier (ours)", scores, train_s, infer_s))
        rows.append(("Embedding+LSTM, sigmoid/label",
                     *lstm_baseline(tokenizer, vocab, train, val, test, settings)))  # fmt: skip
    rows.append(("TF-IDF + OneVsRest(LogReg)", *tfidf_baseline(train, test, vocab)))

    truth = vocab.multi_hot(test) > 0
    print(f"data={settings.data} side={settings.side}: {len(train)} train / {len(val)} val / "
          f"{len(test)} test examples, {len(vocab.names)} labels, epochs={settings.epochs}, "
          f"hparams={settings.hparams.to_dict()}")  # fmt: skip
    header = f"{'model':32s} {'micro-F1':>9s} {'macro-F1':>9s} {'prec':>6s} {'recall':>6s} " \
             f"{'train s':>8s} {'infer ms/ex':>11s}"  # fmt: skip
    print(header)
    print("-" * len(header))
    for name, scores, train_s, infer_s in rows:
        m = f1_scores(truth, np.asarray(scores) >= 0.5)
        print(f"{name:32s} {m['micro_f1']:9.3f} {m['macro_f1']:9.3f} {m['precision']:6.3f} "
              f"{m['recall']:6.3f} {train_s:8.1f} {1000 * infer_s / len(test):11.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
