"""The tutorial's `Transformer` as a CTranslate2 model, weights converted exactly.

Not in the tutorial: for users who serve with CTranslate2, and as a standing
speed anchor for `FastTranslator` (`benchmarks/decode.py`). The mapping:

- post-norm layers (`pre_norm=False`): CTranslate2 applies each block's layer
  norm after the residual add, as the tutorial's `BaseAttention` and
  `FeedForward` do; no final encoder/decoder norm;
- attention heads of width `key_dim = d_model` (the tutorial's
  `MultiHeadAttention(key_dim=d_model)`), not `d_model / num_heads`: set as
  the specs' `head_dim`; queries scaled by `1 / sqrt(head_dim)` as Keras does;
- embeddings scaled by `sqrt(d_model)` (CTranslate2's `scale_embeddings`),
  plus the tutorial's own position table (`concat(sin, cos)`; CTranslate2's
  built-in sinusoid is laid out differently, so the table is stored);
- Keras' `LayerNormalization` epsilon (1e-3), and its Dense kernels
  transposed to CTranslate2's (out, in) layout; Q/K/V fused as it expects;
- the vocabularies are the tokenizers' pieces in id order, with `[START]`,
  `[END]` and `[UNK]` as its start, end and unknown tokens; sources are given
  framed by `[START]`/`[END]` exactly as the tokenizer frames them.

Greedy output ids equal `FastTranslator`'s (tested on a tiny model).
"""

from __future__ import annotations

import numpy as np

from tftransformer._files import atomic_dir

QUANTIZATIONS = ("float32", "int8")
LAYER_NORM_EPSILON = 1e-3  # keras.layers.LayerNormalization's default
START, END, UNK = "[START]", "[END]", "[UNK]"


class ConversionError(ValueError):
    """The model or its vocabularies cannot be expressed as a CTranslate2 model."""


def _ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise ConversionError(
            "CTranslate2 is not installed: pip install 'tftransformer[bench]' (or ctranslate2)"
        ) from None
    return ctranslate2


def vocabulary(tokenizer) -> list[str]:
    """The tokenizer's pieces in id order (CTranslate2 maps pieces to ids by position)."""
    import tensorflow as tf

    size = int(tokenizer.get_vocab_size())
    pieces = tokenizer.lookup(tf.ragged.constant([list(range(size))], dtype=tf.int64))
    tokens = [p.decode("utf-8") for p in pieces.flat_values.numpy()]
    if len(set(tokens)) != len(tokens):
        seen, duplicates = set(), []
        for token in tokens:
            if token in seen:
                duplicates.append(token)
            seen.add(token)
        raise ConversionError(f"the vocabulary repeats pieces {duplicates[:5]}: CTranslate2 "
                              "needs each piece once")  # fmt: skip
    for special in (START, END, UNK):
        if special not in tokens:
            raise ConversionError(f"the vocabulary has no {special} piece")
    return tokens


def _numpy(variable):
    return np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable, "float32")


def _set_linear(spec, kernel, bias):
    """A Keras (in, out) kernel as CTranslate2's (out, in) weight."""
    spec.weight = np.ascontiguousarray(_numpy(kernel).T)
    if bias is not None:
        spec.bias = _numpy(bias)


def _set_layer_norm(spec, layer):
    spec.gamma = _numpy(layer.gamma)
    spec.beta = _numpy(layer.beta)


def _set_attention(spec, block, self_attention):
    """`block` is a tutorial `BaseAttention` (its `mha` and post-add `layernorm`)."""
    mha = block.mha
    d_model = mha.query_dense.kernel.shape[0]

    def projection(dense):  # (d_model, heads, key_dim) -> (d_model, heads * key_dim)
        kernel = _numpy(dense.kernel).reshape(d_model, -1)
        return kernel, _numpy(dense.bias).reshape(-1)

    (q, qb), (k, kb), (v, vb) = (projection(d) for d in
                                 (mha.query_dense, mha.key_dense, mha.value_dense))  # fmt: skip
    if self_attention:
        _set_linear(spec.linear[0], np.concatenate([q, k, v], axis=1), np.concatenate([qb, kb, vb]))
    else:
        _set_linear(spec.linear[0], q, qb)
        _set_linear(spec.linear[1], np.concatenate([k, v], axis=1), np.concatenate([kb, vb]))
    out = _numpy(mha.output_dense.kernel)  # (heads, key_dim, d_model)
    _set_linear(spec.linear[-1], out.reshape(-1, out.shape[-1]), mha.output_dense.bias)
    _set_layer_norm(spec.layer_norm, block.layernorm)


def _set_ffn(spec, ffn):
    inner, outer = (layer for layer in ffn.seq.layers if hasattr(layer, "kernel"))
    _set_linear(spec.linear_0, inner.kernel, inner.bias)
    _set_linear(spec.linear_1, outer.kernel, outer.bias)
    _set_layer_norm(spec.layer_norm, ffn.layer_norm)


def _set_embedding(spec, positions_spec, pos_embedding, length):
    spec.weight = _numpy(pos_embedding.embedding.embeddings)
    positions_spec.encodings = _numpy(pos_embedding.pos_encoding)[:length]


def transformer_spec(model, source_tokens, target_tokens):
    """A CTranslate2 `TransformerSpec` holding `model`'s weights (see the module docstring)."""
    _ctranslate2()  # a clear error if it is not installed
    from ctranslate2.specs import transformer_spec as ts

    d_model, heads = model.d_model, model.num_heads
    sizes = (len(source_tokens), len(target_tokens))
    if sizes != (model.input_vocab_size, model.target_vocab_size):
        raise ConversionError(
            f"vocabulary sizes {len(source_tokens)}/{len(target_tokens)} do not match the "
            f"model's {model.input_vocab_size}/{model.target_vocab_size}"
        )
    encoder = ts.TransformerEncoderSpec(model.num_layers, heads, pre_norm=False, head_dim=d_model)
    decoder = ts.TransformerDecoderSpec(model.num_layers, heads, pre_norm=False, head_dim=d_model)
    length = model.encoder.pos_embedding.pos_encoding.shape[0]
    _set_embedding(encoder.embeddings[0], encoder.position_encodings,
                   model.encoder.pos_embedding, length)  # fmt: skip
    for layer_spec, layer in zip(encoder.layer, model.encoder.enc_layers, strict=True):
        _set_attention(layer_spec.self_attention, layer.self_attention, self_attention=True)
        _set_ffn(layer_spec.ffn, layer.ffn)
    _set_embedding(decoder.embeddings, decoder.position_encodings,
                   model.decoder.pos_embedding, length)  # fmt: skip
    for layer_spec, layer in zip(decoder.layer, model.decoder.dec_layers, strict=True):
        _set_attention(layer_spec.self_attention, layer.causal_self_attention, True)
        _set_attention(layer_spec.attention, layer.cross_attention, False)
        _set_ffn(layer_spec.ffn, layer.ffn)
    _set_linear(decoder.projection, model.final_layer.kernel, model.final_layer.bias)

    spec = ts.TransformerSpec(encoder, decoder)
    spec.config.layer_norm_epsilon = LAYER_NORM_EPSILON
    spec.config.bos_token = START
    spec.config.decoder_start_token = START
    spec.config.eos_token = END
    spec.config.unk_token = UNK
    spec.register_source_vocabulary(list(source_tokens))
    spec.register_target_vocabulary(list(target_tokens))
    return spec


def convert(model, tokenizers, out_dir, quantization="float32"):
    """Write `model` (with `tokenizers.pt`/`.en` pieces) as a CTranslate2 model directory.

    `quantization`: "float32" (exact) or "int8" (CTranslate2's weight
    quantization). Written to a temporary directory and renamed into place.
    """
    if quantization not in QUANTIZATIONS:
        raise ConversionError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, "
                              f"got {quantization!r}")  # fmt: skip
    spec = transformer_spec(model, vocabulary(tokenizers.pt), vocabulary(tokenizers.en))
    spec.validate()
    spec.optimize(quantization=None if quantization == "float32" else quantization)
    with atomic_dir(out_dir, replace=True) as staging:
        spec.save(str(staging))
    return out_dir


def source_tokens(tokenizer, sentences) -> list[list[str]]:
    """`sentences` as CTranslate2 source tokens: the tokenizer's pieces, [START]/[END] framed."""
    import tensorflow as tf

    ids = tokenizer.tokenize(tf.constant(list(sentences)))
    return [[p.decode("utf-8") for p in row] for row in tokenizer.lookup(ids).to_list()]


def translate(translator, tokenizers, sentences, beam_size=1, max_length=None) -> list[str]:
    """Translations of `sentences` (a list of str) by a `ctranslate2.Translator`.

    The converted model's counterpart of `FastTranslator.greedy` (`beam_size=1`) and
    `.beam_search`: the run's tokenizers frame the sources, CTranslate2 decodes with
    `min_decoding_length=0` (so `[END]` may come first, as in the tutorial's loop), and
    the target tokenizer detokenizes. A blank sentence translates to "" without
    reaching the model, as in the CLI and both serving signatures.
    """
    import tensorflow as tf

    from tftransformer.inference.fast_translator import FastTranslator

    sentences = list(sentences)
    if not sentences:
        return []
    options = {"beam_size": beam_size, "min_decoding_length": 0}
    if max_length is not None:
        options["max_decoding_length"] = max_length
    results = translator.translate_batch(source_tokens(tokenizers.pt, sentences), **options)
    index = {piece: i for i, piece in enumerate(vocabulary(tokenizers.en))}
    ids = tf.ragged.constant([[index[p] for p in r.hypotheses[0]] for r in results],
                             dtype=tf.int64, ragged_rank=1)  # fmt: skip
    found = tokenizers.en.detokenize(ids)
    found = FastTranslator.blank_to_empty(tf.constant(sentences), found)
    return [t.decode("utf-8") for t in found.numpy()]
