"""Parallel corpora: the embedded pt→en corpus, TSV files and TFDS.

Tutorial: "Data handling" — "Download the dataset". The tutorial loads TED
talk transcripts with `tfds.load('ted_hrlr_translate/pt_to_en', ...)`; that
path is kept here (`tfds:` specs), next to an embedded corpus that needs no
network and TSV files of your own.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import zlib
from pathlib import Path

import tensorflow as tf

from tftransformer._files import first_line

SPLITS = ("train", "validation", "test")
TFDS_DEFAULT = "ted_hrlr_translate/pt_to_en"

# Share of a single TSV file that goes to validation and to test (by a stable
# hash of the line), when the file is not already split.
_HELD_OUT_PER_MILLE = 50


class CorpusError(ValueError):
    """A corpus spec or file is unusable; the message names what and where."""


@dataclasses.dataclass(frozen=True)
class Example:
    """One sentence pair; `tags` are the embedded corpus's topic tags."""

    pt: str
    en: str
    tags: tuple[str, ...] = ()


def _data_file(name: str):
    return importlib.resources.files("tftransformer") / "resources" / name


def embedded_tags() -> tuple[str, ...]:
    """The fixed topic tag set of the embedded corpus, sorted."""
    return tuple(_data_file("tags.txt").read_text(encoding="utf-8").split())


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def parse_tsv_lines(raw: bytes, source: str, min_fields: int = 2, max_fields: int = 3):
    """Parse UTF-8 `pt<TAB>en[<TAB>tags]` lines into `Example`s.

    Blank lines are skipped. Any other problem raises `CorpusError` naming
    `source` and the 1-based line number.
    """
    examples = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise CorpusError(
                f"{source}:{number}: invalid UTF-8 (byte 0x{line[error.start]:02x} "
                f"at column {error.start + 1})"
            ) from None
        fields = text.split("\t")
        if len(fields) < min_fields:
            raise CorpusError(f"{source}:{number}: missing tab; expected 'pt<TAB>en'")
        if len(fields) > max_fields:
            raise CorpusError(
                f"{source}:{number}: {len(fields)} tab-separated fields; expected at most "
                f"{max_fields} (pt, en, tags)"
            )
        pt, en = fields[0].strip(), fields[1].strip()
        for side, value in (("pt", pt), ("en", en)):
            if not value:
                raise CorpusError(f"{source}:{number}: empty {side} side")
        tags = tuple(t for t in fields[2].split(",") if t) if len(fields) == 3 else ()
        examples.append(Example(pt, en, tags))
    return examples


def read_embedded(split: str = "train") -> list[Example]:
    """The embedded corpus's examples for one split (see `resources/README.md`)."""
    _check_split(split)
    name = f"pt_en_{split}.tsv"
    return parse_tsv_lines(_data_file(name).read_bytes(), f"tftransformer/resources/{name}")


def _held_out_bucket(line: Example) -> str:
    value = zlib.crc32(f"{line.pt}\t{line.en}".encode()) % 1000
    if value < _HELD_OUT_PER_MILLE:
        return "test"
    if value < 2 * _HELD_OUT_PER_MILLE:
        return "validation"
    return "train"


def read_tsv(path: str, split: str = "train") -> list[Example]:
    """Examples of `split` from TSV file(s).

    `path` is a directory holding `train.tsv`, `validation.tsv`, `test.tsv`;
    a path containing `{split}`; or one file, split ~90/5/5 by a stable hash
    of each line (the same line always lands in the same split).
    """
    _check_split(split)
    target = Path(path)
    if "{split}" in path:
        target, whole = Path(path.format(split=split)), False
    elif target.is_dir():
        target, whole = target / f"{split}.tsv", False
    else:
        whole = True
    try:
        raw = target.read_bytes()
    except OSError as error:
        raise CorpusError(f"{target}: cannot read ({error.strerror or error})") from None
    examples = parse_tsv_lines(raw, str(target))
    if whole:
        examples = [e for e in examples if _held_out_bucket(e) == split]
    return examples


def load_tfds(name: str = TFDS_DEFAULT, split: str = "train") -> tf.data.Dataset:
    """The tutorial's loader: `tfds.load(name, split=split, as_supervised=True)`."""
    _check_split(split)
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise CorpusError(
            "the tfds: corpus needs tensorflow-datasets; pip install 'tftransformer[tfds]'"
        ) from None
    try:
        return tfds.load(name, split=split, as_supervised=True)
    except Exception as error:  # tfds raises many types (network, registry, ...)
        raise CorpusError(
            f"tfds:{name} ({split}): {type(error).__name__}: {first_line(error)}"
        ) from error


def examples_to_dataset(examples: list[Example]) -> tf.data.Dataset:
    """A `tf.data.Dataset` of `(pt, en)` scalar string pairs."""
    pt = tf.constant([e.pt for e in examples], dtype=tf.string)
    en = tf.constant([e.en for e in examples], dtype=tf.string)
    return tf.data.Dataset.from_tensor_slices((pt, en))


def read_examples(spec: str = "embedded", split: str = "train") -> list[Example]:
    """Examples of a file-backed corpus spec (`embedded` or `tsv:PATH`) as a list."""
    if spec == "embedded":
        return read_embedded(split)
    if spec.startswith("tsv:") and len(spec) > 4:
        return read_tsv(spec[4:], split)
    raise CorpusError(f"corpus spec {spec!r} is not 'embedded' or 'tsv:PATH'")


def load_corpus(spec: str = "embedded", split: str = "train") -> tf.data.Dataset:
    """`(pt, en)` string pairs of one split, as a `tf.data.Dataset`.

    Tutorial: "Download the dataset" (`as_supervised=True` pairs).

    Args:
        spec: `"embedded"` (the package's own corpus), `"tsv:PATH"` (UTF-8
            `pt<TAB>en` lines; see `read_tsv` for how PATH is split), or
            `"tfds:NAME"` such as `"tfds:ted_hrlr_translate/pt_to_en"`.
        split: `"train"`, `"validation"` or `"test"`.
    """
    if not isinstance(spec, str):
        raise CorpusError(f"corpus spec must be a string, got {spec!r}")
    if spec.startswith("tfds:"):
        return load_tfds(spec[5:] or TFDS_DEFAULT, split)
    if spec == "embedded" or spec.startswith("tsv:"):
        return examples_to_dataset(read_examples(spec, split))
    raise CorpusError(
        f"unknown corpus spec {spec!r}; expected 'embedded', 'tsv:PATH' or 'tfds:NAME'"
    )
