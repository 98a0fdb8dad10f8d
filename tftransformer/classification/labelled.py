"""Labelled text for the classifier: embedded topic tags, TSV/CSV files, TFDS.

Sources (`spec`):
  - `embedded`: the embedded corpus's sentences with their 1-3 topic tags
    (multi-label); `side` picks the English or Portuguese sentence.
  - `tsv:PATH` / `csv:PATH`: `text<TAB>label1|label2` lines (or two CSV
    columns), split like `corpus.read_tsv` (a directory, `{split}`, or one file).
  - `tfds:imdb_reviews` (binary: neg/pos) and `tfds:goemotions` (multi-label,
    28 emotions), through `tensorflow_datasets`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from tftransformer._files import first_line
from tftransformer.corpus import (
    SPLITS,
    CorpusError,
    _check_split,
    _held_out_bucket,
    read_embedded,
)


@dataclasses.dataclass(frozen=True)
class LabelledText:
    text: str
    labels: tuple[str, ...]


def _resolve(path: str, split: str):
    target = Path(path)
    if "{split}" in path:
        return Path(path.format(split=split)), False
    if target.is_dir():
        suffix = ".csv" if any(target.glob("*.csv")) else ".tsv"
        return target / f"{split}{suffix}", False
    return target, True


def _parse_rows(rows, source):
    examples = []
    for number, fields in rows:
        if not fields or not any(f.strip() for f in fields):
            continue
        if len(fields) != 2:
            raise CorpusError(
                f"{source}:{number}: expected 2 fields (text, labels), got {len(fields)}"
            )
        text, labels = (
            fields[0].strip(),
            tuple(label.strip() for label in fields[1].split("|") if label.strip()),
        )
        if not text:
            raise CorpusError(f"{source}:{number}: empty text")
        if not labels:
            raise CorpusError(f"{source}:{number}: no label")
        examples.append(LabelledText(text, labels))
    return examples


def read_labelled_file(path: str, split: str = "train") -> list[LabelledText]:
    """`text<TAB>l1|l2` (.tsv) or two-column CSV (.csv) examples of `split`."""
    _check_split(split)
    target, whole = _resolve(path, split)
    try:
        raw = target.read_bytes()
    except OSError as error:
        raise CorpusError(f"{target}: cannot read ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CorpusError(f"{target}:{line}: invalid UTF-8") from None
    if target.suffix == ".csv":
        reader = csv.reader(io.StringIO(text))
        rows = ((reader.line_num, fields) for fields in reader)
    else:
        rows = ((n, line.split("\t")) for n, line in enumerate(text.splitlines(), start=1))
    examples = _parse_rows(rows, str(target))
    if whole:
        examples = [e for e in examples if _held_out_bucket_text(e) == split]
    return examples


def _held_out_bucket_text(example: LabelledText) -> str:
    from tftransformer.corpus import Example

    return _held_out_bucket(Example(example.text, "|".join(example.labels)))


GOEMOTIONS_LABELS = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip
_IMDB_SPLITS = {"train": "train", "validation": "test[:50%]", "test": "test[50%:]"}


def read_tfds_labelled(name: str, split: str = "train", limit=None) -> list[LabelledText]:
    """`imdb_reviews` (neg/pos) or `goemotions` (multi-label) from TFDS."""
    _check_split(split)
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise CorpusError(
            "tfds: specs need tensorflow-datasets; pip install 'tftransformer[tfds]'"
        ) from None
    try:
        if name == "imdb_reviews":
            ds = tfds.load(name, split=_IMDB_SPLITS[split], as_supervised=True)
            if limit:
                ds = ds.take(limit)
            return [
                LabelledText(text.decode("utf-8"), ("pos" if label else "neg",))
                for text, label in ds.as_numpy_iterator()
            ]
        if name == "goemotions":
            ds = tfds.load(name, split=split)
            if limit:
                ds = ds.take(limit)
            examples = []
            for row in ds.as_numpy_iterator():
                labels = tuple(label for label in GOEMOTIONS_LABELS if row[label])
                examples.append(LabelledText(row["comment_text"].decode("utf-8"), labels))
            return [e for e in examples if e.labels]
    except CorpusError:
        raise
    except Exception as error:
        raise CorpusError(
            f"tfds:{name} ({split}): {type(error).__name__}: {first_line(error)}"
        ) from error
    raise CorpusError(f"tfds:{name}: no labelled reader; expected imdb_reviews or goemotions")


def read_labelled(spec="embedded", split="train", side="en", limit=None) -> list[LabelledText]:
    """Labelled examples of one split from any supported `spec`."""
    _check_split(split)
    if spec == "embedded":
        if side not in ("en", "pt"):
            raise CorpusError(f"side must be 'en' or 'pt', got {side!r}")
        examples = [LabelledText(getattr(r, side), r.tags) for r in read_embedded(split)]
    elif spec.startswith(("tsv:", "csv:")) and len(spec) > 4:
        examples = read_labelled_file(spec[4:], split)
    elif spec.startswith("tfds:"):
        return read_tfds_labelled(spec[5:], split, limit)
    else:
        raise CorpusError(
            f"unknown labelled-text spec {spec!r}; expected 'embedded', 'tsv:PATH', "
            "'csv:PATH' or 'tfds:imdb_reviews' / 'tfds:goemotions'"
        )
    return examples[:limit] if limit else examples


class LabelError(ValueError):
    """Labels in evaluation data that the training split never had."""


class LabelVocab:
    """The label names, in score order, built from the training split."""

    def __init__(self, names):
        self.names = tuple(names)
        self.index = {name: i for i, name in enumerate(self.names)}

    @classmethod
    def from_examples(cls, examples) -> LabelVocab:
        return cls(sorted({label for e in examples for label in e.labels}))

    def check(self, examples, source="data") -> None:
        """Raise `LabelError` naming every unknown label and its first example."""
        unknown = {}
        for number, example in enumerate(examples, start=1):
            for label in example.labels:
                if label not in self.index:
                    unknown.setdefault(label, number)
        if unknown:
            found = ", ".join(f"{label!r} (first in example {n})" for label, n in unknown.items())
            raise LabelError(
                f"{source}: label(s) not in the training label set {list(self.names)}: {found}"
            )

    def multi_hot(self, examples):
        import numpy as np

        self.check(examples)
        out = np.zeros((len(examples), len(self.names)), "float32")
        for row, example in enumerate(examples):
            for label in example.labels:
                out[row, self.index[label]] = 1.0
        return out

    def class_ids(self, examples, source="data"):
        """One class per example (multi-class); several labels is an error."""
        import numpy as np

        self.check(examples, source)
        for number, example in enumerate(examples, start=1):
            if len(example.labels) != 1:
                raise LabelError(
                    f"{source}: example {number} has {len(example.labels)} labels "
                    f"{list(example.labels)}; multi-class needs exactly one (use multilabel)"
                )
        return np.array([self.index[e.labels[0]] for e in examples], "int64")

    def save(self, path) -> None:
        from tftransformer._files import write_text_atomic

        write_text_atomic(path, "".join(name + "\n" for name in self.names))

    @classmethod
    def load(cls, path) -> LabelVocab:
        """The names saved by `save`, or a `RunError` naming the file and the problem."""
        from tftransformer._files import RunError

        try:
            names = Path(path).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise RunError(f"{path}: missing") from None
        except (OSError, UnicodeDecodeError) as error:
            raise RunError(f"{path}: unreadable ({first_line(error)})") from None
        if not names or any(not name.strip() for name in names):
            raise RunError(f"{path}: expected one label name per line, no blank lines")
        return cls(names)


__all__ = [
    "SPLITS",
    "LabelError",
    "LabelVocab",
    "LabelledText",
    "read_labelled",
]
