import numpy as np
import pytest
import tensorflow_datasets as tfds

from tftransformer.classification.labelled import (
    GOEMOTIONS_LABELS,
    LabelError,
    LabelledText,
    LabelVocab,
    read_labelled,
)
from tftransformer.corpus import CorpusError, embedded_tags


def test_embedded_topic_tags_are_multilabel_examples():
    train = read_labelled("embedded", "train")
    assert len(train) == 3576 and all(1 <= len(e.labels) <= 3 for e in train)
    assert LabelVocab.from_examples(train).names == embedded_tags()
    pt = read_labelled("embedded", "test", side="pt")
    en = read_labelled("embedded", "test", side="en")
    assert [e.labels for e in pt] == [e.labels for e in en] and pt[0].text != en[0].text


def test_tsv_and_csv_files(tmp_path):
    (tmp_path / "train.tsv").write_text("good film\tpos\nawful and long\tneg|long\n", "utf-8")
    assert read_labelled(f"tsv:{tmp_path}/{{split}}.tsv", "train") == [
        LabelledText("good film", ("pos",)),
        LabelledText("awful and long", ("neg", "long")),
    ]
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "test.csv").write_text('"hello, world",greeting|english\n', "utf-8")
    assert read_labelled(f"csv:{csv_dir}", "test") == [
        LabelledText("hello, world", ("greeting", "english"))
    ]


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"text without labels\n", "expected 2 fields"),
        (b"ok\tpos\n\tpos\n", "empty text"),
        (b"ok\tpos\nfine\t|\n", "no label"),
        (b"ok\tpos\n\xffbad\tneg\n", "invalid UTF-8"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, content, problem):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=problem) as error:
        read_labelled(f"tsv:{path}", "train")
    assert f"{path}:" in str(error.value)


def test_unknown_labels_are_reported_with_their_example():
    vocab = LabelVocab(["food", "work"])
    examples = [LabelledText("a", ("food",)), LabelledText("b", ("sport", "work"))]
    with pytest.raises(LabelError, match=r"validation: .*'sport' \(first in example 2\)"):
        vocab.check(examples, "validation")
    np.testing.assert_array_equal(
        vocab.multi_hot([LabelledText("x", ("work", "food"))]), [[1.0, 1.0]]
    )


def test_multiclass_needs_exactly_one_label():
    vocab = LabelVocab(["neg", "pos"])
    np.testing.assert_array_equal(vocab.class_ids([LabelledText("a", ("pos",))]), [1])
    with pytest.raises(LabelError, match="exactly one"):
        vocab.class_ids([LabelledText("a", ("pos", "neg"))])


def test_label_vocab_save_load(tmp_path):
    vocab = LabelVocab(["b", "a"])
    vocab.save(tmp_path / "labels.txt")
    assert LabelVocab.load(tmp_path / "labels.txt").names == ("b", "a")


def test_tfds_imdb_and_goemotions_under_mock_data():
    with tfds.testing.mock_data(num_examples=6):
        imdb = read_labelled("tfds:imdb_reviews", "validation")
        emotions = read_labelled("tfds:goemotions", "train")
    assert len(imdb) == 6 and all(e.labels in (("neg",), ("pos",)) for e in imdb)
    assert emotions and all(set(e.labels) <= set(GOEMOTIONS_LABELS) for e in emotions)
    assert any(len(e.labels) > 1 for e in emotions)


def test_bad_specs_are_named():
    with pytest.raises(CorpusError, match="nonsense"):
        read_labelled("nonsense")
    with pytest.raises(CorpusError, match="tfds:mnist"):
        read_labelled("tfds:mnist")
