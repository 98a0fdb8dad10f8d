"""Greedy and beam search over an `IncrementalDecoder`, batched, in-graph.

Both run as one `tf.while_loop` over positions on a whole batch of sentences.
Each row stops at its own `[END]`; after that it only pads (id 0) while the
others go on, and the loop ends when every row is done or after
`max_length` new tokens.

Scores use the GNMT length penalty (Wu et al. 2016):
`score = log P(tokens) / ((5 + length) / 6) ** alpha`, where `length` counts
the generated tokens including `[END]` (not `[START]`).
"""

from __future__ import annotations

import tensorflow as tf

# The beam defaults everywhere (CLI, export, FastTranslator): beam 4 and GNMT alpha 0.6,
# as in the GNMT paper and the NMT toolkits.
DEFAULT_BEAM_SIZE = 4
DEFAULT_ALPHA = 0.6


def length_penalty(lengths, alpha):
    """GNMT's `((5 + length) / 6) ** alpha`, float32, same shape as `lengths`."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def _start_ids(rows, start_id, max_length):
    """(rows, max_length + 1) int64: `start_id` then zeros."""
    first = tf.fill([rows, 1], tf.cast(start_id, tf.int64))
    return tf.concat([first, tf.zeros([rows, max_length], tf.int64)], axis=1)


def _write_column(ids, column, values):
    """`ids` with `ids[:, column] = values`."""
    rows = tf.shape(ids)[0]
    where = tf.stack([tf.range(rows), tf.fill([rows], column)], axis=1)
    return tf.tensor_scatter_nd_update(ids, where, values)


def greedy_search(decoder, context_ids, start_id, end_id, max_length):
    """The tutorial's greedy decoding, cached and batched.

    Args:
        decoder: an `IncrementalDecoder`.
        context_ids: (batch, input_tokens) int64 source ids, 0-padded.
        start_id, end_id: the target `[START]` / `[END]` ids.
        max_length: Python int, the most new tokens per sentence.

    Returns a dict:
        ids: (batch, max_length + 1) int64, `[START]` first, 0 after `[END]`.
        log_probs: (batch,) float32, summed log-softmax of the chosen tokens.
        lengths: (batch,) int32, new tokens including `[END]`.
    """
    rows = tf.shape(context_ids)[0]
    state = decoder.start(context_ids, max_length)
    weights = decoder.weights()
    ids = _start_ids(rows, start_id, max_length)
    log_probs = tf.zeros([rows], tf.float32)
    lengths = tf.zeros([rows], tf.int32)
    finished = tf.zeros([rows], tf.bool)

    def keep_going(t, ids, state, log_probs, lengths, finished):
        return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(finished)))

    def one_step(t, ids, state, log_probs, lengths, finished):
        logits, state = decoder.step(state, ids, t, weights)  # (batch, vocab)
        next_ids = tf.argmax(logits, axis=-1, output_type=tf.int64)  # as the tutorial picks
        chosen = tf.gather(tf.nn.log_softmax(logits), next_ids, batch_dims=1)
        alive = tf.logical_not(finished)
        next_ids = tf.where(alive, next_ids, tf.zeros_like(next_ids))  # done rows only pad
        log_probs += tf.where(alive, chosen, 0.0)
        lengths += tf.cast(alive, tf.int32)
        finished = tf.logical_or(finished, next_ids == end_id)
        return t + 1, _write_column(ids, t + 1, next_ids), state, log_probs, lengths, finished

    loop_vars = (tf.constant(0), ids, state, log_probs, lengths, finished)
    invariants = (
        tf.TensorShape([]),
        tf.TensorShape([None, max_length + 1]),
        decoder.shape_invariants(state),
        tf.TensorShape([None]),
        tf.TensorShape([None]),
        tf.TensorShape([None]),
    )
    _, ids, _, log_probs, lengths, _ = tf.while_loop(
        keep_going, one_step, loop_vars, shape_invariants=invariants, maximum_iterations=max_length
    )
    return {"ids": ids, "log_probs": log_probs, "lengths": lengths}


def beam_search(
    decoder,
    context_ids,
    start_id,
    end_id,
    max_length,
    beam_size=DEFAULT_BEAM_SIZE,
    alpha=DEFAULT_ALPHA,
):
    """Beam search with the cache and GNMT length normalisation.

    Each sentence keeps `beam_size` hypotheses. At every step each unfinished
    hypothesis is extended by every token, each finished one is carried over
    unchanged with its final score, and the `beam_size` best candidates by
    length-normalised score form the next beam (their caches follow them).
    The search ends when every hypothesis of every sentence has produced
    `[END]`, or after `max_length` new tokens.

    The greedy hypothesis is anchored: it always keeps a place in the beam
    (taking the last place when it would not make the cut). Plain beam
    search can prune the greedy prefix early and end with a result scored
    below greedy decoding's (measured on our test model); anchoring makes the
    returned translation never worse than greedy's under the same score, and
    `beam_size=1` exactly greedy decoding.

    Returns a dict, hypotheses best first:
        ids: (batch, beam, max_length + 1) int64.
        scores: (batch, beam) float32, `log_probs / length_penalty(lengths)`.
        log_probs: (batch, beam) float32; lengths: (batch, beam) int32.
    """
    beam = int(beam_size)
    batch = tf.shape(context_ids)[0]
    rows = batch * beam  # row b * beam + k is hypothesis k of sentence b
    start = decoder.start(context_ids, max_length)
    weights = decoder.weights()
    state = {name: tf.repeat(value, beam, axis=0) for name, value in start.items()}
    ids = _start_ids(rows, start_id, max_length)
    # Only the first copy of each sentence is live at first, so the first
    # step does not fill the beam with duplicates.
    first = tf.concat([[0.0], tf.fill([beam - 1], float("-inf"))], axis=0)
    log_probs = tf.tile(first[tf.newaxis, :], [batch, 1])  # (batch, beam)
    lengths = tf.zeros([batch, beam], tf.int32)
    finished = tf.zeros([batch, beam], tf.bool)
    greedy = tf.tile(tf.equal(tf.range(beam), 0)[tf.newaxis, :], [batch, 1])  # the anchor
    offsets = tf.range(batch)[:, tf.newaxis] * beam  # (batch, 1)

    def keep_going(t, ids, state, log_probs, lengths, finished, greedy):
        return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(finished)))

    def one_step(t, ids, state, log_probs, lengths, finished, greedy):
        logits, state = decoder.step(state, ids, t, weights)  # (rows, vocab)
        vocab = tf.shape(logits)[-1]
        candidate_scores, candidate_log_probs = _candidates(
            logits, log_probs, lengths, finished, alpha, beam
        )
        best, flat_anchor = _best_with_anchor(candidate_scores, logits, finished, greedy, beam)
        greedy = tf.gather(flat_anchor, best, batch_dims=1)
        parents = best // vocab
        tokens = tf.cast(best % vocab, tf.int64)
        log_probs = tf.gather(tf.reshape(candidate_log_probs, [batch, -1]), best, batch_dims=1)
        was_done = tf.gather(finished, parents, batch_dims=1)
        lengths = tf.gather(lengths, parents, batch_dims=1) + tf.cast(~was_done, tf.int32)
        tokens = tf.where(was_done, tf.zeros_like(tokens), tokens)
        finished = tf.logical_or(was_done, tokens == end_id)

        chosen_rows = tf.reshape(parents + offsets, [-1])  # (rows,)
        ids = _write_column(tf.gather(ids, chosen_rows), t + 1, tf.reshape(tokens, [-1]))
        state = decoder.reorder(state, chosen_rows)
        return t + 1, ids, state, log_probs, lengths, finished, greedy

    loop_vars = (tf.constant(0), ids, state, log_probs, lengths, finished, greedy)
    invariants = (
        tf.TensorShape([]),
        tf.TensorShape([None, max_length + 1]),
        decoder.shape_invariants(state),
        *[tf.TensorShape([None, beam])] * 4,
    )
    _, ids, _, log_probs, lengths, _, _ = tf.while_loop(
        keep_going, one_step, loop_vars, shape_invariants=invariants, maximum_iterations=max_length
    )
    scores = log_probs / length_penalty(lengths, alpha)
    scores, order = tf.math.top_k(scores, k=beam)  # best first
    ids = tf.gather(tf.reshape(ids, [batch, beam, max_length + 1]), order, batch_dims=1)
    return {
        "ids": ids,
        "scores": scores,
        "log_probs": tf.gather(log_probs, order, batch_dims=1),
        "lengths": tf.gather(lengths, order, batch_dims=1),
    }


def _candidates(logits, log_probs, lengths, finished, alpha, beam):
    """Every hypothesis's candidates, (batch, beam, vocab): scores and log-probabilities.

    An unfinished hypothesis extended by each token, scored length-normalised; a
    finished one stays as one candidate (token slot 0) with its final score.
    """
    vocab = tf.shape(logits)[-1]
    step_log_probs = tf.reshape(tf.nn.log_softmax(logits), [-1, beam, vocab])
    extended = log_probs[:, :, tf.newaxis] + step_log_probs  # (batch, beam, vocab)
    extended_scores = extended / length_penalty(lengths + 1, alpha)[:, :, tf.newaxis]
    stay = tf.equal(tf.range(vocab), 0)[tf.newaxis, tf.newaxis, :]
    kept_scores = (log_probs / length_penalty(lengths, alpha))[:, :, tf.newaxis]
    kept_scores = tf.where(stay, kept_scores, float("-inf"))
    done = finished[:, :, tf.newaxis]
    return (tf.where(done, kept_scores, extended_scores),
            tf.where(done, log_probs[:, :, tf.newaxis], extended))  # fmt: skip


def _best_with_anchor(candidate_scores, logits, finished, greedy, beam):
    """The `beam` best candidates per sentence (flat indices, best first), the greedy
    hypothesis's own candidate (its argmax token, or its stay slot) always among them,
    in the last place when it would not make the cut; and the anchor mask.
    """
    vocab = tf.shape(logits)[-1]
    batch = tf.shape(finished)[0]
    greedy_token = tf.argmax(logits, axis=-1, output_type=tf.int32)
    greedy_token = tf.where(finished, 0, tf.reshape(greedy_token, [batch, beam]))
    anchor = tf.logical_and(
        greedy[:, :, tf.newaxis],
        tf.equal(tf.range(vocab)[tf.newaxis, tf.newaxis, :], greedy_token[:, :, tf.newaxis]),
    )
    flat_anchor = tf.reshape(anchor, [batch, beam * vocab])
    flat_scores = tf.reshape(candidate_scores, [batch, beam * vocab])
    _, best = tf.math.top_k(flat_scores, k=beam)  # (batch, beam), best first
    kept = tf.reduce_any(tf.gather(flat_anchor, best, batch_dims=1), axis=1)  # (batch,)
    anchor_index = tf.argmax(tf.cast(flat_anchor, tf.int32), axis=1, output_type=tf.int32)
    last = tf.equal(tf.range(beam), beam - 1)[tf.newaxis, :]
    best = tf.where(tf.logical_and(last, ~kept[:, tf.newaxis]), anchor_index[:, tf.newaxis], best)
    return best, flat_anchor
