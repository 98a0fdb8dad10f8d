"""Whole training steps of the tutorial's model: Keras' attention core vs the head-major one.

`benchmarks/attention.py` times one attention layer; this times what a user
gets: `train_on_batch` steps of the tutorial's Transformer (4 layers, d_model
128, 8 heads, batch 64, its optimizer and loss) built once with Keras'
`MultiHeadAttention` (the tutorial's "einsum" core) and once with
`MatmulMultiHeadAttention` ("matmul"), from the same start weights, fed the
same batches alternately in one process (which model goes first alternates
from batch to batch), so the machine's drifting speed and the shared oneDNN
primitive cache favour neither. Every batch shape is first seen once by both
models, untimed: tracing and primitive creation are not measured. Prints the
wall and CPU seconds per step of each core and their ratios.

    python benchmarks/attention_training.py [--steps 10] [--data long] [--bucket]
        [--tokenizers DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from train_throughput import dataset_for  # this directory's: the same length distributions

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CORES = ("einsum", "matmul")


def interleaved_steps(models, batches):
    """{core: {"wall", "cpu": seconds, "loss": ...} per batch}, each batch fed to both in turn."""
    timings = {core: {"wall": [], "cpu": [], "loss": []} for core in models}
    for index, (inputs, labels) in enumerate(batches):
        order = CORES if index % 2 == 0 else CORES[::-1]
        for core in order:
            wall, cpu = time.perf_counter(), time.process_time()
            loss = models[core].train_on_batch(inputs, labels, return_dict=True)["loss"]
            timings[core]["wall"].append(time.perf_counter() - wall)
            timings[core]["cpu"].append(time.process_time() - cpu)
            timings[core]["loss"].append(float(loss))
    return timings


def build_models(hparams, tokenizers, bucket):
    """{core: the tutorial's compiled model with that attention core}, same start weights."""
    import keras

    from tftransformer.kernels.attention import attention_kernel, use_attention_kernel
    from tftransformer.runs.train import TrainSettings, build_model

    settings = TrainSettings(hparams=hparams, bucket=bucket)
    chosen, models = attention_kernel(), {}
    try:
        for core in CORES:
            use_attention_kernel(core)  # read when the attention blocks are built
            keras.utils.set_random_seed(0)
            models[core] = build_model(settings, tokenizers)
    finally:
        use_attention_kernel(chosen)
    models["matmul"].set_weights(models["einsum"].get_weights())
    return models


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed batches (each core)")
    parser.add_argument("--data", default="long", choices=("long", "ted-like", "embedded"))
    parser.add_argument("--bucket", action="store_true", help="bucketed batches")
    parser.add_argument("--pairs", type=int, default=2000, help="synthetic pairs")
    parser.add_argument("--tokenizers", metavar="DIR",
                        help="saved tokenizers (default: WordPiece learned from the embedded "
                        "corpus)")  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="tiny model, one batch twice")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")

    from tftransformer.config import TransformerConfig
    from tftransformer.corpus import load_corpus
    from tftransformer.data import make_batches, make_bucketed_batches
    from tftransformer.tokenizers import build_tokenizers, load_tokenizers

    hparams = TransformerConfig()
    if args.smoke:
        args.steps, args.pairs = 2, 200
        hparams = TransformerConfig(num_layers=1, d_model=16, dff=32, num_heads=2)
    with tempfile.TemporaryDirectory(prefix="bench-tok-") as tmp:
        if args.tokenizers:
            tokenizers = load_tokenizers(args.tokenizers)
        else:
            tokenizers = build_tokenizers(load_corpus("embedded", "train"), vocab_dir=tmp)
        batcher = make_bucketed_batches if args.bucket else make_batches
        batches = list(batcher(dataset_for(args.data, args.pairs), tokenizers, seed=0)
                       .take(args.steps))  # fmt: skip
        if args.smoke:  # one batch twice: each model traces its training step once
            batches = batches[:1] * args.steps
        models = build_models(hparams, tokenizers, args.bucket)
    lengths = sorted({int(labels.shape[1]) for _, labels in batches})
    print(f"{args.data}{' bucketed' if args.bucket else ''}: {len(batches)} batches of "
          f"{int(batches[0][1].shape[0])}, target lengths {lengths[0]}-{lengths[-1]}; "
          f"{'tiny model (smoke)' if args.smoke else 'the tutorial model'}, float32")  # fmt: skip
    for core in CORES:  # every shape once, untimed
        for inputs, labels in batches:
            models[core].train_on_batch(inputs, labels)
    timings = interleaved_steps(models, batches)
    einsum, matmul = ({k: np.asarray(v) for k, v in timings[core].items()} for core in CORES)
    for core, t in zip(CORES, (einsum, matmul), strict=True):
        print(f"{core:<7} {t['wall'].mean():7.3f} s/step wall  {t['cpu'].mean():7.3f} s/step CPU")
    per_step = einsum["wall"] / matmul["wall"]
    print(f"einsum / matmul: wall {einsum['wall'].sum() / matmul['wall'].sum():.3f}x, CPU "
          f"{einsum['cpu'].sum() / matmul['cpu'].sum():.3f}x "
          f"(per step {per_step.min():.2f}-{per_step.max():.2f}x)")  # fmt: skip
    # Same weights, batches and dropout seeds: both cores train the same model.
    print(f"Training losses, largest difference between the cores: "
          f"{np.max(np.abs(einsum['loss'] - matmul['loss'])):.2e} "
          f"(of {einsum['loss'].mean():.3f})")  # fmt: skip
    return timings


if __name__ == "__main__":
    main()
