"""On-device translation: a LiteRT (TFLite) model with the tokenizers inside.

Not in the tutorial. `convert_litert` writes one `.tflite` file: a sentence in
(UTF-8 `tf.string`, shape [1]), its greedy translation out, made of LiteRT's
built-in ops plus two tf-text kernels (`TFText>FastSentencepieceTokenize` and
`TFText>FastSentencepieceDetokenize`, registered by
`tensorflow_text.tflite_registrar`). Anything else that would need a custom or
Select-TF ("Flex") op fails the conversion, naming the op (`LiteRTError`).

What is built, and why (LiteRT has no kernels for several ops the SavedModel uses):

- tokenizers: tf-text's `FastSentencepieceTokenizer`, built from the run's own
  SentencePiece model files. On text the vocabularies cover, its ids are the
  SavedModel's (`SentencepieceTokenizer`). A character the vocabulary lacks is
  spelled by the SavedModel in UTF-8 byte pieces; here it becomes one `[UNK]`
  piece, and byte pieces the model writes are dropped on the way out (the
  SavedModel joins them back into characters). WordPiece runs are refused: the
  tutorial's detokenizer needs regular-expression and string-join ops that
  LiteRT lacks.
- decoding: the cached decoder (`IncrementalDecoder`) with a fixed-size cache
  (`static=True`), int64 ids written with `dynamic_update_slice`
  (`keras.ops.slice_update`), at most `max_length` new tokens; greedy, as the
  tutorial's `Translator`. (No beam search on device.)
- whitespace: the fast tokenizer turns each blank character into a `▁` piece where
  the SavedModel's collapses runs of them, so `LiteRTTranslator` joins a sentence's
  words with single spaces before it runs the file (do the same on the device). A
  sentence of `▁` pieces only (or of none) translates to "" inside the file.

`LiteRTTranslator` runs the file with the `ai-edge-litert` interpreter
(`pip install 'tftransformer[litert]'`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

START_ID, END_ID = 2, 3  # the reserved ids every tokenizer of ours has
QUANTIZATIONS = ("float32", "dynamic-int8")
TF_TEXT_OPS = ("TFText>FastSentencepieceTokenize", "TFText>FastSentencepieceDetokenize")


class LiteRTError(ValueError):
    """The run cannot be exported for LiteRT, or the file cannot run; says why."""


def space_piece_ids(model_proto: bytes) -> list[int]:
    """Ids of the SentencePiece model's pieces made of `▁` (word boundary) alone."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=model_proto)
    pieces = (processor.id_to_piece(i) for i in range(processor.get_piece_size()))
    return [i for i, piece in enumerate(pieces) if piece and set(piece) == {"\u2581"}]


def _module(tokenizer_models, model, max_tokens, max_length):
    """The `tf.Module` whose signature becomes the `.tflite` file."""
    import tensorflow as tf
    import tensorflow_text as text
    from keras import ops

    from tftransformer.inference.cached_decoder import IncrementalDecoder

    class OnDeviceTranslator(tf.Module):
        def __init__(self):
            super().__init__()
            self.pt = text.FastSentencepieceTokenizer(tokenizer_models["pt"])
            self.en = text.FastSentencepieceTokenizer(tokenizer_models["en"])
            self.decoder = IncrementalDecoder(model, static=True)
            self.space_ids = space_piece_ids(tokenizer_models["pt"]) or [-1]

        @tf.function(input_signature=[tf.TensorSpec([1], tf.string, name="sentence")])
        def translate(self, sentence):
            pieces = self.pt.tokenize(sentence).flat_values
            # Nothing but word boundaries (or nothing): no decoding step runs.
            spaces = tf.equal(pieces[:, tf.newaxis], tf.constant(self.space_ids)[tf.newaxis, :])
            blank = tf.reduce_all(tf.reduce_any(spaces, axis=1))
            # Framed, then trimmed to the run's max_tokens, as in training and FastTranslator.
            context = tf.concat([[START_ID], tf.cast(pieces, tf.int64), [END_ID]], axis=0)
            context = context[:max_tokens]
            state = self.decoder.start(context[tf.newaxis, :], max_length)
            weights = self.decoder.weights()
            ids = tf.concat([tf.fill([1, 1], tf.constant(START_ID, tf.int64)),
                             tf.zeros([1, max_length], tf.int64)], axis=1)  # fmt: skip

            def step(t, ids, state, done):
                logits, state = self.decoder.step(state, ids, t, weights)
                token = tf.argmax(logits, axis=-1, output_type=tf.int64)  # as the tutorial
                token = tf.where(done, tf.zeros_like(token), token)
                ids = ops.slice_update(ids, [0, t + 1], token[:, tf.newaxis])
                return t + 1, ids, state, tf.logical_or(done, tf.equal(token, END_ID))

            _, ids, _, _ = tf.while_loop(
                lambda t, ids, state, done: tf.logical_and(
                    t < max_length, tf.logical_not(tf.reduce_all(done))),
                step, (tf.constant(0), ids, state, blank[tf.newaxis]),
                maximum_iterations=max_length,
            )  # fmt: skip
            ids = tf.cast(ids[0], tf.int32)
            # Reserved ids (0-3) carry no text: drop them, as the SavedModel's detokenizer
            # does. A blank sentence ran no step, so its translation is "".
            words = tf.boolean_mask(ids, ids > END_ID)
            return self.en.detokenize(words[tf.newaxis, :]), ids

    return OnDeviceTranslator()


def sentencepiece_models(run) -> dict:
    """The run's pt and en SentencePiece model files, as bytes; `LiteRTError` for WordPiece."""
    if run.settings.tokenizer != "sentencepiece":
        raise LiteRTError(
            f"{run.dir.path}: a {run.settings.tokenizer} run cannot be exported for LiteRT: "
            "the tutorial's WordPiece detokenizer needs regex and string-join ops LiteRT has no "
            "kernels for; train with --tokenizer sentencepiece (the default)"
        )
    models = {}
    for lang in ("pt", "en"):
        path = Path(getattr(run.tokenizers, lang).get_vocab_path().numpy().decode())
        if not path.is_file():
            raise LiteRTError(f"{path}: the run's {lang} SentencePiece model is missing")
        models[lang] = path.read_bytes()
    return models


def op_names(tflite: bytes) -> dict[str, list[str]]:
    """The operators the model's subgraphs use, read from the flatbuffer: `builtin` names
    (`FULLY_CONNECTED`, ...) and `custom` ones (the tf-text kernels; a Select-TF op would be
    a custom `Flex...` op)."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.ModelT.InitFromPackedBuf(tflite, 0)
    found = {"builtin": set(), "custom": set()}
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            if builtin == schema.BuiltinOperator.CUSTOM:
                found["custom"].add((code.customCode or b"?").decode())
            else:
                found["builtin"].add(names[builtin])
    return {kind: sorted(ops) for kind, ops in found.items()}


def convert_litert(run, out_path, quantization="float32", max_length=None) -> Path:
    """Write `run` (a `runs.run.Run`) as a `.tflite` file at `out_path`; returns the path.

    `quantization`: "float32", or "dynamic-int8" (LiteRT's dynamic-range quantization:
    int8 weights, float activations). `max_length` (default: the run's `max_tokens`)
    bounds the translation. Written to a temporary name, then renamed.
    """
    import tensorflow as tf

    from tftransformer._files import atomic_path

    if quantization not in QUANTIZATIONS:
        raise LiteRTError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, "
                          f"got {quantization!r}")  # fmt: skip
    models = sentencepiece_models(run)
    max_length = int(max_length or run.max_tokens)
    module = _module(models, run.model, run.max_tokens, max_length)
    # Deliberately without the module as `trackable_obj`: given it, the converter keeps
    # the weights as variables and its output ran no decoding step (measured: ids
    # [START] then zeros, a 2 MB file); without it they are frozen into constants.
    function = module.translate.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True  # for the tf-text kernels only: checked below
    if quantization == "dynamic-int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        blob = converter.convert()
    except Exception as error:  # the converter's own errors are long MLIR dumps
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise LiteRTError(f"the LiteRT converter failed: {first}") from None
    unexpected = [name for name in op_names(blob)["custom"] if name not in TF_TEXT_OPS]
    if unexpected:
        raise LiteRTError(f"the model would need ops LiteRT does not have built in: "
                          f"{', '.join(unexpected)}")  # fmt: skip
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path, suffix=".tflite") as tmp:
        Path(tmp).write_bytes(blob)
    return out_path


class LiteRTTranslator:
    """Greedy translation with an exported `.tflite` file, on the `ai-edge-litert` interpreter.

    `translate(sentences)` takes a list of str (or UTF-8 bytes: bytes that are not UTF-8
    are replaced with U+FFFD first, as the CLI does) and returns a list of str, one per
    sentence, in order. Each sentence's words are joined with single spaces first (see
    the module docstring); blank sentences give "" without running the model. Sentences
    run one at a time (the file's input is one sentence).
    """

    def __init__(self, path, num_threads=None):
        try:
            from ai_edge_litert.interpreter import InterpreterWithCustomOps
        except ImportError:
            raise LiteRTError(
                "the LiteRT interpreter is not installed: pip install 'tftransformer[litert]' "
                "(or ai-edge-litert)"
            ) from None
        from tensorflow_text import tflite_registrar

        path = Path(path)
        if not path.is_file():
            raise LiteRTError(f"{path}: no such .tflite file")
        try:
            self.interpreter = InterpreterWithCustomOps(
                custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS,
                model_path=str(path), num_threads=num_threads,
            )  # fmt: skip
            self.interpreter.allocate_tensors()
            (self._input,) = self.interpreter.get_input_details()
            self._translation, self._ids = self.interpreter.get_output_details()
        except (ValueError, RuntimeError) as error:
            raise LiteRTError(f"{path}: not a translator LiteRT can run ({error})") from None

    def run(self, sentence: str) -> dict:
        """One sentence: {"translation": str, "ids": int32 array, [START] first}."""
        it = self.interpreter
        it.set_tensor(self._input["index"], np.array([sentence.encode("utf-8")], dtype=object))
        it.invoke()
        translation = it.get_tensor(self._translation["index"])[0]
        return {"translation": translation.decode("utf-8", "replace"),
                "ids": it.get_tensor(self._ids["index"])}  # fmt: skip

    def translate(self, sentences) -> list[str]:
        found = []
        for sentence in sentences:
            if isinstance(sentence, bytes):
                sentence = sentence.decode("utf-8", "replace")
            sentence = " ".join(sentence.split())  # str.split: Python's whitespace
            found.append(self.run(sentence)["translation"] if sentence else "")
        return found
