import re
import unicodedata
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from fresh_process import run_python

from tftransformer.corpus import read_embedded
from tftransformer.tokenizers import (
    RESERVED_TOKENS,
    TUTORIAL_CONVERTER,
    fetch_tutorial_tokenizers,
    load_tokenizers,
    save_tokenizers,
)


def bert_normalized(sentence):
    """What lower_case=True BERT tokenization keeps: casefolded, accents off, punctuation split."""
    decomposed = unicodedata.normalize("NFD", sentence.casefold())
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return " ".join(re.findall(r"\w+|[^\w\s]", stripped))


def test_public_methods_match_the_published_converter(tokenizers):
    names = {n for n in dir(tokenizers.en) if not n.startswith("_")}
    assert {
        "tokenize",
        "detokenize",
        "lookup",
        "get_vocab_size",
        "get_vocab_path",
        "get_reserved_tokens",
    } <= names


def test_vocab_sizes_are_capped_by_the_corpus(tokenizers):
    for tok in (tokenizers.pt, tokenizers.en):
        size = tok.get_vocab_size()
        assert size.dtype == tf.int32 and size.shape == ()
        assert len(RESERVED_TOKENS) < int(size) <= 8000
        assert [t.decode() for t in tok.get_reserved_tokens().numpy()] == RESERVED_TOKENS
        vocab = tok.lookup(tf.constant([[0, 1, 2, 3]], tf.int64)).numpy()[0]
        assert [t.decode() for t in vocab] == RESERVED_TOKENS


def test_vocab_path_is_a_bundled_asset(tokenizers, tokenizers_dir):
    path = tokenizers.en.get_vocab_path().numpy().decode()
    assert path.endswith("en_vocab.txt") and path.startswith(str(tokenizers_dir))
    with open(path, encoding="utf-8") as f:
        assert len(f.read().splitlines()) == int(tokenizers.en.get_vocab_size())


@pytest.mark.parametrize("lang", ["pt", "en"])
def test_round_trip_on_corpus_sentences(tokenizers, lang):
    sentences = [getattr(row, lang) for row in read_embedded("validation")]
    tok = getattr(tokenizers, lang)
    ids = tok.tokenize(tf.constant(sentences))
    assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int64
    rows = ids.to_list()
    assert all(row[0] == 2 and row[-1] == 3 for row in rows)  # [START] ... [END]
    assert all(1 not in row[1:-1] for row in rows)  # no [UNK] on corpus text
    back = [t.decode() for t in tok.detokenize(ids).numpy()]
    assert back == [bert_normalized(s) for s in sentences]


def test_lookup_gives_word_pieces_that_spell_the_words(tokenizers):
    sentence = "Eu gosto de estudar matemática com meus amigos."
    ids = tokenizers.pt.tokenize([sentence])
    pieces = [p.decode() for p in tokenizers.pt.lookup(ids).numpy()[0]]
    assert pieces[0] == "[START]" and pieces[-1] == "[END]"
    words = " ".join(pieces[1:-1]).replace(" ##", "")
    assert words == bert_normalized(sentence)


def test_detokenize_drops_reserved_tokens_dense_and_ragged(tokenizers):
    ids = tokenizers.en.tokenize(["I like books.", "Good morning!"])
    dense = ids.to_tensor()  # zero ([PAD]) padded
    for tokens in (ids, dense):
        text = [t.decode() for t in tokenizers.en.detokenize(tokens).numpy()]
        assert text == ["i like books .", "good morning !"]
        assert not any(r in t for t in text for r in ("[START]", "[END]", "[PAD]"))


def test_saved_tokenizers_load_in_a_fresh_process_with_only_tf(tokenizers_dir):
    code = f"""
import sys
import tensorflow as tf
import tensorflow_text  # registers the ops
t = tf.saved_model.load({str(tokenizers_dir)!r})
ids = t.en.tokenize(["Hello TensorFlow!"])
print(t.en.detokenize(ids).numpy()[0].decode())
print(int(t.pt.get_vocab_size()))
assert not any(m.startswith("tftransformer") for m in sys.modules)
"""
    lines = run_python(code, timeout=300).stdout.strip().splitlines()
    assert lines[-2] == "hello tensorflow !"
    assert int(lines[-1]) > 4


def test_tutorial_converter_layouts_load(tokenizers, tmp_path):
    # The published converter is a zip of one directory named TUTORIAL_CONVERTER.
    save_tokenizers(tokenizers, tmp_path / "src" / TUTORIAL_CONVERTER)
    archive = tmp_path / f"{TUTORIAL_CONVERTER}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in (tmp_path / "src").rglob("*"):
            zf.write(path, path.relative_to(tmp_path / "src"))
    cache = tmp_path / "cache"
    loaded = fetch_tutorial_tokenizers(cache_dir=str(cache), origin=archive.as_uri())
    sentence = tf.constant(["este é um problema que temos que resolver."])
    np.testing.assert_array_equal(
        loaded.pt.tokenize(sentence).to_tensor(), tokenizers.pt.tokenize(sentence).to_tensor()
    )
    # Keras 3 unpacked into `<name>_extracted/`; the plain name still works.
    assert (cache / f"{TUTORIAL_CONVERTER}_extracted").is_dir()
    assert load_tokenizers(cache / TUTORIAL_CONVERTER) is not None
    assert load_tokenizers(cache / f"{TUTORIAL_CONVERTER}_extracted") is not None


def test_missing_tokenizers_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        load_tokenizers(tmp_path / "nothing-here")


def test_save_is_atomic_and_keeps_the_old_model_on_failure(tokenizers, tmp_path, monkeypatch):
    target = tmp_path / "toks"
    save_tokenizers(tokenizers, target)
    before = sorted(p.name for p in target.rglob("*"))

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        save_tokenizers(tokenizers, target)
    assert sorted(p.name for p in target.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["toks"]  # no staging left behind
    assert load_tokenizers(target).en.get_vocab_size() > 4


def test_detokenize_a_leading_continuation_piece_gives_a_clean_word(tokenizers):
    """An untrained model may emit "[START] ##s ##t": that reads "st", not "##st"."""
    vocab = [t.decode() for t in tokenizers.en.vocab.numpy()]
    pieces = [p for p in vocab if p.startswith("##") and p[2:].isalpha()][:2]
    ids = tf.constant([[2, vocab.index(pieces[0]), vocab.index(pieces[1]), 3]], tf.int64)
    text = tokenizers.en.detokenize(ids).numpy()[0].decode()
    assert text == pieces[0][2:] + pieces[1][2:]


def test_cased_wordpiece_keeps_case_accents_and_composed_hangul(tmp_path):
    import unicodedata

    from tftransformer.tokenizers import CASED_BERT_TOKENIZER_PARAMS, build_tokenizers

    texts = ["Não gosto de dirigir na Cidade.", "한국어를 공부합니다", "Eu li o Livro."] * 20
    pairs = tf.data.Dataset.from_tensor_slices((texts, texts))
    built = build_tokenizers(pairs, 400, vocab_dir=tmp_path, min_token_count=1,
                             bert_tokenizer_params=CASED_BERT_TOKENIZER_PARAMS)  # fmt: skip
    jamo = unicodedata.normalize("NFD", "한국어를 공부합니다")
    inputs = ["Não gosto de dirigir na Cidade.", jamo]
    back = built.pt.detokenize(built.pt.tokenize(tf.constant(inputs))).numpy()
    # Case and accents kept, Hangul composed (punctuation is still split off, as WordPiece does).
    assert [t.decode() for t in back] == ["Não gosto de dirigir na Cidade .", "한국어를 공부합니다"]


def test_a_shared_wordpiece_vocabulary_tokenizes_both_languages(tmp_path):
    from tftransformer.vocabularies.shared_wordpiece import build_shared_wordpiece_tokenizers

    pt = ["Não gosto da cidade grande.", "O livro é muito bom."] * 10
    en = ["I don't like the big city.", "The book is very good."] * 10
    pairs = tf.data.Dataset.from_tensor_slices((pt, en))
    built = build_shared_wordpiece_tokenizers(pairs, 400, vocab_dir=tmp_path, min_token_count=1)
    assert built.pt is built.en  # one tokenizer, one vocabulary for both sides
    assert [p.name for p in tmp_path.iterdir()] == ["shared_vocab.txt"]
    save_tokenizers(built, tmp_path / "saved")
    loaded = load_tokenizers(tmp_path / "saved")
    vocab = set(tmp_path.joinpath("shared_vocab.txt").read_text().split())
    # Whole words of both languages (lower-cased, accents stripped: the tutorial's normalization).
    assert {"nao", "cidade", "livro", "don", "city", "book"} <= vocab
    for side in (loaded.pt, loaded.en):
        ids = side.tokenize(tf.constant([pt[0], en[0]]))
        assert 1 not in ids.flat_values.numpy()  # no [UNK] for either language's words
        back = [t.decode() for t in side.detokenize(ids).numpy()]
        assert back == [bert_normalized(pt[0]), bert_normalized(en[0])]
    assert int(loaded.pt.get_vocab_size()) == int(loaded.en.get_vocab_size()) == len(vocab)


def test_a_shared_wordpiece_run_builds_one_vocabulary(tmp_path):
    from tftransformer.runs.paths import RunDir
    from tftransformer.runs.train import TrainSettings, prepare_tokenizers

    # The builder is tested above; here, that a run uses it.
    settings = TrainSettings(
        tokenizer="wordpiece", shared_vocabulary=True, limit=40, min_token_count=2
    )
    shared = prepare_tokenizers(RunDir(tmp_path), settings, log=lambda *args: None)
    path = shared.pt.get_vocab_path().numpy().decode()
    assert path == shared.en.get_vocab_path().numpy().decode()
    assert path.endswith("shared_vocab.txt")
    assert shared.en.tokenize(tf.constant(["Não gosto."])).shape[0] == 1
