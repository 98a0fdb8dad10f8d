"""The tutorial's figures.

Tutorial: "Create attention plots", plus the positional-encoding and
learning-rate plots of "The embedding and positional encoding layer" and
"Set up the optimizer", and training curves from `history.json`.

`plot_attention_head` and `plot_attention_weights` draw with pyplot, as the
tutorial's do, so they show inline in a notebook. The `plot_*(..., path)`
functions that write PNG files draw on their own `matplotlib.figure.Figure`,
outside pyplot's state, so they work with any backend (headless included)
and leave a notebook's figures alone.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from tftransformer._files import atomic_path


def _decode(tokens):
    return [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in np.asarray(tokens)]


def plot_attention_head(in_tokens, translated_tokens, attention):
    """One head's attention: rows are output tokens, columns input tokens.

    Tutorial: "Create attention plots". The model did not generate the
    leading `[START]`, so it is dropped from the row labels.
    """
    translated_tokens = translated_tokens[1:]
    ax = plt.gca()
    ax.matshow(attention)
    ax.set_xticks(range(len(in_tokens)))
    ax.set_yticks(range(len(translated_tokens)))
    ax.set_xticklabels(_decode(in_tokens), rotation=90)
    ax.set_yticklabels(_decode(translated_tokens))


def input_tokens(tokenizers, sentence):
    """The word pieces of a Portuguese sentence, with `[START]`/`[END]`."""
    ids = tokenizers.pt.tokenize(tf.convert_to_tensor([sentence])).to_tensor()
    return tokenizers.pt.lookup(ids)[0]


def plot_attention_weights(sentence, translated_tokens, attention_heads, tokenizers):
    """All heads side by side, in a 2×4 grid for 8 heads.

    Tutorial: "Create attention plots". Returns the figure.
    """
    # Deviation from tutorial: the tokenizers are an argument instead of a global; the grid
    # has as many rows as the head count needs (the tutorial's is fixed at 2x4); the figure
    # is returned instead of shown (`plt.show()`), so scripts and tests can save it.
    in_tokens = input_tokens(tokenizers, sentence)
    heads = np.asarray(attention_heads)
    fig = plt.figure(figsize=(16, 8))
    columns = 4
    rows = max(1, int(np.ceil(len(heads) / columns)))
    for h, head in enumerate(heads):
        ax = fig.add_subplot(rows, columns, h + 1)
        plot_attention_head(in_tokens, translated_tokens, head)
        ax.set_xlabel(f"Head {h + 1}")
    plt.tight_layout()
    return fig


def plot_history(history: dict, path) -> None:
    """Loss and masked accuracy per epoch, train and validation, as a PNG at `path`."""
    fig = Figure(figsize=(12, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "masked_accuracy"), strict=True):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                epochs = range(1, len(history[key]) + 1)
                ax.plot(epochs, history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        if ax.get_lines():
            ax.legend()
    _save(fig, path)


def plot_learning_rate(schedule, path, steps=40000) -> None:
    """The schedule over `steps` steps, as in the tutorial (40,000), as a PNG at `path`."""
    fig = Figure()
    ax = fig.subplots()
    ax.plot(np.asarray(schedule(tf.range(steps, dtype=tf.float32))))
    ax.set_ylabel("Learning Rate")
    ax.set_xlabel("Train Step")
    _save(fig, path)


def plot_positional_encoding(pos_encoding, path) -> None:
    """The encoding as an image (depth × position), as in the tutorial, as a PNG at `path`."""
    fig = Figure()
    ax = fig.subplots()
    mesh = ax.pcolormesh(np.asarray(pos_encoding).T, cmap="RdBu")
    ax.set_ylabel("Depth")
    ax.set_xlabel("Position")
    fig.colorbar(mesh, ax=ax)
    _save(fig, path)


def save_figure(fig, path) -> None:
    """Write `fig` (a pyplot or a plain Figure) as a PNG at `path`, atomically, and close it."""
    _save(fig, path)


def _save(fig, path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)  # a plain Figure is not pyplot's: closing it is a no-op
