"""The `translate`, `evaluate` and `export` commands and how they decode.

`--decode greedy` (the default) is the cached, batched greedy decoder of
`FastTranslator`: the tutorial's translations, much faster. `--decode beam`
is cached beam search (`--beam-size`, `--alpha`), and `--decode tutorial`
the tutorial's own `Translator`, one sentence at a time.
"""

from __future__ import annotations

import argparse

from tftransformer.data import MAX_TOKENS
from tftransformer.fast_translator import DEFAULT_JIT_COMPILE
from tftransformer.workflow import DECODERS


def progress_bar(done, total):
    from tftransformer.cli import _progress

    _progress(done, total)


def non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_beam_options(parser, positive_int) -> None:
    parser.add_argument("--beam-size", type=positive_int, default=4, help="beam width (default 4)")
    parser.add_argument(
        "--alpha",
        type=non_negative_float,
        default=0.6,
        help="GNMT length-penalty exponent (default 0.6)",
    )


def add_decode_options(parser, positive_int) -> None:
    """`--decode`, the beam options, `--batch-size` and `--jit-compile`."""
    parser.add_argument(
        "--decode",
        choices=DECODERS,
        default="greedy",
        help="greedy: cached and batched (default); beam: cached beam search; "
        "tutorial: the tutorial's Translator, one sentence at a time",
    )
    add_beam_options(parser, positive_int)
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


def add_translate_parsers(commands, positive_int) -> None:
    """The `translate` and `evaluate` subcommands."""
    translate = commands.add_parser(
        "translate", help="translate sentences (arguments, or one per line on stdin)"
    )
    translate.add_argument("run", help="run directory")
    translate.add_argument("text", nargs="*", help="Portuguese sentences (default: stdin)")
    translate.add_argument("--max-length", type=positive_int, default=MAX_TOKENS)
    add_decode_options(translate, positive_int)
    translate.set_defaults(handler=cmd_translate)

    evaluate = commands.add_parser("evaluate", help="corpus BLEU and chrF on a split")
    evaluate.add_argument("run", help="run directory")
    evaluate.add_argument("--corpus", help="default: the run's corpus")
    evaluate.add_argument("--split", default="test", choices=("train", "validation", "test"))
    evaluate.add_argument("--limit", type=positive_int, help="only the first N pairs")
    evaluate.add_argument("--hypotheses", help="also write the translations to this file")
    add_decode_options(evaluate, positive_int)
    evaluate.set_defaults(handler=cmd_evaluate)


def add_export_parser(commands, positive_int) -> None:
    """The `export` subcommand."""
    export = commands.add_parser(
        "export", help="SavedModel for TF Serving: RUN/export/translator/N/"
    )
    export.add_argument("run", help="run directory")
    export.add_argument("--version", type=positive_int, help="default: next free version")
    add_beam_options(export, positive_int)  # for the `beam_search` signature
    export.set_defaults(handler=cmd_export)


def cmd_translate(args):
    from tftransformer.workflow import input_lines, load_run, make_batch_translator, translate_all

    settings, tokenizers, model = load_run(args.run)
    sentences = input_lines(args.text)  # never fails on bytes that are not UTF-8
    translate_batch = make_batch_translator(
        tokenizers,
        model,
        max_length=args.max_length,
        max_input_tokens=settings.max_tokens,
        **decode_options(args),
    )
    progress = progress_bar if len(sentences) > 10 else None
    translations = translate_all(translate_batch, sentences, args.batch_size, progress=progress)
    for line in translations:
        print(line.replace("\n", " "), flush=True)
    return 0


def cmd_evaluate(args):
    from tftransformer.workflow import evaluate_split, load_run

    settings, tokenizers, model = load_run(args.run)
    corpus = args.corpus or settings.corpus
    scores, _rows, hypotheses = evaluate_split(
        model,
        tokenizers,
        corpus,
        args.split,
        limit=args.limit,
        progress=progress_bar,
        max_tokens=settings.max_tokens,
        **decode_options(args),
    )
    if args.hypotheses:
        from tftransformer.rundir import write_text_atomic

        write_text_atomic(args.hypotheses, "".join(h + "\n" for h in hypotheses))
    print(
        f"{corpus} {args.split}: BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  "
        f"({scores['sentences']} sentences, {args.decode} decoding)"
    )
    return 0


def cmd_export(args):
    from tftransformer.export import export_translator
    from tftransformer.rundir import RunDir
    from tftransformer.translator import Translator
    from tftransformer.workflow import load_run

    settings, tokenizers, model = load_run(args.run)
    translator = Translator(tokenizers, model, max_input_tokens=settings.max_tokens)
    path = export_translator(
        translator,
        RunDir(args.run).export_root("translator"),
        args.version,
        settings.max_tokens,
        beam_size=args.beam_size,
        alpha=args.alpha,
    )
    print(path)
    return 0
