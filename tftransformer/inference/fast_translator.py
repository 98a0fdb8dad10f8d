"""Fast batched translation: cached greedy decoding and beam search.

`FastTranslator` is the tutorial's `Translator` made fast (see `decoding.py`
for the cache and `search.py` for the loops): strings in, strings out, a
whole batch per call, every row stopping at its own `[END]`. Greedy decoding
returns the tokens the tutorial's loop returns (tested), only faster.
"""

from __future__ import annotations

import tensorflow as tf

from tftransformer._checks import positive_int
from tftransformer.data import MAX_TOKENS
from tftransformer.inference.cached_decoder import IncrementalDecoder
from tftransformer.inference.search import (
    DEFAULT_ALPHA,
    DEFAULT_BEAM_SIZE,
    beam_search,
    greedy_search,
)

# Measured with benchmarks/decode.py on the project's 2-core CPU (idle): the
# XLA-compiled loop was the fastest for one sentence and for 64. `None` means
# XLA when called eagerly and the plain graph when traced into another
# function (an export), where XLA is not wanted (see export.py).
DEFAULT_JIT_COMPILE = None
# The input cache reads 16x less memory per step than a key/value cache at
# the tutorial's sizes, with half the projection weights and work.
DEFAULT_CACHE = "inputs"

# Static shapes for XLA: batch and input length are padded up to one of these
# sizes, so a handful of compilations serve every request.
_BUCKETS = [2**i for i in range(17)]


def _bucket(size, minimum=1):
    """The smallest bucket >= max(size, minimum)."""
    size = tf.maximum(size, minimum)
    return tf.gather(_BUCKETS, tf.searchsorted(_BUCKETS, size[tf.newaxis], side="left"))[0]


def _check_positive_int(value, name):
    """`value` as an int (Python or numpy integers) >= 1, or a ValueError naming it."""
    return positive_int(value, name)


# A sentence of only these characters is blank: Unicode whitespace and separators, as
# Python's `str.isspace` (RE2's `\s` alone is ASCII-only).
BLANK = r"[\s\pZ\x{0b}\x{1c}-\x{1f}\x{85}]*"


class FastTranslator(tf.Module):
    """Cached, batched greedy decoding and beam search with a trained `Transformer`.

    Args:
        tokenizers: the pt/en `CustomTokenizer` pair (or the tutorial's converter).
        transformer: a built `Transformer`, trained or not; used as is.
        max_length: default number of new tokens at most (the tutorial's 128).
        max_input_tokens: source tokens kept, as in training's `prepare_batch`.
        jit_compile: run the decoding loop with XLA (static, padded shapes):
            `True`, `False` (plain TF ops only), or `None` (default): XLA when
            called eagerly, the plain graph inside a traced function.
        cache: `"inputs"` (default) or `"keys_values"`; see `decoding.py`.

    `sentences` is anything `tf.constant` accepts as strings: a Python string
    or list of strings, or a tf.string tensor of rank 0 or 1.
    """

    def __init__(
        self,
        tokenizers,
        transformer,
        max_length=MAX_TOKENS,
        *,
        max_input_tokens=MAX_TOKENS,
        jit_compile=DEFAULT_JIT_COMPILE,
        cache=DEFAULT_CACHE,
    ):
        super().__init__()
        self.tokenizers = tokenizers
        self.transformer = transformer
        self.max_length = _check_positive_int(max_length, "max_length")
        self.max_input_tokens = _check_positive_int(max_input_tokens, "max_input_tokens")
        self.jit_compile = None if jit_compile is None else bool(jit_compile)
        self.cache = cache
        # Tokenizing "" gives [START] [END]: the ids to begin with and stop at.
        start_end = tokenizers.en.tokenize(tf.constant([""]))[0].numpy()
        self.start_id, self.end_id = int(start_end[0]), int(start_end[1])
        source_start_end = tokenizers.pt.tokenize(tf.constant([""]))[0]
        self._empty_source = tf.constant(source_start_end.numpy()[tf.newaxis, :])
        self._decoders = {
            xla: IncrementalDecoder(transformer, static=xla, cache=cache) for xla in (False, True)
        }

    # -- inputs and outputs ---------------------------------------------------

    @staticmethod
    def as_batch(sentences):
        """`sentences` as a tf.string tensor of shape [batch], or a clear error."""
        if not isinstance(sentences, tf.Tensor):
            try:
                sentences = tf.constant(sentences, dtype=tf.string)
            except (TypeError, ValueError) as error:
                raise TypeError(f"sentences must be strings, got {sentences!r:.80}") from error
        if sentences.dtype != tf.string:
            raise TypeError(
                f"sentences must be a tf.string tensor, got dtype {sentences.dtype.name}"
            )
        if sentences.shape.rank == 0:
            return sentences[tf.newaxis]
        if sentences.shape.rank != 1:
            raise ValueError(f"sentences must have shape [batch], got {sentences.shape}")
        return sentences

    def source_ids(self, sentences):
        """(batch, input_tokens) int64 source ids, trimmed to `max_input_tokens`."""
        ragged = self.tokenizers.pt.tokenize(sentences)[:, : self.max_input_tokens]
        return ragged.to_tensor()

    def detokenize(self, ids):
        """Text for target ids of shape (..., tokens); reserved tokens dropped."""
        flat = tf.reshape(ids, [-1, tf.shape(ids)[-1]])
        text = self.tokenizers.en.detokenize(flat)
        return tf.reshape(text, tf.shape(ids)[:-1])

    # -- decoding -------------------------------------------------------------

    def _pad_for_xla(self, ids):
        """Pad rows (with copies of the first) and columns (with 0) to buckets."""
        rows = tf.shape(ids)[0]
        width = tf.maximum(tf.shape(ids)[1], tf.shape(self._empty_source)[1])
        ids = tf.pad(ids, [[0, 0], [0, width - tf.shape(ids)[1]]])
        # An empty batch decodes one "" so that there is a first row to copy.
        empty = tf.pad(self._empty_source, [[0, 0], [0, width - tf.shape(self._empty_source)[1]]])
        first = tf.concat([ids, empty], axis=0)[:1]
        ids = tf.concat([ids, tf.repeat(first, _bucket(rows) - rows, axis=0)], axis=0)
        padded_width = tf.minimum(_bucket(width, 8), tf.maximum(width, self.max_input_tokens))
        return tf.pad(ids, [[0, 0], [0, padded_width - width]])

    def _search(self, context_ids, kind, max_length, beam_size, alpha, xla):
        decoder = self._decoders[xla]
        if kind == "greedy":
            return greedy_search(decoder, context_ids, self.start_id, self.end_id, max_length)
        return beam_search(
            decoder, context_ids, self.start_id, self.end_id, max_length, beam_size, alpha
        )

    # Traced without AutoGraph: the loops are explicit `tf.while_loop`s and every `if`
    # here is on Python values, so conversion would change nothing but its cost (it
    # rewrote every Keras layer the trace reached: 8.4 -> 2.1 s of tracing in
    # `benchmarks/decode.py --smoke`).
    @tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
    def _search_xla(self, context_ids, kind, max_length, beam_size, alpha):
        return self._search(context_ids, kind, max_length, beam_size, alpha, xla=True)

    @tf.function(reduce_retracing=True, autograph=False)
    def _search_graph(self, context_ids, kind, max_length, beam_size, alpha):
        return self._search(context_ids, kind, max_length, beam_size, alpha, xla=False)

    @tf.function(reduce_retracing=True, autograph=False)
    def _decode(self, sentences, kind, max_length, beam_size, alpha, xla):
        ids = self.source_ids(sentences)
        rows = tf.shape(ids)[0]
        if xla:
            found = self._search_xla(self._pad_for_xla(ids), kind, max_length, beam_size, alpha)
        else:
            found = self._search_graph(ids, kind, max_length, beam_size, alpha)
        return {name: value[:rows] for name, value in found.items()}

    def _use_xla(self):
        if self.jit_compile is not None:
            return self.jit_compile
        return tf.executing_eagerly()

    def check_options(self, max_length=None, beam_size=1, alpha=0.0):
        """`(max_length, beam_size, alpha)` validated, `max_length` defaulted."""
        max_length = self.max_length if max_length is None else max_length
        max_length = _check_positive_int(max_length, "max_length")
        beam_size = _check_positive_int(beam_size, "beam_size")
        alpha = float(alpha)
        if not alpha >= 0.0:
            raise ValueError(f"alpha must be a non-negative number, got {alpha!r}")
        return max_length, beam_size, alpha

    def greedy_ids(self, sentences, max_length=None):
        """Greedy decoding: a dict of `ids` (batch, max_length + 1) int64
        (`[START]` first, 0 after `[END]`), `log_probs` (batch,) and
        `lengths` (batch,) (new tokens including `[END]`)."""
        max_length, _, _ = self.check_options(max_length)
        sentences = self.as_batch(sentences)
        xla = self._use_xla()
        return self._decode(sentences, "greedy", max_length, 1, 0.0, xla)

    @staticmethod
    def blank_to_empty(sentences, translations):
        """`translations` (batch, ...) with "" wherever the source sentence is blank.

        Deviation from tutorial: a sentence of nothing but whitespace translates to ""
        (the model, fed only [START] [END], would otherwise invent a sentence), so the CLI,
        this class and both serving signatures give one answer for it.
        """
        sentences = FastTranslator.as_batch(sentences)
        # Python's `str.isspace` characters (what the CLI strips), not only ASCII ones.
        blank = tf.strings.regex_full_match(sentences, BLANK)  # (batch,)
        extra = tf.ones([tf.rank(translations) - 1], tf.int32)
        blank = tf.reshape(blank, tf.concat([tf.shape(blank), extra], axis=0))
        return tf.where(blank, tf.zeros_like(translations), translations)

    def greedy(self, sentences, max_length=None):
        """Greedy translations, tf.string [batch]: the tutorial's output, fast."""
        found = self.detokenize(self.greedy_ids(sentences, max_length)["ids"])
        return self.blank_to_empty(sentences, found)

    def beam_search_ids(
        self, sentences, beam_size=DEFAULT_BEAM_SIZE, alpha=DEFAULT_ALPHA, max_length=None
    ):
        """Beam search: a dict of `ids` (batch, beam, max_length + 1), `scores`,
        `log_probs` and `lengths` (batch, beam), hypotheses best first; see
        `search.beam_search` for the scoring."""
        max_length, beam_size, alpha = self.check_options(max_length, beam_size, alpha)
        sentences = self.as_batch(sentences)
        xla = self._use_xla()
        return self._decode(sentences, "beam", max_length, beam_size, alpha, xla)

    def beam_search(
        self, sentences, beam_size=DEFAULT_BEAM_SIZE, alpha=DEFAULT_ALPHA, max_length=None
    ):
        """The best beam-search translation of each sentence, tf.string [batch]."""
        found = self.beam_search_ids(sentences, beam_size, alpha, max_length)
        return self.blank_to_empty(sentences, self.detokenize(found["ids"][:, 0]))

    def n_best(self, sentences, n, beam_size=None, alpha=DEFAULT_ALPHA, max_length=None):
        """The `n` best translations and their scores, each (batch, n).

        `beam_size` defaults to `n` and must be at least `n`.
        """
        _check_positive_int(n, "n")
        beam_size = n if beam_size is None else beam_size
        if _check_positive_int(beam_size, "beam_size") < n:
            raise ValueError(f"beam_size must be at least n={n}, got {beam_size}")
        found = self.beam_search_ids(sentences, beam_size, alpha, max_length)
        return self.blank_to_empty(sentences, self.detokenize(found["ids"][:, :n])), found[
            "scores"
        ][:, :n]
