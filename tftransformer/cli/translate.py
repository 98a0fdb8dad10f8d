"""The `translate`, `evaluate`, `plot` and `export` commands of a trained run.

`--decode greedy` (the default) is the cached, batched greedy decoder of
`FastTranslator`: the tutorial's translations, much faster. `--decode beam`
is cached beam search (`--beam-size`, `--alpha`), and `--decode tutorial`
the tutorial's own `Translator`, one sentence at a time.
"""

from __future__ import annotations

import argparse

from tftransformer.cli.common import (
    UsageError,
    add_beam_options,
    as_line,
    input_lines,
    positive_int,
    progress_bar,
    score_lines,
)
from tftransformer.data import MAX_TOKENS
from tftransformer.inference.fast_translator import DEFAULT_JIT_COMPILE
from tftransformer.runs.translate import DECODERS

# The tutorial's example for "Create attention plots".
TUTORIAL_PLOT_SENTENCE = "este é o primeiro livro que eu fiz."


def add_decode_options(parser) -> None:
    """`--decode`, the beam options, `--batch-size` and `--jit-compile`."""
    parser.add_argument(
        "--decode",
        choices=DECODERS,
        default="greedy",
        help="greedy: cached and batched (default); beam: cached beam search; "
        "tutorial: the tutorial's Translator, one sentence at a time",
    )
    add_beam_options(parser)
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="sentences decoded together"
    )
    parser.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_JIT_COMPILE,
        help=f"compile the decoding loop with XLA (default: {DEFAULT_JIT_COMPILE})",
    )


def decode_options(args) -> dict:
    """The `make_batch_translator` keyword arguments the options ask for."""
    return dict(
        decode=args.decode,
        beam_size=args.beam_size,
        alpha=args.alpha,
        jit_compile=args.jit_compile,
    )


def add_parsers(commands) -> None:
    """The `translate`, `evaluate`, `plot` and `export` subcommands."""
    translate = commands.add_parser(
        "translate", help="translate sentences (arguments, or one per line on stdin)"
    )
    translate.add_argument("run", help="run directory")
    translate.add_argument("text", nargs="*", help="Portuguese sentences (default: stdin)")
    translate.add_argument("--max-length", type=positive_int, default=MAX_TOKENS)
    translate.add_argument(
        "--engine",
        choices=("tensorflow", "litert"),
        default="tensorflow",
        help="litert: greedy translation by RUN/export/litert/float32/translator.tflite "
        "(export --format litert first) on the LiteRT interpreter",
    )
    add_decode_options(translate)
    translate.set_defaults(handler=cmd_translate)

    evaluate = commands.add_parser("evaluate", help="corpus BLEU and chrF on a split")
    evaluate.add_argument("run", help="run directory")
    evaluate.add_argument("--corpus", help="default: the run's corpus")
    evaluate.add_argument("--split", default="test", choices=("train", "validation", "test"))
    evaluate.add_argument("--limit", type=positive_int, help="only the first N pairs")
    evaluate.add_argument("--hypotheses", help="also write the translations to this file")
    add_decode_options(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)

    plot = commands.add_parser("plot", help="PNG figures: attention, training, schedule, encoding")
    plot.add_argument("run", help="run directory")
    plot.add_argument(
        "--sentence",
        default=TUTORIAL_PLOT_SENTENCE,
        help="Portuguese sentence for the attention plots",
    )
    plot.add_argument("--out", help="output directory (default RUN/plots)")
    plot.set_defaults(handler=cmd_plot)

    export = commands.add_parser(
        "export",
        help="SavedModel for TF Serving: RUN/export/translator/N/ (or CTranslate2, LiteRT)",
    )
    export.add_argument("run", help="run directory")
    export.add_argument(
        "--format",
        choices=("savedmodel", "ctranslate2", "litert"),
        default="savedmodel",
        help="savedmodel (default): TF Serving, tokenizers inside; ctranslate2: "
        "RUN/export/ctranslate2/QUANTIZATION/, weights converted exactly (pip install "
        "ctranslate2); litert: RUN/export/litert/QUANTIZATION/translator.tflite, on-device, "
        "tokenizers inside (SentencePiece runs; pip install ai-edge-litert to run it)",
    )
    export.add_argument(
        "--quantization",
        choices=("float32", "int8", "dynamic-int8"),
        default="float32",
        help="ctranslate2: float32 (exact) or int8 weights; litert: float32 or dynamic-int8 "
        "(default float32)",
    )
    export.add_argument("--version", type=positive_int, help="default: next free version")
    add_beam_options(export)  # for the `beam_search` signature
    export.set_defaults(handler=cmd_export)


def cmd_translate(args):
    from tftransformer.runs.run import Run
    from tftransformer.runs.translate import translate_run

    sentences = input_lines(args.text)  # never fails on bytes that are not UTF-8
    if args.engine == "litert":
        from tftransformer.runs.paths import RunDir
        from tftransformer.runs.translate import translate_litert

        if args.decode != "greedy":
            raise UsageError("--engine litert decodes greedily only (no --decode beam/tutorial)")
        if args.max_length != MAX_TOKENS:
            raise UsageError("--max-length is fixed in the LiteRT file (the run's max_tokens)")
        for line in translate_litert(RunDir(args.run), sentences):
            print(as_line(line), flush=True)
        return 0
    run = Run(args.run)
    progress = progress_bar() if len(sentences) > 10 else None
    translations = translate_run(run, sentences, args.max_length, args.batch_size,
                                 progress=progress, **decode_options(args))  # fmt: skip
    for line in translations:
        print(as_line(line), flush=True)
    return 0


def cmd_evaluate(args):
    from tftransformer._files import write_text_atomic
    from tftransformer.runs.run import Run
    from tftransformer.runs.scoring import prints_normalized_text
    from tftransformer.runs.translate import evaluate_run

    run = Run(args.run)
    corpus = args.corpus or run.settings.corpus
    scores, _rows, hypotheses = evaluate_run(
        run, corpus, args.split, limit=args.limit, progress=progress_bar(), **decode_options(args)
    )
    if args.hypotheses:
        write_text_atomic(args.hypotheses, "".join(as_line(h) + "\n" for h in hypotheses))
    normalized = prints_normalized_text(run.settings.tokenizer)
    lines = score_lines(f"{corpus} {args.split}:", scores, f"{args.decode} decoding", normalized)
    print(*lines, sep="\n")
    return 0


def cmd_plot(args):
    from pathlib import Path

    from tftransformer.runs.plots import write_plots
    from tftransformer.runs.run import Run

    run = Run(args.run)
    out = Path(args.out) if args.out else run.dir.plots
    for path in write_plots(run, args.sentence, out):
        print(path)
    return 0


def cmd_export(args):
    from tftransformer.runs.export import export_run
    from tftransformer.runs.run import Run

    path = export_run(Run(args.run), args.format, quantization=args.quantization,
                      version=args.version, beam_size=args.beam_size,
                      alpha=args.alpha)  # fmt: skip
    print(path)
    return 0
