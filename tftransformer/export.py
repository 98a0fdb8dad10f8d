"""Export a translator as a SavedModel.

Tutorial: "Export the model". `ExportTranslator` is the tutorial's: one
scalar string in, its translation out, through the tutorial's `Translator`.
`save_servable` writes any such module in TensorFlow Serving's layout
(`root/<version>/`), atomically. The batched serving signatures built on the
cached decoder live in `tftransformer.inference.serving_translator`.
"""

from __future__ import annotations

import re
from pathlib import Path

import tensorflow as tf

from tftransformer._files import RunError, atomic_dir
from tftransformer.data import MAX_TOKENS


class ExportTranslator(tf.Module):
    """A `Translator` wrapped in a traced function that a SavedModel can keep.

    Tutorial: "Export the model". `__call__` takes one scalar `tf.string` and
    returns its translation, as the tutorial's does. Any translator with the
    tutorial's `__call__(sentence, max_length)` works, the notebook's own
    `Translator` included. `tftransformer.inference.ServingTranslator` adds
    batched `serving_default` and `beam_search` signatures.
    """

    def __init__(self, translator, max_length=MAX_TOKENS):
        super().__init__()
        self.translator = translator
        # Deviation from tutorial: the decoding length is an argument (the tutorial's
        # export always decodes up to MAX_TOKENS tokens).
        self.max_length = int(max_length)

    @tf.function(input_signature=[tf.TensorSpec(shape=[], dtype=tf.string)])
    def __call__(self, sentence):
        (result, tokens, attention_weights) = self.translator(sentence, max_length=self.max_length)
        return result


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
    with atomic_dir(target) as staging:
        tf.saved_model.save(module, str(staging), signatures=signatures)
    return target
