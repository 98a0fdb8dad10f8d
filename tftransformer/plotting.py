"""The tutorial's figures, written to PNG files (headless matplotlib backend).

Tutorial: "Create attention plots", plus the positional-encoding and
learning-rate plots of "The embedding and positional encoding layer" and
"Set up the optimizer", and training curves from `history.json`.
"""

from __future__ import annotations

import os
import sys

import matplotlib

if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    matplotlib.use("Agg")  # headless: figures go to files only

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


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

    Tutorial: "Create attention plots". Deviation from tutorial: the
    tokenizers are an argument instead of a global. Returns the figure.
    """
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
    """Loss and masked accuracy per epoch, train and validation."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
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
    """The schedule over `steps` steps, as in the tutorial (40,000)."""
    fig = plt.figure()
    plt.plot(np.asarray(schedule(tf.range(steps, dtype=tf.float32))))
    plt.ylabel("Learning Rate")
    plt.xlabel("Train Step")
    _save(fig, path)


def plot_positional_encoding(pos_encoding, path) -> None:
    """The encoding as an image (depth × position), as in the tutorial."""
    fig = plt.figure()
    plt.pcolormesh(np.asarray(pos_encoding).T, cmap="RdBu")
    plt.ylabel("Depth")
    plt.xlabel("Position")
    plt.colorbar()
    _save(fig, path)


def save_figure(fig, path) -> None:
    _save(fig, path)


def _save(fig, path) -> None:
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
