import collections

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tftransformer.corpus import (
    SPLITS,
    CorpusError,
    embedded_tags,
    load_corpus,
    read_embedded,
    read_tsv,
)


@pytest.fixture(scope="module")
def embedded():
    return {split: read_embedded(split) for split in SPLITS}


def test_embedded_corpus_size_and_splits(embedded):
    sizes = {split: len(rows) for split, rows in embedded.items()}
    assert sizes == {"train": 3576, "validation": 199, "test": 199}  # as in resources/README.md
    total = sum(sizes.values())
    assert total >= 3000
    assert 0.85 < sizes["train"] / total < 0.95


def test_embedded_corpus_integrity(embedded):
    tags = set(embedded_tags())
    assert len(tags) >= 10
    seen_pairs, seen_pt, seen_en = {}, {}, {}
    for split, rows in embedded.items():
        for row in rows:
            assert row.pt.strip() and row.en.strip()
            assert 3 <= len(row.pt.split()) <= 30 and 3 <= len(row.en.split()) <= 30
            assert 1 <= len(row.tags) <= 3 and len(set(row.tags)) == len(row.tags)
            assert set(row.tags) <= tags, row
            pair = (row.pt.lower(), row.en.lower())
            assert pair not in seen_pairs, f"duplicate pair in {split} and {seen_pairs[pair]}"
            seen_pairs[pair] = split
            # Not even one side may repeat: no leakage between splits.
            assert seen_pt.setdefault(row.pt.lower(), split) == split
            assert seen_en.setdefault(row.en.lower(), split) == split


def test_every_tag_is_used_in_every_split(embedded):
    for rows in embedded.values():
        counts = collections.Counter(tag for row in rows for tag in row.tags)
        assert set(counts) == set(embedded_tags())


def test_load_corpus_embedded_gives_string_pairs():
    ds = load_corpus("embedded", "validation")
    assert ds.element_spec == (
        tf.TensorSpec([], tf.string),
        tf.TensorSpec([], tf.string),
    )
    pairs = list(ds.as_numpy_iterator())
    rows = read_embedded("validation")
    assert [(p.decode(), e.decode()) for p, e in pairs] == [(r.pt, r.en) for r in rows]


def test_tsv_directory_and_placeholder(tmp_path):
    for split in SPLITS:
        (tmp_path / f"{split}.tsv").write_text(f"olá {split}\thello {split}\n", encoding="utf-8")
    for spec in (f"tsv:{tmp_path}", f"tsv:{tmp_path}/{{split}}.tsv"):
        pairs = list(load_corpus(spec, "test").as_numpy_iterator())
        assert pairs == [("olá test".encode(), b"hello test")]


def test_single_tsv_file_is_split_stably(tmp_path):
    lines = [f"frase {i}\tsentence {i}" for i in range(2000)]
    path = tmp_path / "all.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    parts = {split: read_tsv(str(path), split) for split in SPLITS}
    assert sum(len(p) for p in parts.values()) == 2000
    assert 60 < len(parts["test"]) < 140 and 60 < len(parts["validation"]) < 140
    keys = [{(e.pt, e.en) for e in part} for part in parts.values()]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert read_tsv(str(path), "test") == parts["test"]


@pytest.mark.parametrize(
    "content, problem, line",
    [
        (b"ola\thello\nsem tab aqui\n", "missing tab", 2),
        (b"ola\thello\n\n\t  hello\n", "empty pt side", 3),
        (b"ola\t \n", "empty en side", 1),
        (b"a\tb\nc\td\n\xff\xfeoi\thi\n", "invalid UTF-8", 3),
        (b"a\tb\tc\td\n", "4 tab-separated fields", 1),
    ],
)
def test_bad_tsv_names_file_and_line(tmp_path, content, problem, line):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(CorpusError) as error:
        load_corpus(f"tsv:{path}", "train")
    message = str(error.value)
    assert f"{path}:{line}:" in message and problem in message


def test_missing_tsv_names_the_file(tmp_path):
    with pytest.raises(CorpusError, match="nope.tsv: cannot read"):
        load_corpus(f"tsv:{tmp_path}/nope.tsv")


@pytest.mark.parametrize("spec", ["", "embeded", "csv:x", "tsv:", 42])
def test_bad_spec_is_named(spec):
    with pytest.raises(CorpusError, match="spec"):
        load_corpus(spec)


def test_bad_split_is_named():
    with pytest.raises(CorpusError, match="'dev'"):
        load_corpus("embedded", "dev")


def test_tfds_path_under_mock_data():
    with tfds.testing.mock_data(num_examples=7):
        ds = load_corpus("tfds:ted_hrlr_translate/pt_to_en", "validation")
        pairs = list(ds.as_numpy_iterator())
    assert len(pairs) == 7
    assert all(isinstance(pt, bytes) and isinstance(en, bytes) for pt, en in pairs)


def test_tfds_failure_is_a_corpus_error():
    with pytest.raises(CorpusError, match="tfds:no_such_dataset_xyz"):
        load_corpus("tfds:no_such_dataset_xyz", "train")
