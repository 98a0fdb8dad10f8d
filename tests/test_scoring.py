import pytest
import tensorflow as tf

from tftransformer.corpus import read_embedded
from tftransformer.runs.scoring import corpus_scores, normalize_like_tokenizer, published_scores


def test_normalization_matches_the_tokenizer_round_trip(tokenizers):
    sentences = [row.en for row in read_embedded("test")] + ["Don't stop, Café!"]
    ids = tokenizers.en.tokenize(tf.constant(sentences))
    round_trip = [t.decode() for t in tokenizers.en.detokenize(ids).numpy()]
    assert [normalize_like_tokenizer(s) for s in sentences[:-1]] == round_trip[:-1]
    assert normalize_like_tokenizer("Don't stop, Café!") == "don ' t stop , cafe !"


def test_perfect_translations_score_100_whatever_the_formatting():
    refs = ["I don't like driving in the big city.", "The river starts in the mountains."]
    hyps = ["i don ' t like driving in the big city .", "the river starts in the mountains ."]
    scores = corpus_scores(hyps, refs)
    assert scores == {"bleu": 100.0, "chrf": 100.0, "sentences": 2}


def test_wrong_translations_score_lower():
    refs = ["The storm knocked down a tree on our street."]
    good = corpus_scores(["the storm knocked down a tree in the street ."], refs)
    bad = corpus_scores(["hotels are expensive ."], refs)
    assert 0 <= bad["bleu"] < good["bleu"] < 100 and bad["chrf"] < good["chrf"] < 100


def test_unpaired_lists_are_refused():
    with pytest.raises(ValueError, match="2 hypotheses for 1 references"):
        corpus_scores(["a", "b"], ["a"])


def test_published_scores_are_on_the_raw_references_with_the_signature():
    refs = ["I don't like driving in the big city.", "The river starts in the mountains."]
    assert published_scores(refs, refs)["bleu"] == 100.0
    tokenized = ["i don ' t like driving in the big city .", "the river starts in the mountains ."]
    raw = published_scores(tokenized, refs)
    assert raw["bleu"] < 100 and raw["chrf"] < 100  # case and spacing count, as published
    assert corpus_scores(tokenized, refs)["bleu"] == 100.0  # normalized: they do not
    assert "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in raw["signature"]
    assert "chrF nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:" in raw["signature"]
