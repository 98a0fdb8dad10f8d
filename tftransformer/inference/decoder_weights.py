"""The decoder's weights as plain matrices and vectors, for `IncrementalDecoder`.

Read once per decoding call (outside the loop). For `cache="keys_values"` the query, key
and value projections of each self-attention are concatenated into one matrix; for
`cache="inputs"` the query-key and value-output products are folded per head (see
`cached_decoder`'s module docstring for the algebra).
"""

from __future__ import annotations

import tensorflow as tf


def _tensor(variable):
    return tf.convert_to_tensor(variable)


def _dense(layer):
    return _tensor(layer.kernel), _tensor(layer.bias)


def _norm(layer):
    return _tensor(layer.gamma), _tensor(layer.beta), layer.epsilon


def projection(einsum_dense, d_model):
    """An EinsumDense (d_model, heads, dim) as a (d_model, heads * dim) matrix and bias."""
    kernel, bias = _dense(einsum_dense)
    return tf.reshape(kernel, [d_model, -1]), tf.reshape(bias, [-1])


def _output(mha, d_model):  # (heads, dim, d_model) -> (heads * dim, d_model)
    kernel, bias = _dense(mha.output_dense)
    return tf.reshape(kernel, [-1, d_model]), bias


def _fold_query_key(mha, d_model):
    """x -> per head (x Wq + bq) Wk^T / sqrt(key_dim): (d_model, heads * d_model)."""
    (query, query_bias), (key, _) = _dense(mha.query_dense), _dense(mha.key_dense)
    scale = 1.0 / float(mha.key_dim) ** 0.5  # as `MultiHeadAttention`
    kernel = tf.einsum("dhk,ehk->dhe", query, key) * scale  # (d_model, heads, d_model)
    bias = tf.einsum("hk,ehk->he", query_bias, key) * scale  # (heads, d_model)
    return tf.reshape(kernel, [d_model, -1]), tf.reshape(bias, [-1])


def _fold_value_output(mha, d_model):
    """per-head mixed inputs -> (mixed Wv + bv) Wo + bo: (heads * d_model, d_model)."""
    (value, value_bias), (out, out_bias) = _dense(mha.value_dense), _dense(mha.output_dense)
    kernel = tf.einsum("dhv,hve->hde", value, out)  # (heads, d_model, d_model)
    bias = tf.einsum("hv,hve->e", value_bias, out) + out_bias  # (d_model,)
    return tf.reshape(kernel, [-1, d_model]), bias


def _layer_weights(layer, cache, d_model):
    sa, ca = layer.causal_self_attention.mha, layer.cross_attention.mha
    w = {
        "self_norm": _norm(layer.causal_self_attention.layernorm),
        "cross_norm": _norm(layer.cross_attention.layernorm),
        "ffn_in": _dense(layer.ffn.seq.get_layer("ffn_in")),
        "ffn_out": _dense(layer.ffn.seq.get_layer("ffn_out")),
        "ffn_norm": _norm(layer.ffn.layer_norm),
    }
    if cache == "keys_values":
        qkv = [projection(d, d_model) for d in (sa.query_dense, sa.key_dense, sa.value_dense)]
        w["self_qkv"] = (
            tf.concat([kernel for kernel, _ in qkv], axis=1),
            tf.concat([bias for _, bias in qkv], axis=0),
        )
        w["self_out"] = _output(sa, d_model)
        w["cross_q"] = projection(ca.query_dense, d_model)
        w["cross_out"] = _output(ca, d_model)
    else:
        w["self_fold_q"] = _fold_query_key(sa, d_model)
        w["self_fold_out"] = _fold_value_output(sa, d_model)
        w["cross_fold_q"] = _fold_query_key(ca, d_model)
        w["cross_fold_out"] = _fold_value_output(ca, d_model)
    return w


def decoder_weights(transformer, cache):
    """The tensors `IncrementalDecoder.step` reads, for `cache` ("keys_values" or "inputs")."""
    decoder = transformer.decoder
    d_model = decoder.pos_embedding.d_model
    return {
        "embedding": _tensor(decoder.pos_embedding.embedding.embeddings),
        "layers": [_layer_weights(layer, cache, d_model) for layer in decoder.dec_layers],
        "final": _dense(transformer.final_layer),
    }
