"""Corpus BLEU and chrF through sacrebleu.

Not in the tutorial (which only shows a few translations); standard
machine-translation scores so runs can be compared.

`published_scores` is what the field publishes: sacrebleu's BLEU and chrF with
their defaults on the raw, cased references, with sacrebleu's signature strings.

The tutorial's WordPiece tokenizer lower-cases, strips accents and splits
punctuation off words, so its translations look like `"i ' m here ."`.
`corpus_scores` normalizes the references the same way before scoring
(`normalize_like_tokenizer`), which measures such a model's words rather than
that formatting; those scores are labelled "normalized" wherever they are
printed, since they cannot be compared with published ones.
"""

from __future__ import annotations

import re
import unicodedata

_WORD_OR_PUNCT = re.compile(r"\w+|[^\w\s]")


def prints_normalized_text(tokenizer_kind: str) -> bool:
    """Whether a run with this `--tokenizer` kind translates into normalized text.

    Only the tutorial's lower-casing WordPiece does; its runs also get the
    "normalized" scores. SentencePiece and cased WordPiece keep case and accents.
    """
    return tokenizer_kind == "wordpiece"


def normalize_like_tokenizer(text: str) -> str:
    """Lower-case, strip accents, split punctuation: the text a lower_case BERT
    tokenizer round trip produces (`"Don't!"` → `"don ' t !"`)."""
    decomposed = unicodedata.normalize("NFD", text.casefold())
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return " ".join(_WORD_OR_PUNCT.findall(stripped))


def _paired(hypotheses, references):
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses for {len(references)} references; they must pair up"
        )
    return hypotheses, references


def published_scores(hypotheses, references) -> dict:
    """sacrebleu BLEU and chrF on the raw references, as published, with their signatures.

    `{"bleu", "chrf", "sentences", "signature"}`; `signature` names both metrics'
    sacrebleu settings (tokenizer, smoothing, case, version).
    """
    import sacrebleu

    hypotheses, references = _paired(hypotheses, references)
    # force: WordPiece output ends sentences in " ." on purpose; sacrebleu would warn about
    # "tokenized" input on every call. The scores and signatures are the same.
    bleu, chrf = sacrebleu.metrics.BLEU(force=True), sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {
        "bleu": round(bleu_score.score, 2),
        "chrf": round(chrf_score.score, 2),
        "sentences": len(hypotheses),
        "signature": f"BLEU {bleu.get_signature()}; chrF {chrf.get_signature()}",
    }


def corpus_scores(hypotheses, references) -> dict:
    """Normalized scores: `{"bleu", "chrf", "sentences"}` after `normalize_like_tokenizer`
    on both sides (see the module docstring)."""
    import sacrebleu

    hypotheses, references = _paired(hypotheses, references)
    hyps = [normalize_like_tokenizer(h) for h in hypotheses]
    refs = [normalize_like_tokenizer(r) for r in references]
    # Both sides are tokenizer-normalized on purpose (see module docstring).
    bleu = sacrebleu.corpus_bleu(hyps, [refs], force=True)
    chrf = sacrebleu.corpus_chrf(hyps, [refs])
    return {"bleu": round(bleu.score, 2), "chrf": round(chrf.score, 2), "sentences": len(hyps)}
