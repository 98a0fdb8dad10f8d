"""Incremental decoding of a trained `Transformer` with a cache.

The tutorial's `Translator` re-runs the encoder and the whole decoder over the
whole prefix for every new token. `IncrementalDecoder` runs the *same layers
with the same weights* one position at a time instead: the encoder runs once
per batch (`start`), and each step embeds only the newest token and attends
over what earlier steps cached (`step`).

Two caches, same results up to float rounding (both tested against the full
model):

- `cache="keys_values"` (the classic one): each causal self-attention appends
  the new position's keys and values to a per-layer cache, and each
  cross-attention projects the encoder output to keys and values once per
  sentence.
- `cache="inputs"`: each self-attention caches its *input* (d_model wide)
  instead, and cross-attention reads the encoder output itself. Keys and
  values are linear in the input, so per head the query and key projections
  fold into one d_model x d_model matrix (score = (x Wq + bq)·(y Wk + bk)
  = (x Wq Wk^T + bq Wk^T)·y + a term the same for every key, which the
  softmax cancels), and the value and output projections into another
  (sum p (y Wv + bv) Wo = (sum p y) Wv Wo + bv Wo, the weights p summing
  to 1). The folded matrices are computed once per call. The tutorial gives
  every head key_dim = d_model, so keys plus values are 2 * heads = 16
  times wider than the input: this cache is 16 times smaller, and the folded
  projections are half the weights and half the multiply-adds of the
  unfolded ones (see benchmarks/decode.py).

Either way the weights are read from the built `Transformer`'s own layers
once per call, and the math is redone with few graph ops (Keras'
`MultiHeadAttention` path costs about a thousand ops per step, which is
what a one-sentence decode pays for). Any trained model decodes this way
without retraining or conversion.

Two cache layouts, one per execution mode:

- dynamic (`static=False`): the cache grows by one position per step
  (`tf.concat`); loops run with unknown time dimensions. Plain TF ops only,
  so the graph serves anywhere (TensorFlow Serving included).
- static (`static=True`): the cache is allocated at `max_length` positions
  and written in place (`keras.ops.slice_update`); unwritten positions are
  masked. Every shape is fixed, which is what XLA (`jit_compile=True`)
  needs; XLA then updates the cache in place instead of copying it.

The self-attention key mask is derived from the generated ids (`ids != 0`),
exactly as the full model derives it from its decoder input, so even a
generated `[PAD]` id is treated as the tutorial's loop treats it.
"""

from __future__ import annotations

import tensorflow as tf
from keras import ops

from tftransformer.inference.decoder_weights import decoder_weights, projection

# Keras' masked softmax puts this on masked scores (float32).
_MASKED_SCORE = -1e9
CACHES = ("keys_values", "inputs")


class IncrementalDecoder:
    """Cached one-position-at-a-time decoding with a built `Transformer`.

    Args:
        transformer: a `tftransformer.Transformer` (built here if needed).
        static: fixed-size cache (for XLA) instead of a growing one.
        cache: `"keys_values"` or `"inputs"` (see the module docstring).

    State is a plain dict of tensors so it can ride through `tf.while_loop`;
    `rows` below is the number of sequences decoded together (batch, or
    batch * beam for beam search). Cached tensors are named `self_*`.
    """

    def __init__(self, transformer, static=False, cache="keys_values"):
        if cache not in CACHES:
            raise ValueError(f"cache must be one of {', '.join(CACHES)}, got {cache!r}")
        if not transformer.built:  # an untrained model that was never called
            transformer.build(((None, None), (None, None)))
        self.transformer = transformer
        self.static = bool(static)
        self.cache = cache
        self.layers = transformer.decoder.dec_layers
        self.embedding = transformer.decoder.pos_embedding
        mha = self.layers[0].causal_self_attention.mha
        self.heads, self.key_dim = mha.num_heads, mha.key_dim
        self.d_model = self.embedding.d_model
        # The time axis of the cached tensors.
        self._time_axis = 2 if cache == "keys_values" else 1

    # -- weights, read once per call ------------------------------------------

    def weights(self):
        """Every weight `step` needs, as matrices and vectors (`decoder_weights`).

        Read once per decoding call, outside the loop, so the loop body does
        not re-read (and re-shape) variables at every step.
        """
        return decoder_weights(self.transformer, self.cache)

    # -- encoder side ---------------------------------------------------------

    def start(self, context_ids, max_length):
        """Encode `context_ids` (rows, input_tokens) and set up an empty cache.

        Returns the initial state: the context mask; the cross-attention keys
        and values per layer (rows, heads, input_tokens, key_dim), projected
        once, or the encoder output itself (`"inputs"`); and empty
        self-attention caches (room for `max_length` positions when static).
        """
        transformer = self.transformer
        context_mask = transformer.encoder.compute_mask(context_ids)  # (rows, input_tokens)
        context = transformer.encoder(context_ids, training=False)  # (rows, input_tokens, d_model)
        # The weights are float32 variables even under a mixed-precision
        # policy; the cached decoder computes in float32 throughout (a
        # bf16/fp16 model's own forward pass rounds more, so its greedy
        # tokens may differ in near-ties). A fresh tensor also drops the
        # Keras mask, which travels separately.
        context = tf.cast(context, tf.float32)
        rows = tf.shape(context_ids)[0]
        positions = max_length if self.static else 0
        state = {"context_mask": context_mask}
        if self.cache == "inputs":
            state["context"] = context
            for i in range(len(self.layers)):
                state[f"self_x{i}"] = tf.zeros([rows, positions, self.d_model], context.dtype)
            return state
        empty = tf.zeros([rows, self.heads, positions, self.key_dim], context.dtype)
        for i, layer in enumerate(self.layers):
            mha = layer.cross_attention.mha
            for name, dense in (("k", mha.key_dense), ("v", mha.value_dense)):
                kernel, bias = projection(dense, self.d_model)
                projected = tf.einsum("rsd,dk->rsk", context, kernel) + bias
                projected = tf.reshape(projected, [rows, -1, self.heads, self.key_dim])
                state[f"cross_{name}{i}"] = tf.transpose(projected, [0, 2, 1, 3])
            state[f"self_k{i}"] = empty
            state[f"self_v{i}"] = empty
        return state

    def shape_invariants(self, state):
        """`tf.while_loop` shape invariants: rows vary, growing caches too."""
        invariants = {}
        for name, value in state.items():
            shape = [None, *value.shape[1:]]
            if name.startswith("self_") and not self.static:
                shape[self._time_axis] = None
            invariants[name] = tf.TensorShape(shape)
        return invariants

    @staticmethod
    def reorder(state, rows):
        """Gather the self-attention caches at `rows` (beam search).

        The cross-attention tensors are the same for every hypothesis of a
        sentence, so they never move.
        """
        return {
            name: tf.gather(value, rows) if name.startswith("self_") else value
            for name, value in state.items()
        }

    # -- one decoding step ----------------------------------------------------

    def _append(self, cache, new, t):
        """`cache` with `new` (one position) written at position `t`."""
        if not self.static:
            return tf.concat([cache, new], axis=self._time_axis)
        start = [0, 0, t, 0] if self._time_axis == 2 else [0, t, 0]
        return ops.slice_update(cache, start, new)

    def _scale(self, query):
        # As `MultiHeadAttention`: the query is scaled by 1/sqrt(key_dim).
        return query * (1.0 / float(self.key_dim) ** 0.5)

    @staticmethod
    def _softmax(scores, key_mask):
        """Masked keys get -1e9 before the softmax, as in Keras."""
        mask = tf.reshape(key_mask, [tf.shape(key_mask)[0]] + [1] * (scores.shape.rank - 2) + [-1])
        return tf.nn.softmax(tf.where(mask, scores, _MASKED_SCORE))

    @staticmethod
    def _project_out(attended, out):
        """(rows, heads, dim) per-head results -> (rows, d_model)."""
        kernel, bias = out
        attended = tf.reshape(attended, [tf.shape(attended)[0], -1])  # (rows, heads * dim)
        return tf.matmul(attended, kernel) + bias

    def _attend_keys_values(self, query, keys, values, key_mask, out):
        """query (rows, heads, 1, key_dim); keys/values (rows, heads, keys, dim)."""
        scores = tf.matmul(self._scale(query), keys, transpose_b=True)  # (rows, heads, 1, keys)
        attended = tf.matmul(self._softmax(scores, key_mask), values)  # (rows, heads, 1, dim)
        return self._project_out(attended, out)

    def _attend_inputs(self, x, inputs, key_mask, fold_query, fold_output):
        """x (rows, d_model) attends over inputs (rows, keys, d_model), folded weights.

        The scores drop the term q·bk, the same for every key of a row, which
        the softmax cancels.
        """
        kernel, bias = fold_query
        folded = tf.matmul(x, kernel) + bias  # (rows, heads * d_model)
        folded = tf.reshape(folded, [-1, self.heads, self.d_model])  # (rows, heads, d_model)
        scores = tf.matmul(folded, inputs, transpose_b=True)  # (rows, heads, keys)
        mixed = tf.matmul(self._softmax(scores, key_mask), inputs)  # (rows, heads, d_model)
        return self._project_out(mixed, fold_output)

    @staticmethod
    def _add_norm(x, y, norm):
        gamma, beta, epsilon = norm
        return ops.layer_normalization(x + y, gamma, beta, axis=-1, epsilon=epsilon)

    def step(self, state, ids, t, weights=None):
        """Logits for the token after position `t`, and the updated state.

        Args:
            state: from `start` or the previous step.
            ids: (rows, positions) every id fed so far, position `t` being the
                newest (positions may extend past `t` with zeros).
            t: scalar int32, the newest position.
            weights: `self.weights()`, read once outside a loop (read here
                when not given).

        Returns:
            logits (rows, target_vocab) float32, new state.
        """
        weights = self.weights() if weights is None else weights
        state = dict(state)
        # The model's PositionalEmbedding, for position t only.
        x = tf.gather(weights["embedding"], ids[:, t])  # (rows, d_model)
        x = x * ops.sqrt(ops.cast(self.d_model, x.dtype))
        x = x + self.embedding.pos_encoding[t]
        # Keys the model would see: real (non-[PAD]) ids up to position t.
        if self.static:
            width = state["self_k0" if self.cache == "keys_values" else "self_x0"].shape[
                self._time_axis
            ]
            self_mask = tf.logical_and(ids[:, :width] != 0, tf.range(width)[tf.newaxis, :] <= t)
        else:
            self_mask = ids[:, : t + 1] != 0  # (rows, t + 1)
        for i, w in enumerate(weights["layers"]):
            if self.cache == "keys_values":
                x = self._self_attention_keys_values(state, i, w, x, self_mask, t)
                x = self._cross_attention_keys_values(state, i, w, x)
            else:
                x = self._self_attention_inputs(state, i, w, x, self_mask, t)
                x = self._cross_attention_inputs(state, w, x)
            (kernel_in, bias_in), (kernel_out, bias_out) = w["ffn_in"], w["ffn_out"]
            hidden = tf.nn.relu(tf.matmul(x, kernel_in) + bias_in)  # (rows, dff)
            x = self._add_norm(x, tf.matmul(hidden, kernel_out) + bias_out, w["ffn_norm"])
        kernel, bias = weights["final"]
        logits = tf.matmul(x, kernel) + bias  # (rows, target_vocab)
        return tf.cast(logits, tf.float32), state

    def _split_heads(self, x):  # (rows, heads * dim) -> (rows, heads, 1, dim)
        return tf.reshape(x, [tf.shape(x)[0], self.heads, 1, -1])

    def _self_attention_keys_values(self, state, i, w, x, self_mask, t):
        kernel, bias = w["self_qkv"]
        query, key, value = tf.split(tf.matmul(x, kernel) + bias, 3, axis=-1)
        keys = state[f"self_k{i}"] = self._append(state[f"self_k{i}"], self._split_heads(key), t)
        values = state[f"self_v{i}"] = self._append(
            state[f"self_v{i}"], self._split_heads(value), t
        )
        attended = self._attend_keys_values(
            self._split_heads(query), keys, values, self_mask, w["self_out"]
        )
        return self._add_norm(x, attended, w["self_norm"])

    def _cross_attention_keys_values(self, state, i, w, x):
        kernel, bias = w["cross_q"]
        attended = self._attend_keys_values(
            self._split_heads(tf.matmul(x, kernel) + bias),
            state[f"cross_k{i}"],
            state[f"cross_v{i}"],
            state["context_mask"],
            w["cross_out"],
        )
        return self._add_norm(x, attended, w["cross_norm"])

    def _self_attention_inputs(self, state, i, w, x, self_mask, t):
        inputs = state[f"self_x{i}"] = self._append(state[f"self_x{i}"], x[:, tf.newaxis], t)
        attended = self._attend_inputs(x, inputs, self_mask, w["self_fold_q"], w["self_fold_out"])
        return self._add_norm(x, attended, w["self_norm"])

    def _cross_attention_inputs(self, state, w, x):
        attended = self._attend_inputs(
            x, state["context"], state["context_mask"], w["cross_fold_q"], w["cross_fold_out"]
        )
        return self._add_norm(x, attended, w["cross_norm"])
