"""The steps the CLI runs on a finished run directory: load, translate, score, plot."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import tensorflow as tf

from tftransformer.corpus import Example, load_corpus
from tftransformer.data import MAX_TOKENS
from tftransformer.evaluate import corpus_scores
from tftransformer.fast_translator import FastTranslator
from tftransformer.rundir import RunDir, RunError, first_line
from tftransformer.tokenizers import load_tokenizers
from tftransformer.translator import (
    Translator,
    make_translate_fn,
    print_translation,
)


def valid_text(text: str) -> str:
    """`text` as valid Unicode: bytes that were not UTF-8 become U+FFFD.

    Python keeps undecodable command-line bytes as lone surrogates, which
    `tf.constant` cannot encode; this recovers the bytes and replaces them.
    """
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # other lone surrogates
        data = text.encode("utf-8", "replace")
    return data.decode("utf-8", "replace")


def input_lines(texts, stream=None) -> list[str]:
    """The CLI's inputs: `texts` (arguments) or one per line of `stream` (default stdin).

    Never fails on bad bytes (see `valid_text`), and gives exactly one input per line.
    """
    if texts:
        return [valid_text(t) for t in texts]
    stream = stream or sys.stdin
    binary = getattr(stream, "buffer", None)
    if binary is None:  # a text stream (tests, notebooks)
        return [valid_text(line.rstrip("\n")) for line in stream]
    data = binary.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    return [line.decode("utf-8", "replace") for line in lines]


def load_run(path):
    """`(settings, tokenizers, model)` of a trained run dir, or a `RunError`."""
    from tftransformer.trainer import load_settings

    run = RunDir(path)
    run.require("config", "tokenizers", "model")
    settings = load_settings(run)
    try:
        tokenizers = load_tokenizers(run.tokenizers)
    except Exception as error:
        raise RunError(f"{run.tokenizers}: cannot load the tokenizers ({error})") from None
    try:
        model = keras.models.load_model(run.model)
    except Exception as error:
        raise RunError(f"{run.model}: cannot load the model ({first_line(error)})") from None
    return settings, tokenizers, model


def make_run_translate_fn(tokenizers, model, max_length, max_input_tokens=MAX_TOKENS):
    """Traced greedy translation; input trimmed to the run's `max_tokens` as in training."""
    translator = Translator(tokenizers, model, max_input_tokens=max_input_tokens)
    return make_translate_fn(translator, max_length)


def _pairs(corpus, split, limit):
    ds = load_corpus(corpus, split)
    if limit is not None:
        ds = ds.take(limit)
    return [Example(pt.decode("utf-8"), en.decode("utf-8")) for pt, en in ds.as_numpy_iterator()]


DECODERS = ("greedy", "beam", "tutorial")


def make_batch_translator(
    tokenizers,
    model,
    decode="greedy",
    max_length=MAX_TOKENS,
    max_input_tokens=MAX_TOKENS,
    beam_size=4,
    alpha=0.6,
    jit_compile=None,
):
    """A function from a list of sentences to their translations (strings).

    `decode` is `greedy` (cached, batched: the tutorial's translations, fast),
    `beam` (cached beam search) or `tutorial` (the tutorial's `Translator`,
    one sentence at a time).
    """
    if decode not in DECODERS:
        raise ValueError(f"decode must be one of {', '.join(DECODERS)}, got {decode!r}")
    if decode == "tutorial":
        translate_fn = make_run_translate_fn(tokenizers, model, max_length, max_input_tokens)
        return lambda batch: [translate_fn(tf.constant(s)).numpy().decode("utf-8") for s in batch]
    options = {} if jit_compile is None else {"jit_compile": jit_compile}
    fast = FastTranslator(
        tokenizers, model, max_length, max_input_tokens=max_input_tokens, **options
    )
    if decode == "greedy":
        run = fast.greedy
    else:
        fast.check_options(None, beam_size, alpha)

        def run(batch):
            return fast.beam_search(batch, beam_size=beam_size, alpha=alpha)

    return lambda batch: [text.decode("utf-8") for text in run(batch).numpy()]


def translate_all(translate_batch, sentences, batch_size=32, progress=None):
    """Translate every sentence, at most `batch_size` at a time, in input order.

    Blank sentences give "" without running the model. Sentences are decoded
    in order of length so that each batch holds similar lengths (less padding,
    rows finishing together); `progress(done, total)` follows each batch.
    """
    results = [""] * len(sentences)
    todo = [i for i, sentence in enumerate(sentences) if sentence.strip()]
    todo.sort(key=lambda i: len(sentences[i]))
    done = len(sentences) - len(todo)
    # Equal-sized batches (no small leftover batch to trace or compile for).
    batches = -(-len(todo) // batch_size)
    size = -(-len(todo) // batches) if batches else batch_size
    for first in range(0, len(todo), size):
        chunk = todo[first : first + size]
        for index, text in zip(chunk, translate_batch([sentences[i] for i in chunk]), strict=True):
            results[index] = text
        done += len(chunk)
        if progress:
            progress(done, len(sentences))
    return results


def evaluate_split(
    model,
    tokenizers,
    corpus,
    split="test",
    limit=None,
    progress=None,
    max_tokens=MAX_TOKENS,
    **decode_options,
):
    """Translate a split and score it: `(scores, examples, hypotheses)`.

    `max_tokens` (the run's setting) bounds both the input and the translation.
    `decode_options` go to `make_batch_translator` (default: cached greedy).
    """
    rows = _pairs(corpus, split, limit)
    translate_batch = make_batch_translator(
        tokenizers, model, max_length=max_tokens, max_input_tokens=max_tokens, **decode_options
    )
    hypotheses = translate_all(translate_batch, [r.pt for r in rows], progress=progress)
    return corpus_scores(hypotheses, [r.en for r in rows]), rows, hypotheses


def print_examples(rows, hypotheses):
    for row, hypothesis in zip(rows, hypotheses, strict=True):
        print_translation(row.pt, hypothesis, row.en)
        print()


def write_plots(run_path: Path, settings, tokenizers, model, sentence, out: Path):
    """Every figure of the tutorial as a PNG under `out`; returns the paths."""
    from tftransformer import plotting
    from tftransformer.embedding import positional_encoding
    from tftransformer.rundir import read_json
    from tftransformer.training import CustomSchedule

    paths = []
    translator = Translator(tokenizers, model, max_input_tokens=settings.max_tokens)
    _text, tokens, attention = translator(tf.constant(sentence))
    heads = tf.squeeze(attention, 0)  # (heads, out_tokens, in_tokens)

    import matplotlib.pyplot as plt

    fig = plt.figure()
    plotting.plot_attention_head(plotting.input_tokens(tokenizers, sentence), tokens, heads[0])
    paths.append(out / "attention_head.png")
    plotting.save_figure(fig, paths[-1])

    fig = plotting.plot_attention_weights(sentence, tokens, heads, tokenizers)
    paths.append(out / "attention_heads.png")
    plotting.save_figure(fig, paths[-1])

    run = RunDir(run_path)
    if run.history.exists():
        paths.append(out / "history.png")
        plotting.plot_history(read_json(run.history), paths[-1])

    paths.append(out / "learning_rate.png")
    plotting.plot_learning_rate(
        CustomSchedule(settings.hparams.d_model, settings.warmup_steps), paths[-1]
    )
    paths.append(out / "positional_encoding.png")
    plotting.plot_positional_encoding(positional_encoding(2048, 512), paths[-1])
    return paths
