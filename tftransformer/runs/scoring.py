"""Corpus BLEU and chrF through sacrebleu.

Not in the tutorial (which only shows a few translations); standard
machine-translation scores so runs can be compared.

The tutorial's tokenizer lower-cases, strips accents and splits punctuation
off words, so its translations look like `"i ' m here ."`. References are
normalized the same way before scoring (`normalize_like_tokenizer`), so the
scores measure the translation rather than that formatting; both BLEU and chrF
are then computed by sacrebleu with its defaults (13a tokenization).
"""

from __future__ import annotations

import re
import unicodedata

_WORD_OR_PUNCT = re.compile(r"\w+|[^\w\s]")


def normalize_like_tokenizer(text: str) -> str:
    """Lower-case, strip accents, split punctuation: the text a lower_case BERT
    tokenizer round trip produces (`"Don't!"` → `"don ' t !"`)."""
    decomposed = unicodedata.normalize("NFD", text.casefold())
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return " ".join(_WORD_OR_PUNCT.findall(stripped))


def corpus_scores(hypotheses, references) -> dict:
    """`{"bleu": float, "chrf": float, "sentences": n}` for parallel lists of strings."""
    import sacrebleu

    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses for {len(references)} references; they must pair up"
        )
    hyps = [normalize_like_tokenizer(h) for h in hypotheses]
    refs = [normalize_like_tokenizer(r) for r in references]
    # Both sides are tokenizer-normalized on purpose (see module docstring).
    bleu = sacrebleu.corpus_bleu(hyps, [refs], force=True)
    chrf = sacrebleu.corpus_chrf(hyps, [refs])
    return {"bleu": round(bleu.score, 2), "chrf": round(chrf.score, 2), "sentences": len(hyps)}
