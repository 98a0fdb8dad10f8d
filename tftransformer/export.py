"""Export a translator as a self-contained SavedModel for TensorFlow Serving.

Tutorial: "Export the model". `ExportTranslator` keeps the tutorial's
scalar-string `__call__` and adds a batched `serving_default` signature:
`sentences` (tf.string, [None]) -> `translations` (tf.string, [None]). The
tokenizers travel inside the SavedModel; loading it needs only `tensorflow`
and `tensorflow_text` (for the tokenizer ops).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import tensorflow as tf

from tftransformer.data import MAX_TOKENS
from tftransformer.rundir import RunError, staging_dir


class ExportTranslator(tf.Module):
    """A `Translator` wrapped in traced functions that a SavedModel can keep.

    Tutorial: "Export the model".
    """

    def __init__(self, translator, max_length=MAX_TOKENS):
        super().__init__()
        self.translator = translator
        self.max_length = int(max_length)

    @tf.function(input_signature=[tf.TensorSpec(shape=[], dtype=tf.string)])
    def __call__(self, sentence):
        text, _tokens, _attention = self.translator(sentence, max_length=self.max_length)
        return text

    # Deviation from tutorial: the tutorial's export takes exactly one scalar
    # string; serving needs batches.
    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="sentences")])
    def translate(self, sentences):
        translations = tf.map_fn(
            self.__call__, sentences, fn_output_signature=tf.TensorSpec([], tf.string)
        )
        return {"translations": translations}


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


def export_translator(translator, root, version=None, max_length=MAX_TOKENS) -> Path:
    """Save an `ExportTranslator` for `translator` at `root/<version>/`."""
    module = ExportTranslator(translator, max_length=max_length)
    return save_servable(module, root, {"serving_default": module.translate}, version)
