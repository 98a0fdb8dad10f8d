"""What every command shares: the parser class, argument types, the hyper-parameter
flags, the beam options, reading inputs and the progress bar."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from tftransformer.config import TransformerConfig
from tftransformer.inference.search import DEFAULT_ALPHA, DEFAULT_BEAM_SIZE
from tftransformer.runs.train_options import TOKENIZERS


class UsageError(Exception):
    """An error the user can fix; printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no multi-line usage dump)."""

    def error(self, message):
        # Command-line bytes that are not UTF-8 reach Python as lone surrogates,
        # which stderr cannot encode: print them escaped instead of crashing.
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_hparam_flags(parser: argparse.ArgumentParser, recipe_defaults=None) -> None:
    """One `--flag` per `TransformerConfig` field, defaulting to the tutorial's.

    `recipe_defaults` maps a field to the help text of a default a recipe chooses; such a
    flag's parser default is None ("not given"), for `--recipe` to fill in.
    """
    recipe_defaults = recipe_defaults or {}
    group = parser.add_argument_group("model hyperparameters (tutorial defaults)")
    for field in dataclasses.fields(TransformerConfig):
        chosen = field.name in recipe_defaults
        group.add_argument(
            "--" + field.name.replace("_", "-"),
            type=float if field.type in (float, "float") else int,
            default=None if chosen else field.default,
            help=recipe_defaults[field.name] if chosen else f"default {field.default}",
        )


def hparams_from_args(args: argparse.Namespace, **chosen) -> TransformerConfig:
    """The `TransformerConfig` the flags give; `chosen` fills fields the recipe decides."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TransformerConfig)}
    values.update(chosen)
    try:
        return TransformerConfig(**values)
    except ValueError as error:
        raise UsageError(str(error)) from error


def add_beam_options(parser) -> None:
    parser.add_argument(
        "--beam-size",
        type=positive_int,
        default=DEFAULT_BEAM_SIZE,
        help=f"beam width (default {DEFAULT_BEAM_SIZE})",
    )
    parser.add_argument(
        "--alpha",
        type=non_negative_float,
        default=DEFAULT_ALPHA,
        help=f"GNMT length-penalty exponent (default {DEFAULT_ALPHA})",
    )


def add_tokenizer_options(parser, defaults) -> None:
    """`--tokenizer` and `--vocab-size`, defaulting to the settings' `defaults`; recorded in
    the run's config.json."""
    parser.add_argument(
        "--tokenizer",
        choices=TOKENIZERS,
        default=defaults.tokenizer,
        help="wordpiece: the tutorial's (lower-cased, accents stripped, punctuation split); "
        "wordpiece-cased: keeps case and accents, NFC (Hangul composed); "
        f"sentencepiece: cased and reversible, any script (default {defaults.tokenizer})",
    )
    parser.add_argument(
        "--vocab-size",
        type=positive_int,
        default=defaults.vocab_size,
        help=f"most subword pieces per language (default {defaults.vocab_size}; "
        "a small corpus gets fewer)",
    )


def valid_text(text: str) -> str:
    """`text` as valid Unicode: bytes that were not UTF-8 become U+FFFD.

    Python keeps undecodable command-line bytes as lone surrogates, which
    `tf.constant` cannot encode; this recovers the bytes and replaces them.
    """
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # other lone surrogates
        data = text.encode("utf-8", "replace")
    return data.decode("utf-8", "replace")


def input_lines(texts, stream=None) -> list[str]:
    """The command's inputs: `texts` (arguments) or one per line of `stream` (default stdin).

    Never fails on bad bytes (see `valid_text`), and gives exactly one input per line.
    """
    if texts:
        return [valid_text(t) for t in texts]
    stream = stream or sys.stdin
    binary = getattr(stream, "buffer", None)
    if binary is None:  # a text stream (tests, notebooks)
        return [valid_text(line.rstrip("\n")) for line in stream]
    data = binary.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    return [line.decode("utf-8", "replace") for line in lines]


# Every character `str.splitlines` ends a line at (\r too, which universal-newline
# reading turns into \n). A SentencePiece model spells rare characters as byte pieces,
# so an output can hold any of them.
_LINE_BREAKS = {ord(c): " " for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"}


def as_line(text: str) -> str:
    """One output line for one translation: `translate` prints it and
    `evaluate --hypotheses` writes it (a line break inside becomes a space)."""
    return text.translate(_LINE_BREAKS)


def progress_bar(unit="sentence"):
    """A `progress(done, total)` callback drawing a tqdm bar on stderr (stdout stays clean
    for pipes)."""
    from tqdm import tqdm

    bar = None

    def update(done, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def score_lines(label, scores, detail, normalized=False) -> list[str]:
    """What `train` and `evaluate` print for `evaluate_split`'s scores.

    The published scores (sacrebleu on raw references) and their signature; with
    `normalized`, also the scores after normalizing the references like the
    lower-casing WordPiece tokenizer, labelled as such.
    """
    lines = [
        f"{label} BLEU {scores['bleu']:.2f}  chrF {scores['chrf']:.2f}  "
        f"({scores['sentences']} sentences, {detail})",
        f"  sacrebleu on raw references: {scores['signature']}",
    ]
    if normalized:
        norm = scores["normalized"]
        lines.append(
            f"  normalized (references lower-cased, accents stripped, punctuation split, "
            f"as the tokenizer does): BLEU {norm['bleu']:.2f}  chrF {norm['chrf']:.2f}"
        )
    return lines
