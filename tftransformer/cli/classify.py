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
    """The `classify` command group."""
    from tftransformer.runs.classify import ClassifySettings

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
    train.add_argument("--pooling", default=defaults.pooling, choices=("mean", "cls"))
    train.add_argument("--threshold", type=float, default=defaults.threshold)
    train.add_argument("--out", default="runs/classifier")
    train.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    train.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    train.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
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


def _train(args):
    from tftransformer.plotting import plot_history
    from tftransformer.runs.classify import (
        ClassifySettings,
        evaluate_classifier,
        train_classifier,
    )

    if not 0 < args.threshold < 1:
        raise UsageError(f"--threshold must be between 0 and 1, got {args.threshold}")
    settings = ClassifySettings(
        data=args.data, side=args.side, mode=args.mode, pooling=args.pooling,
        threshold=args.threshold, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, warmup_epochs=args.warmup_epochs,
        max_tokens=args.max_tokens,
        min_token_count=args.min_token_count, seed=args.seed, limit=args.limit,
        tokenizer=args.tokenizer, vocab_size=args.vocab_size,
        hparams=hparams_from_args(args),
    )  # fmt: skip
    model, tokenizer, vocab, history = train_classifier(args.out, settings)
    plot_history(history, Path(args.out) / "plots" / "history.png")
    print(f"Saved {Path(args.out) / 'model.keras'} ({len(vocab.names)} labels)")
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
