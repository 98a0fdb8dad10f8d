"""SentencePiece subword tokenizers: cased, reversible, for any script.

Beyond the tutorial, whose WordPiece `CustomTokenizer` (the *Subword tokenizers*
guide's) lower-cases, strips accents, decomposes Hangul and splits punctuation.
Here the pieces are learned from the training text with the `sentencepiece`
package (a unigram model with byte fallback) and run in-graph with
`tensorflow_text.SentencepieceTokenizer`, whose ops the stock TensorFlow Serving
model server links (tests/data/tf_serving_text_ops.txt).

`SentencePieceTokenizer` has `CustomTokenizer`'s interface and reserved ids
(`[PAD]`=0, `[UNK]`=1, `[START]`=2, `[END]`=3), so the translators, the plots,
the classifier and both exports use it unchanged.

Round trip: `detokenize(tokenize(s))` is `s` after NFKC normalization (which,
among other things, composes Hangul jamo into syllables) with leading
whitespace removed. Case, accents, punctuation and inner spaces are kept.
Characters the training text never had are spelled as UTF-8 byte pieces
(byte fallback), so they come back too; only bytes that are not valid UTF-8
become U+FFFD.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import sentencepiece
import tensorflow as tf
import tensorflow_text as text

from tftransformer._files import RunError, atomic_path
from tftransformer.tokenizers import RESERVED_TOKENS, SubwordTokenizer, drop_reserved_ids

# The model file's name beside the SavedModel's other assets.
MODEL_FILE = "sentencepiece.model"


def train_sentencepiece(texts, vocab_size, path, seed_sentences=1_000_000) -> Path:
    """Learn a SentencePiece model from `texts` (an iterable of str) into the file `path`.

    Unigram pieces, NFKC normalization, byte fallback, the package's reserved
    tokens at ids 0-3. `vocab_size` is an upper bound: a small corpus gets fewer
    pieces (SentencePiece's `hard_vocab_limit=False`).
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as model:
        try:
            _train(texts, vocab_size, model, seed_sentences)
        except RuntimeError as error:
            # e.g. "Vocabulary size is smaller than required_chars. 200 vs 294."
            needed = re.search(r"(\d+) vs (\d+)", str(error))
            if needed is None:
                raise
            raise RunError(
                f"--vocab-size {vocab_size} is too small for SentencePiece on this text: "
                f"its characters and the 256 byte pieces need at least {needed.group(2)}"
            ) from None
    return path


def _train(texts, vocab_size, model, seed_sentences):
    """`SentencePieceTrainer.train` with the settings `train_sentencepiece` documents."""
    pad, unk, start, end = RESERVED_TOKENS
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=int(vocab_size),
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        byte_fallback=True,
        normalization_rule_name="nfkc",
        remove_extra_whitespaces=False,
        input_sentence_size=seed_sentences,
        shuffle_input_sentence=False,  # the same model from the same text
        pad_id=0, unk_id=1, bos_id=2, eos_id=3,
        pad_piece=pad, unk_piece=unk, bos_piece=start, eos_piece=end,
        num_threads=1,
        minloglevel=2,
    )  # fmt: skip


class SentencePieceTokenizer(SubwordTokenizer):
    """A SentencePiece model with `[START]`/`[END]` framing, exportable as a SavedModel.

    Methods, as `CustomTokenizer`'s: `tokenize(strings)` -> ragged int64 ids
    framed by `[START]`=2 ... `[END]`=3; `detokenize(ids)` -> one string per row,
    reserved tokens but `[UNK]` dropped; `lookup(ids)` -> the pieces (`▁` marks a
    word start); `get_vocab_size()` (scalar int32), `get_vocab_path()` (the
    model file), `get_reserved_tokens()`.
    """

    def __init__(self, model_path, reserved_tokens=RESERVED_TOKENS):
        super().__init__()
        proto = Path(model_path).read_bytes()
        # A name per model: TF Text names every SentencepieceTokenizer's model resource alike,
        # and two of them saved in one SavedModel were restored as one (after
        # tf.saved_model.load, `.pt` ran the en model). Named apart, each keeps its own.
        name = f"sentencepiece_{hashlib.sha256(proto).hexdigest()[:16]}"
        self.tokenizer = text.SentencepieceTokenizer(
            model=proto, add_bos=True, add_eos=True, name=name
        )
        self._reserved_tokens = list(reserved_tokens)
        self._vocab_path = tf.saved_model.Asset(str(model_path))
        size = int(self.tokenizer.vocab_size())
        pieces = self.tokenizer.id_to_string(tf.range(size)).numpy().tolist()
        self.vocab = tf.Variable([p.decode("utf-8") for p in pieces])
        found = [p.decode("utf-8") for p in pieces[: len(self._reserved_tokens)]]
        if found != self._reserved_tokens:
            raise ValueError(
                f"{model_path}: ids 0-{len(found) - 1} are {found}, not {self._reserved_tokens}"
            )

        self._trace_signatures()  # the same signatures as CustomTokenizer's

    @tf.function(autograph=False)
    def tokenize(self, strings):
        # Bytes that are not UTF-8 would stop the op: replace them first, as the CLI does.
        strings = tf.strings.unicode_transcode(
            strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        return tf.cast(self.tokenizer.tokenize(strings), tf.int64)  # (batch, tokens)

    @tf.function(autograph=False)
    def detokenize(self, tokenized):
        ids = drop_reserved_ids(tokenized, self._reserved_tokens)
        return self.tokenizer.detokenize(tf.cast(ids, tf.int32))


def build_sentencepiece_tokenizers(pairs: tf.data.Dataset, vocab_size, model_dir, shared=False):
    """Learn pt and en SentencePiece models from `(pt, en)` pairs.

    The counterpart of `tftransformer.tokenizers.build_tokenizers`: a `tf.Module`
    with `.pt` and `.en`, to save with `save_tokenizers` (the model files go into
    the SavedModel as assets). Separate models (the tutorial's arrangement: one
    vocabulary per language) go to `model_dir` as `pt_sentencepiece.model` and
    `en_sentencepiece.model`. With `shared=True`, one model of at most
    `vocab_size` pieces is learned from both languages' sentences together
    (`shared_sentencepiece.model`) and `.pt` and `.en` are the same tokenizer,
    so a word both languages write alike gets the same ids on both sides.
    """
    model_dir = Path(model_dir)
    texts = {"pt": [], "en": []}
    for pt, en in pairs.as_numpy_iterator():
        texts["pt"].append(pt.decode("utf-8", "replace"))
        texts["en"].append(en.decode("utf-8", "replace"))
    tokenizers = tf.Module()
    if shared:
        path = train_sentencepiece(
            texts["pt"] + texts["en"], vocab_size, model_dir / f"shared_{MODEL_FILE}"
        )
        tokenizers.pt = tokenizers.en = SentencePieceTokenizer(path)
        return tokenizers
    for lang in ("pt", "en"):
        path = train_sentencepiece(texts[lang], vocab_size, model_dir / f"{lang}_{MODEL_FILE}")
        setattr(tokenizers, lang, SentencePieceTokenizer(path))
    return tokenizers
