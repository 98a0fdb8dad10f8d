"""The steps the CLI runs on a finished run directory: load, translate, score, plot."""

from __future__ import annotations

from pathlib import Path

import keras

from tftransformer.corpus import Example, load_corpus
from tftransformer.data import MAX_TOKENS
from tftransformer.evaluate import corpus_scores
from tftransformer.rundir import RunDir, RunError, first_line
from tftransformer.tokenizers import load_tokenizers
from tftransformer.translator import (
    Translator,
    make_translate_fn,
    print_translation,
    translate_sentences,
)


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


def evaluate_split(
    model, tokenizers, corpus, split="test", limit=None, progress=None, max_tokens=MAX_TOKENS
):
    """Translate a split and score it: `(scores, examples, hypotheses)`.

    `max_tokens` (the run's setting) bounds both the input and the translation.
    """
    rows = _pairs(corpus, split, limit)
    translate_fn = make_run_translate_fn(tokenizers, model, max_tokens, max_tokens)
    hypotheses = translate_sentences(translate_fn, [r.pt for r in rows], progress=progress)
    return corpus_scores(hypotheses, [r.en for r in rows]), rows, hypotheses


def print_examples(rows, hypotheses):
    for row, hypothesis in zip(rows, hypotheses, strict=True):
        print_translation(row.pt, hypothesis, row.en)
        print()


def write_plots(run_path: Path, settings, tokenizers, model, sentence, out: Path):
    """Every figure of the tutorial as a PNG under `out`; returns the paths."""
    import tensorflow as tf

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
