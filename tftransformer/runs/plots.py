"""The `plot` job: every figure of the tutorial for a trained run, as PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import tensorflow as tf

from tftransformer import plotting
from tftransformer._files import read_json
from tftransformer.embedding import positional_encoding
from tftransformer.runs.run import Run
from tftransformer.runs.schedule import plan_schedule


def write_plots(run: Run, sentence, out: Path) -> list[Path]:
    """The attention plots for `sentence`, the training curves, the learning-rate
    schedule and the positional encoding, as PNGs under `out`; returns the paths."""
    out = Path(out)
    paths = []
    _text, tokens, attention = run.translator()(tf.constant(sentence))
    heads = tf.squeeze(attention, 0)  # (heads, out_tokens, in_tokens)

    fig = plt.figure()
    in_tokens = plotting.input_tokens(run.tokenizers, sentence)
    plotting.plot_attention_head(in_tokens, tokens, heads[0])
    paths.append(out / "attention_head.png")
    plotting.save_figure(fig, paths[-1])

    fig = plotting.plot_attention_weights(sentence, tokens, heads, run.tokenizers)
    paths.append(out / "attention_heads.png")
    plotting.save_figure(fig, paths[-1])

    if run.dir.history.exists():
        paths.append(out / "history.png")
        plotting.plot_history(read_json(run.dir.history), paths[-1])

    paths.append(out / "learning_rate.png")
    # The curve the run trained with (its stored plan), else its settings' schedule.
    plan = run.settings.plan() or plan_schedule(run.settings, steps_per_epoch=1)
    schedule = plan.schedule(run.settings.hparams.d_model)
    if plan.kind == "tutorial":
        plotting.plot_learning_rate(schedule, paths[-1])
    else:  # Keras' CosineDecay takes one step at a time; the plan's length and a tenth more
        plotting.plot_learning_rate(lambda steps: tf.map_fn(schedule, steps), paths[-1],
                                    steps=plan.total_steps + plan.total_steps // 10 + 1)
    paths.append(out / "positional_encoding.png")
    plotting.plot_positional_encoding(positional_encoding(2048, 512), paths[-1])
    return paths
