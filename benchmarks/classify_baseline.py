"""Multi-label classification: the CLI's four models and scikit-learn's one-vs-rest, side by side.

On the same train/validation/test splits (default: the embedded corpus's
topic tags, English side; `--side pt` for the Portuguese sentences; any
`classify train --data` spec), in one run:

  - `classify train --model transformer|lstm|gru|linear --threshold auto`,
    each through `tftransformer.runs.classify.train_classifier` exactly as the
    CLI runs it (its default learning rate and sizes);
  - scikit-learn's `OneVsRestClassifier(LogisticRegression())` on its own
    word TF-IDF (`TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`),
    the course's classical baseline, with thresholds chosen the same way.

For each: micro/macro F1, precision and recall on the test split at the 0.5
threshold and at `auto` (per-label thresholds chosen on the validation
split), training seconds, and inference milliseconds per example.

    python benchmarks/classify_baseline.py [--epochs 10] [--data embedded] [--side en] [--smoke]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from tftransformer.classification.labelled import LabelVocab, read_labelled
from tftransformer.classification.metrics import f1_scores
from tftransformer.classification.thresholds import choose_thresholds
from tftransformer.config import TransformerConfig
from tftransformer.runs.classify import MODELS, ClassifySettings, predict_scores, train_classifier


def cli_model(settings, test):
    """Train one CLI model; (test scores, thresholds, train s, infer s)."""
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        model, tokenizer, vocab, _ = train_classifier(run_dir, settings, verbose=0)
        train_s = time.perf_counter() - start
        texts = [e.text for e in test]
        predict_scores(model, tokenizer, texts[:8], settings.max_tokens)  # traced once
        start = time.perf_counter()
        scores = predict_scores(model, tokenizer, texts, settings.max_tokens, batch_size=256)
        infer_s = time.perf_counter() - start
    return scores, model.threshold, train_s, infer_s


def sklearn_one_vs_rest(train, val, test, vocab):
    """TF-IDF + OneVsRestClassifier(LogisticRegression()); thresholds chosen on `val`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    classifier = OneVsRestClassifier(LogisticRegression(max_iter=1000))
    classifier.fit(vectorizer.fit_transform([e.text for e in train]), vocab.multi_hot(train))
    val_scores = classifier.predict_proba(vectorizer.transform([e.text for e in val]))
    thresholds = choose_thresholds(vocab.multi_hot(val) > 0, val_scores)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    scores = classifier.predict_proba(vectorizer.transform([e.text for e in test]))
    infer_s = time.perf_counter() - start
    return scores, thresholds, train_s, infer_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="embedded")
    parser.add_argument("--side", default="en", choices=("en", "pt"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated CLI models to train (default: all four)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny models, 2 epochs, 300 examples per split")  # fmt: skip
    args = parser.parse_args(argv)
    from tftransformer.runs.precision import training_device

    print(f"Device: {training_device().describe()}", flush=True)

    base = ClassifySettings(data=args.data, side=args.side, epochs=args.epochs, threshold="auto")
    if args.smoke:
        base.epochs, base.limit = 2, 300
        base.hparams = TransformerConfig(num_layers=1, d_model=32, dff=64, num_heads=2)
        base.rnn_units = 32
    train = read_labelled(base.data, "train", base.side, base.limit)
    val = read_labelled(base.data, "validation", base.side, base.limit)
    test = read_labelled(base.data, "test", base.side, base.limit)

    rows = []
    for name in args.models.split(","):
        settings = ClassifySettings(**{**vars(base), "model": name, "learning_rate": None})
        rows.append((f"classify --model {name}", *cli_model(settings, test)))
    vocab = LabelVocab.from_examples(train)  # as train_classifier orders the labels
    vocab.check(val, "validation split")
    vocab.check(test, "test split")
    rows.append(("sklearn TF-IDF + OneVsRest(LogReg)", *sklearn_one_vs_rest(train, val, test,
                                                                           vocab)))  # fmt: skip

    truth = vocab.multi_hot(test) > 0
    print(f"data={base.data} side={base.side}: {len(train)} train / {len(val)} val / "
          f"{len(test)} test examples, {len(vocab.names)} labels, epochs={base.epochs}, "
          f"transformer hparams={base.hparams.to_dict()}, rnn units={base.rnn_units}")  # fmt: skip
    header = (f"{'model':36s} {'threshold':>9s} {'micro-F1':>9s} {'macro-F1':>9s} {'prec':>6s} "
              f"{'recall':>6s} {'train s':>8s} {'infer ms/ex':>11s}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for name, scores, thresholds, train_s, infer_s in rows:
        scores = np.asarray(scores, "float32")
        for label, cut in (("0.5", np.float32(0.5)), ("auto", np.asarray(thresholds, "float32"))):
            m = f1_scores(truth, scores >= cut)
            print(f"{name:36s} {label:>9s} {m['micro_f1']:9.3f} {m['macro_f1']:9.3f} "
                  f"{m['precision']:6.3f} {m['recall']:6.3f} {train_s:8.1f} "
                  f"{1000 * infer_s / max(1, len(test)):11.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
