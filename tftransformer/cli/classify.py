"""`tftransformer classify train|predict|evaluate|export`: the classifier's commands."""

from __future__ import annotations

from pathlib import Path

from tftransformer.cli.common import (
    UsageError,
    add_hparam_flags,
    add_tokenizer_options,
    hparams_from_args,
    input_lines,
    positive_int,
)


def add_parsers(commands) -> None:
    """The `classify` command group.

    Long, but only declarations: one `add_argument` per flag, in the order `--help` shows.
    """
    from tftransformer.runs.classify import DEFAULT_LEARNING_RATES, MODELS, ClassifySettings

    defaults = ClassifySettings()
    classify = commands.add_parser(
        "classify", help="text classification (multi-label or multi-class) with the encoder"
    )
    sub = classify.add_subparsers(dest="classify_command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a classifier into a run directory")
    train.add_argument(
        "--data",
        default="embedded",
        help="embedded | tsv:PATH | csv:PATH | tfds:imdb_reviews | tfds:goemotions",
    )
    train.add_argument(
        "--side",
        default="en",
        choices=("en", "pt"),
        help="embedded corpus: classify the English or Portuguese sentences",
    )
    train.add_argument("--mode", default=defaults.mode, choices=("multilabel", "multiclass"))
    train.add_argument(
        "--model",
        default=defaults.model,
        choices=MODELS,
        help="transformer: the tutorial's encoder, pooled; lstm / gru: the final hidden state "
        "of a recurrent stack (embedding size --d-model); linear: one-vs-rest logistic "
        f"regression on TF-IDF (default {defaults.model})",
    )
    train.add_argument("--pooling", default=defaults.pooling, choices=("mean", "cls"),
                       help="transformer: mean over tokens or the first token")  # fmt: skip
    train.add_argument(
        "--threshold",
        type=_threshold,
        default=defaults.threshold,
        help="multilabel decision threshold: a probability, or 'auto' for per-label "
        f"thresholds chosen on the validation split (default {defaults.threshold})",
    )
    train.add_argument("--rnn-layers", type=positive_int, default=defaults.rnn_layers)
    train.add_argument("--rnn-units", type=positive_int, default=defaults.rnn_units)
    train.add_argument("--bidirectional", action="store_true",
                       help="lstm / gru: run each layer both ways")  # fmt: skip
    train.add_argument("--linear-c", type=float, default=defaults.linear_c,
                       help="linear: inverse L2 strength, as scikit-learn's C "
                       f"(default {defaults.linear_c})")  # fmt: skip
    train.add_argument("--out", default="runs/classifier")
    train.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    train.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    train.add_argument(
        "--learning-rate",
        type=float,
        help="Adam's peak rate (default by model: "
        + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LEARNING_RATES.items())
        + ")",
    )
    train.add_argument("--warmup-epochs", type=float, default=defaults.warmup_epochs)
    train.add_argument("--max-tokens", type=positive_int, default=defaults.max_tokens)
    train.add_argument("--min-token-count", type=positive_int, default=defaults.min_token_count)
    add_tokenizer_options(train, defaults)
    train.add_argument("--limit", type=positive_int, help="only the first N examples per split")
    train.add_argument("--seed", type=int, default=defaults.seed)
    add_hparam_flags(train)
    train.set_defaults(handler=_train)

    predict = sub.add_parser("predict", help="labels for texts (arguments, or lines on stdin)")
    predict.add_argument("run")
    predict.add_argument("text", nargs="*")
    predict.set_defaults(handler=_predict)

    evaluate = sub.add_parser("evaluate", help="micro/macro F1, precision, recall on a split")
    evaluate.add_argument("run")
    evaluate.add_argument("--data", help="default: the run's data")
    evaluate.add_argument("--split", default="test", choices=("train", "validation", "test"))
    evaluate.add_argument("--limit", type=positive_int)
    evaluate.set_defaults(handler=_evaluate)

    export = sub.add_parser("export", help="SavedModel for TF Serving: RUN/export/classifier/N/")
    export.add_argument("run")
    export.add_argument("--version", type=positive_int)
    export.set_defaults(handler=_export)


def _threshold(text):
    """`--threshold`: 'auto' or a probability strictly between 0 and 1."""
    import argparse

    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be 'auto' or between 0 and 1, got {text!r}")
    return value


def _train(args):
    from tftransformer.runs.classify import (
        ClassifySettings,
        evaluate_classifier,
        train_classifier,
    )

    settings = ClassifySettings(
        data=args.data, side=args.side, mode=args.mode, model=args.model, pooling=args.pooling,
        threshold=args.threshold, rnn_layers=args.rnn_layers, rnn_units=args.rnn_units,
        bidirectional=args.bidirectional, linear_c=args.linear_c, epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate, warmup_epochs=args.warmup_epochs,
        max_tokens=args.max_tokens,
        min_token_count=args.min_token_count, seed=args.seed, limit=args.limit,
        tokenizer=args.tokenizer, vocab_size=args.vocab_size,
        hparams=hparams_from_args(args),
    )  # fmt: skip
    try:
        settings.check()
    except ValueError as error:
        raise UsageError(f"--{str(error).replace('_', '-')}") from None
    model, tokenizer, vocab, history = train_classifier(args.out, settings)
    print(f"Saved {Path(args.out) / 'model.keras'} ({settings.model}, {len(vocab.names)} labels)")
    if settings.threshold == "auto":
        print("Thresholds (validation, max micro-F1): " + " ".join(
            f"{name}:{value:.3f}" for name, value in zip(vocab.names, model.threshold, strict=True)
        ))  # fmt: skip
    metrics = evaluate_classifier(settings, tokenizer, vocab, model, settings.data, "test",
                                  settings.limit)  # fmt: skip
    print("Test " + "  ".join(f"{k} {v}" for k, v in metrics.items()))
    return 0


def _predict(args):
    import numpy as np

    from tftransformer.runs.classify import load_classifier_run, predict_scores

    settings, tokenizer, vocab, model = load_classifier_run(args.run)
    texts = input_lines(args.text)  # never fails on bytes that are not UTF-8
    scores = predict_scores(model, tokenizer, texts, settings.max_tokens)
    predicted = np.asarray(model.predicted(scores)) if len(texts) else []
    for row_scores, row_predicted in zip(scores, predicted, strict=True):
        chosen = [
            f"{vocab.names[i]}:{row_scores[i]:.3f}"
            for i in np.argsort(-row_scores)
            if row_predicted[i]
        ]
        print(" ".join(chosen))
    return 0


def _evaluate(args):
    from tftransformer.runs.classify import evaluate_classifier, load_classifier_run

    settings, tokenizer, vocab, model = load_classifier_run(args.run)
    data = args.data or settings.data
    metrics = evaluate_classifier(settings, tokenizer, vocab, model, data, args.split, args.limit)
    print(f"{data} {args.split}: " + "  ".join(f"{k} {v}" for k, v in metrics.items()))
    return 0


def _export(args):
    from tftransformer.runs.classify import export_classifier

    print(export_classifier(args.run, args.version))
    return 0
