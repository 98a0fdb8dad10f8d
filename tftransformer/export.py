"""Export a translator as a self-contained SavedModel for TensorFlow Serving.

Tutorial: "Export the model". `ExportTranslator` keeps the tutorial's
scalar-string `__call__` and adds two batched signatures, `serving_default`
(cached greedy decoding) and `beam_search`, each `sentences` (tf.string,
[None]) -> `translations` (tf.string, [None]). The tokenizers travel inside
the SavedModel; loading it needs only `tensorflow`
and `tensorflow_text` (for the tokenizer ops).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import tensorflow as tf

from tftransformer.data import MAX_TOKENS
from tftransformer.fast_translator import FastTranslator
from tftransformer.rundir import RunError, staging_dir


def _checked_batch(sentences):
    # A model server passes on whatever a client sends: a signature's shape is not
    # enforced at run time. Name a wrong rank clearly instead of failing deep inside.
    return tf.ensure_shape(sentences, [None], name="sentences_must_have_shape_batch")


class ExportTranslator(tf.Module):
    """A translator wrapped in traced functions that a SavedModel can keep.

    Tutorial: "Export the model". `__call__` is the tutorial's: one scalar
    string through the tutorial's `Translator`. The serving signatures take
    batches and use the cached decoder (`FastTranslator`), which returns the
    same greedy translations much faster:

    - `translate` (`serving_default`): greedy decoding;
    - `beam_search`: beam search with `beam_size` and `alpha` fixed at export.

    Both map `sentences` (tf.string, [None]) to `translations` (tf.string,
    [None]). `jit_compile` stays off by default: TensorFlow Serving compiles
    XLA functions on CPU only when started with `--xla_cpu_compilation_enabled`.
    """

    def __init__(
        self, translator, max_length=MAX_TOKENS, *, beam_size=4, alpha=0.6, jit_compile=False
    ):
        super().__init__()
        self.translator = translator
        self.max_length = int(max_length)
        self.beam_size = int(beam_size)
        self.alpha = float(alpha)
        self.fast = FastTranslator(
            translator.tokenizers,
            translator.transformer,
            self.max_length,
            max_input_tokens=translator.max_input_tokens,
            jit_compile=jit_compile,
        )
        # Check the beam arguments now rather than at the first request.
        self.fast.check_options(None, self.beam_size, self.alpha)

    @tf.function(input_signature=[tf.TensorSpec(shape=[], dtype=tf.string)])
    def __call__(self, sentence):
        text, _tokens, _attention = self.translator(sentence, max_length=self.max_length)
        return text

    # Deviation from tutorial: the tutorial's export takes exactly one scalar
    # string and decodes it with the uncached loop; serving needs batches.
    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="sentences")])
    def translate(self, sentences):
        return {"translations": self.fast.greedy(_checked_batch(sentences))}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="sentences")])
    def beam_search(self, sentences):
        sentences = _checked_batch(sentences)
        return {"translations": self.fast.beam_search(sentences, self.beam_size, self.alpha)}


def next_version(root) -> int:
    """1 + the largest numeric version directory under `root` (1 when none)."""
    root = Path(root)
    versions = [int(p.name) for p in root.glob("*") if p.is_dir() and re.fullmatch(r"\d+", p.name)]
    return max(versions, default=0) + 1


def save_servable(module, root, signatures, version=None) -> Path:
    """Save `module` as `root/<version>/` atomically; never overwrite a version.

    The SavedModel is written to a temporary directory beside the target and
    renamed into place, so a model server polling `root` never sees a partial
    model.
    """
    root = Path(root)
    version = next_version(root) if version is None else int(version)
    if version < 1:
        raise RunError(f"export version must be a positive integer, got {version}")
    target = root / str(version)
    if target.exists():
        raise RunError(f"{target}: already exists; choose another --version")
    staging = staging_dir(target)
    try:
        tf.saved_model.save(module, str(staging), signatures=signatures)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


def export_translator(
    translator, root, version=None, max_length=MAX_TOKENS, beam_size=4, alpha=0.6
) -> Path:
    """Save an `ExportTranslator` for `translator` at `root/<version>/`.

    Signatures: `serving_default` (cached greedy) and `beam_search`.
    """
    module = ExportTranslator(translator, max_length=max_length, beam_size=beam_size, alpha=alpha)
    signatures = {"serving_default": module.translate, "beam_search": module.beam_search}
    return save_servable(module, root, signatures, version)
