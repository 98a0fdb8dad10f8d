"""WordPiece subword tokenizers, as in the *Subword tokenizers* guide.

Guide sections: "Generate the vocabulary", "Build the tokenizer",
"Customization and export". `CustomTokenizer` has the same methods and
signatures as the tutorial's published `ted_hrlr_translate_pt_en_converter`,
so a SavedModel of either loads and works the same way.
"""

from __future__ import annotations

import os
import pathlib
import re
import tempfile

import tensorflow as tf
import tensorflow_text as text
from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset as bert_vocab

from tftransformer._files import atomic_dir, recover_dir

RESERVED_TOKENS = ["[PAD]", "[UNK]", "[START]", "[END]"]
BERT_TOKENIZER_PARAMS = dict(lower_case=True)
# Deviation from tutorial (opt-in, `--tokenizer wordpiece-cased`): WordPiece that keeps case
# and accents and composes characters (NFC: Hangul stays syllables, not jamo).
CASED_BERT_TOKENIZER_PARAMS = dict(lower_case=False, normalization_form="NFC")
VOCAB_SIZE = 8000
TUTORIAL_CONVERTER = "ted_hrlr_translate_pt_en_converter"
TUTORIAL_CONVERTER_URL = (
    f"https://storage.googleapis.com/download.tensorflow.org/models/{TUTORIAL_CONVERTER}.zip"
)


# The WordPiece learner's default: a piece must occur this often to be kept.
MIN_TOKEN_COUNT = 10


def bert_vocab_args(
    vocab_size: int = VOCAB_SIZE,
    min_token_count: int = MIN_TOKEN_COUNT,
    bert_tokenizer_params=None,
) -> dict:
    """The guide's arguments to `bert_vocab_from_dataset`.

    With the default `min_token_count` these are exactly the guide's
    (`learn_params={}`); a lower count keeps rarer whole words on small corpora.
    """
    learn_params = {} if min_token_count == MIN_TOKEN_COUNT else {"lower_thresh": min_token_count}
    return dict(
        vocab_size=vocab_size,
        reserved_tokens=RESERVED_TOKENS,
        bert_tokenizer_params=bert_tokenizer_params or BERT_TOKENIZER_PARAMS,
        learn_params=learn_params,
    )


def build_vocab(
    sentences: tf.data.Dataset,
    vocab_size: int = VOCAB_SIZE,
    min_token_count: int = MIN_TOKEN_COUNT,
    bert_tokenizer_params=None,
) -> list[str]:
    """A WordPiece vocabulary learned from a dataset of strings.

    Guide: "Generate the vocabulary". `vocab_size` is a target: a small corpus
    yields fewer tokens (all it supports), never more.
    """
    return bert_vocab.bert_vocab_from_dataset(
        sentences.batch(1000).prefetch(2),
        **bert_vocab_args(vocab_size, min_token_count, bert_tokenizer_params),
    )


def write_vocab_file(filepath, vocab) -> None:
    """One token per line, UTF-8 (the guide's `write_vocab_file`)."""
    with open(filepath, "w", encoding="utf-8") as f:
        for token in vocab:
            print(token, file=f)


def _token_id(reserved_tokens, token):
    return tf.argmax(tf.constant(reserved_tokens) == token)  # int64 index


def add_start_end(ragged, reserved_tokens=RESERVED_TOKENS):
    """Frame each row of a ragged id tensor with `[START]` ... `[END]`."""
    rows = ragged.bounding_shape()[0]
    starts = tf.fill([rows, 1], _token_id(reserved_tokens, "[START]"))
    ends = tf.fill([rows, 1], _token_id(reserved_tokens, "[END]"))
    return tf.concat([starts, ragged, ends], axis=1)


def cleanup_text(reserved_tokens, token_txt):
    """Drop reserved tokens (but `[UNK]`) and join the words with spaces."""
    bad_tokens = [re.escape(tok) for tok in reserved_tokens if tok != "[UNK]"]
    bad_token_re = "|".join(bad_tokens)
    bad_cells = tf.strings.regex_full_match(token_txt, bad_token_re)
    kept = tf.ragged.boolean_mask(token_txt, ~bad_cells)
    return tf.strings.reduce_join(kept, separator=" ", axis=-1)


def drop_reserved_ids(ids, reserved_tokens=RESERVED_TOKENS):
    """Ragged `ids` without the ids of reserved tokens other than `[UNK]`.

    Reserved tokens come first in the vocabulary, so a token's id is its index
    in `reserved_tokens` (as `add_start_end` assumes too).
    """
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.RaggedTensor.from_tensor(ids)
    dropped = [i for i, token in enumerate(reserved_tokens) if token != "[UNK]"]
    keep = tf.reduce_all(ids[..., tf.newaxis] != tf.constant(dropped, ids.dtype), axis=-1)
    return tf.ragged.boolean_mask(ids, keep)


_IDS_SPECS = (
    tf.TensorSpec(shape=[None, None], dtype=tf.int64),
    tf.RaggedTensorSpec(shape=[None, None], dtype=tf.int64),
)


class SubwordTokenizer(tf.Module):
    """What every tokenizer of the package shares: the vocabulary methods and the traced
    signatures a SavedModel keeps (those of the tutorial's published converter).

    A subclass sets `vocab` (a string variable, one entry per id), `_vocab_path` (an
    asset) and `_reserved_tokens`, defines `tokenize` and `detokenize`, and calls
    `_trace_signatures()` at the end of `__init__`.
    """

    # Deviation from tutorial: the methods are `tf.function(autograph=False)` (the
    # tutorial's are plain `tf.function`). They hold no Python control flow on tensors,
    # so AutoGraph would only convert code (about half of each tokenizer's tracing time).
    def _trace_signatures(self):
        self.tokenize.get_concrete_function(tf.TensorSpec(shape=[None], dtype=tf.string))
        for spec in _IDS_SPECS:
            self.detokenize.get_concrete_function(spec)
            self.lookup.get_concrete_function(spec)
        self.get_vocab_size.get_concrete_function()
        self.get_vocab_path.get_concrete_function()
        self.get_reserved_tokens.get_concrete_function()

    @tf.function(autograph=False)
    def lookup(self, token_ids):
        return tf.gather(self.vocab, token_ids)

    @tf.function(autograph=False)
    def get_vocab_size(self):
        return tf.shape(self.vocab)[0]

    @tf.function(autograph=False)
    def get_vocab_path(self):
        return self._vocab_path

    @tf.function(autograph=False)
    def get_reserved_tokens(self):
        return tf.constant(self._reserved_tokens)


class CustomTokenizer(SubwordTokenizer):
    """A `BertTokenizer` with `[START]`/`[END]` framing, exportable as a SavedModel.

    Guide: "Customization and export". Methods: `tokenize(strings)` → ragged
    int64 ids framed by `[START]`=2 ... `[END]`=3; `detokenize(ids)` → one
    string per row, reserved tokens removed; `lookup(ids)` → the word pieces;
    `get_vocab_size()` (scalar int32), `get_vocab_path()`,
    `get_reserved_tokens()`.
    """

    def __init__(self, reserved_tokens, vocab_path, bert_tokenizer_params=None):
        super().__init__()
        params = bert_tokenizer_params or BERT_TOKENIZER_PARAMS
        self.tokenizer = text.BertTokenizer(vocab_path, **params)
        self._reserved_tokens = list(reserved_tokens)
        self._vocab_path = tf.saved_model.Asset(vocab_path)
        vocab = pathlib.Path(vocab_path).read_text(encoding="utf-8").splitlines()
        self.vocab = tf.Variable(vocab)

        self._trace_signatures()

    @tf.function(autograph=False)
    def tokenize(self, strings):
        enc = self.tokenizer.tokenize(strings)  # (batch, word, word-piece)
        enc = enc.merge_dims(-2, -1)  # (batch, tokens)
        return add_start_end(enc, self._reserved_tokens)

    @tf.function(autograph=False)
    def detokenize(self, tokenized):
        # Deviation from tutorial: reserved tokens (but [UNK]) are dropped by id
        # before WordPiece joins the pieces. The tutorial drops them by word
        # afterwards, which misses a "[START]" glued to a following "##" piece
        # (an untrained model's "[START]eee").
        words = self.tokenizer.detokenize(drop_reserved_ids(tokenized, self._reserved_tokens))
        # Deviation from tutorial: a word that begins with a continuation piece (an
        # untrained model's "[START] ##s ##t") reads "st", not "##st".
        words = tf.strings.regex_replace(words, "^##", "")
        return cleanup_text(self._reserved_tokens, words)



def _select(index):
    def pick(pt, en):
        return (pt, en)[index]

    return pick


def build_tokenizers(
    pairs: tf.data.Dataset,
    vocab_size: int = VOCAB_SIZE,
    vocab_dir=None,
    min_token_count: int = MIN_TOKEN_COUNT,
    bert_tokenizer_params=None,
):
    """Learn pt and en vocabularies from `(pt, en)` pairs; a `tf.Module` with `.pt`, `.en`.

    Guide: "Generate the vocabulary" through "Export". The vocab files
    (`pt_vocab.txt`, `en_vocab.txt`) are written to `vocab_dir` (a new
    temporary directory by default); save the module with `save_tokenizers`.
    """
    vocab_dir = pathlib.Path(vocab_dir or tempfile.mkdtemp(prefix="tftransformer-vocab-"))
    vocab_dir.mkdir(parents=True, exist_ok=True)
    tokenizers = tf.Module()
    for index, lang in enumerate(("pt", "en")):
        vocab = build_vocab(
            pairs.map(_select(index)), vocab_size, min_token_count, bert_tokenizer_params
        )
        vocab_path = vocab_dir / f"{lang}_vocab.txt"
        write_vocab_file(vocab_path, vocab)
        tokenizer = CustomTokenizer(RESERVED_TOKENS, str(vocab_path), bert_tokenizer_params)
        setattr(tokenizers, lang, tokenizer)
    return tokenizers


def save_tokenizers(tokenizers, path) -> None:
    """`tf.saved_model.save` into `path`, atomically (temp dir, then rename).

    An existing `path` is replaced only once the new SavedModel is complete.
    """
    with atomic_dir(path, replace=True) as staging:
        tf.saved_model.save(tokenizers, str(staging))


def _saved_model_dir(path: pathlib.Path) -> pathlib.Path | None:
    # The tutorial's converter may sit in `name/`, or (Keras 3's get_file with
    # extract=True) in `name_extracted/` or `name_extracted/name/`.
    base = path.name.removesuffix("_extracted")
    candidates = [
        path,
        path / base,
        path.with_name(base + "_extracted"),
        path.with_name(base + "_extracted") / base,
    ]
    for candidate in candidates:
        if (candidate / "saved_model.pb").is_file():
            return candidate
    return None


def load_tokenizers(path):
    """Reload tokenizers saved by `save_tokenizers` or the tutorial's converter.

    Deviation from tutorial: Keras 3's `get_file(..., extract=True)` unpacks
    into `<name>_extracted/`, where the tutorial's `tf.saved_model.load(name)`
    fails; both layouts are found here.
    """
    path = recover_dir(path)
    # Deviation from tutorial: also finds Keras 3's `<name>_extracted/` layout.
    found = _saved_model_dir(path)
    if found is None:
        raise FileNotFoundError(f"{path}: no tokenizer SavedModel (saved_model.pb) found there")
    return tf.saved_model.load(str(found))


def fetch_tutorial_tokenizers(cache_dir=".", origin=TUTORIAL_CONVERTER_URL):
    """Download and load the tutorial's published converter (needs network).

    Tutorial: "Set up the tokenizer". Uses `keras.utils.get_file` as the
    tutorial does, then `load_tokenizers`, which copes with Keras 3's
    `_extracted` directory.
    """
    import keras

    # get_file silently falls back to /tmp/.keras when cache_dir does not exist yet.
    os.makedirs(cache_dir, exist_ok=True)
    archive = keras.utils.get_file(
        f"{TUTORIAL_CONVERTER}.zip", origin, cache_dir=cache_dir, cache_subdir="", extract=True
    )
    archive = pathlib.Path(archive)
    return load_tokenizers(archive.parent / TUTORIAL_CONVERTER)
