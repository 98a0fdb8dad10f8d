"""Near-tie checks for tests that compare decoded tokens across computations.

Two decoders that compute the same logits by different arithmetic (cached vs
full, batched vs single, XLA vs plain, graph vs eager, another batch position)
agree within about 1e-5 on a logit, not bit for bit. Their argmax tokens are
then equal wherever the best logit leads the second by far more than that, and
may differ where two logits nearly tie. These helpers measure that lead on the
reference tokens with the full (uncached) model, so a token-equality test can
assert equality exactly where it is guaranteed.
"""

import numpy as np
import tensorflow as tf

# Far above the ~1e-5 disagreement between decoders, far below a typical lead.
MARGIN = 1e-3
END = 3


def greedy_margin(model, context, ids):
    """Smallest top-1 minus top-2 logit gap along the greedy tokens `ids`.

    `context`: one row of source ids (padding allowed); `ids`: the decoded row,
    starting with [START], up to and including [END] (anything after is ignored).
    Returns -inf where `ids` is not the full model's greedy choice at some step.
    """
    ids = np.asarray(ids)
    ends = np.flatnonzero(ids == END)
    ids = ids[: ends[0] + 1] if ends.size else ids
    if len(ids) < 2:
        return np.inf
    logits = model([np.asarray(context)[np.newaxis], ids[np.newaxis, :-1]], training=False)
    logits = tf.cast(logits, tf.float32).numpy()[0]  # (steps, vocab)
    top2 = np.sort(logits, axis=-1)[:, -2:]
    chosen = logits[np.arange(len(ids) - 1), ids[1:]]
    if (chosen < top2[:, 1]).any():
        return -np.inf
    return float((top2[:, 1] - top2[:, 0]).min())


def decisive_rows(model, contexts, rows, margin=MARGIN):
    """Indices of the rows whose greedy tokens never nearly tie (see `greedy_margin`)."""
    return [
        i for i, (c, r) in enumerate(zip(contexts, rows, strict=True))
        if greedy_margin(model, c, r) > margin
    ]  # fmt: skip


def text_ids(tokenizers, text, max_tokens=None):
    """The source ids of one sentence, trimmed to `max_tokens` as the translators do."""
    return tokenizers.pt.tokenize(tf.constant([text])).to_tensor().numpy()[0, :max_tokens]


def target_ids(tokenizers, pieces):
    """Target ids of a list of word pieces (as `Translator` returns them)."""
    vocab = [t.decode() for t in tokenizers.en.vocab.numpy()]
    index = {piece: i for i, piece in enumerate(vocab)}
    return np.array([index[p] for p in pieces])
