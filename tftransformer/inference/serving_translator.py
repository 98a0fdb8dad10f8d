"""The translator's serving export: batched signatures on the cached decoder.

`ServingTranslator` keeps the tutorial's scalar-string `__call__` (see
`tftransformer.export.ExportTranslator`) and adds two batched signatures,
`serving_default` (cached greedy decoding) and `beam_search`, each
`sentences` (tf.string, [None]) -> `translations` (tf.string, [None]). The
tokenizers travel inside the SavedModel; loading it needs only `tensorflow`
and `tensorflow_text` (for the tokenizer ops).
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from tftransformer.data import MAX_TOKENS
from tftransformer.export import ExportTranslator, save_servable
from tftransformer.inference.fast_translator import FastTranslator
from tftransformer.inference.search import DEFAULT_ALPHA, DEFAULT_BEAM_SIZE

# The batched signatures' input. Their functions are traced without AutoGraph: the
# decoding loops are explicit `tf.while_loop`s, and converting every Keras layer the
# trace reaches took most of the tracing time (see FastTranslator).
SENTENCES = tf.TensorSpec(shape=[None], dtype=tf.string, name="sentences")


def _checked_batch(sentences):
    # A model server passes on whatever a client sends: a signature's shape is not
    # enforced at run time. Name a wrong rank clearly instead of failing deep inside.
    return tf.ensure_shape(sentences, [None], name="sentences_must_have_shape_batch")


class ServingTranslator(ExportTranslator):
    """The tutorial's `ExportTranslator` plus batched serving signatures.

    The serving signatures take batches and use the cached decoder
    (`FastTranslator`), which returns the tutorial's greedy translations much
    faster:

    - `translate` (`serving_default`): greedy decoding;
    - `beam_search`: beam search with `beam_size` and `alpha` fixed at export.

    Both map `sentences` (tf.string, [None]) to `translations` (tf.string,
    [None]). Input is trimmed to `translator.max_input_tokens` tokens when the
    translator has that attribute (ours does), else to `MAX_TOKENS`.
    `jit_compile` stays off by default: TensorFlow Serving compiles XLA
    functions on CPU only when started with `--xla_cpu_compilation_enabled`.
    """

    def __init__(
        self,
        translator,
        max_length=MAX_TOKENS,
        *,
        beam_size=DEFAULT_BEAM_SIZE,
        alpha=DEFAULT_ALPHA,
        jit_compile=False,
    ):
        super().__init__(translator, max_length)
        self.beam_size = int(beam_size)
        self.alpha = float(alpha)
        self.fast = FastTranslator(
            translator.tokenizers,
            translator.transformer,
            self.max_length,
            max_input_tokens=getattr(translator, "max_input_tokens", MAX_TOKENS),
            jit_compile=jit_compile,
        )
        # Check the beam arguments now rather than at the first request.
        self.fast.check_options(None, self.beam_size, self.alpha)

    # Deviation from tutorial: the tutorial's export takes exactly one scalar
    # string and decodes it with the uncached loop; serving needs batches.
    @tf.function(input_signature=[SENTENCES], autograph=False)
    def translate(self, sentences):
        return {"translations": self.fast.greedy(_checked_batch(sentences))}

    @tf.function(input_signature=[SENTENCES], autograph=False)
    def beam_search(self, sentences):
        sentences = _checked_batch(sentences)
        return {"translations": self.fast.beam_search(sentences, self.beam_size, self.alpha)}


def export_translator(
    translator,
    root,
    version=None,
    max_length=MAX_TOKENS,
    beam_size=DEFAULT_BEAM_SIZE,
    alpha=DEFAULT_ALPHA,
) -> Path:
    """Save a `ServingTranslator` for `translator` at `root/<version>/`.

    Signatures: `serving_default` (cached greedy) and `beam_search`.
    """
    module = ServingTranslator(translator, max_length=max_length, beam_size=beam_size, alpha=alpha)
    signatures = {"serving_default": module.translate, "beam_search": module.beam_search}
    return save_servable(module, root, signatures, version)
