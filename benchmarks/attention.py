"""The attention core at matmul speed? Keras' einsum path vs `MatmulMultiHeadAttention`.

Times the attention core — scores, masked softmax, dropout, weighted sum —
exactly as each layer computes it in training (Keras' `_compute_attention`
on (batch, positions, heads, dim), with the tutorial's attention dropout 0.1, so
Keras takes its einsum path and its transposes; the head-major layer's
`_head_major_attention` on the (batch, heads, dim, positions) its projections
write), forward and forward + backward, in float32 and bfloat16, at the shape the issue measured
(batch 64, 8 heads, 90 x 90 positions, head_dim 128 = the tutorial's
key_dim), beside a plain 1024² matmul of this machine, and what the
head-major core's softmax and dropout add to its two matmuls. Then one whole
`MultiHeadAttention` training step (projections included) with each core,
and the step of its four projections alone: the floor no faster core can
go below.
Prints the device and the CPU features the precision choice looks at.

    python benchmarks/attention.py [--batch 64] [--length 90] [--repeats 7] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tftransformer.kernels.attention import MatmulMultiHeadAttention  # noqa: E402
from tftransformer.runs.precision import resolve_precision, training_device  # noqa: E402


def best_seconds(fn, repeats):
    tf.nest.map_structure(lambda t: t.numpy(), fn())  # trace, warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), fn())
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(dtype, repeats, n=1024):
    a = tf.cast(tf.random.normal((n, n)), dtype)
    matmul = tf.function(lambda: tf.matmul(a, a))
    return 2 * n**3 / best_seconds(matmul, repeats) / 1e9


def core_timings(layer_class, dtype, batch, length, heads, dim, repeats):
    """(forward s, forward+backward s) of `layer_class`'s attention core in training."""
    keras.utils.set_random_seed(0)
    layer = layer_class(num_heads=heads, key_dim=dim, dropout=0.1, dtype=dtype)
    x = tf.random.normal((batch, length, 16))  # any width: only the core is timed
    layer(x, x)  # builds the dropout layer and the softmax
    if isinstance(layer, MatmulMultiHeadAttention):
        # Its projections write (batch, heads, head_dim, positions) directly.
        core, layout = layer._head_major_attention, (batch, heads, dim, length)
    else:
        core, layout = layer._compute_attention, (batch, length, heads, dim)
    q, k, v = (tf.cast(tf.random.normal(layout), dtype) for _ in range(3))

    @tf.function
    def forward():
        return core(q, k, v, training=True)[0]

    @tf.function
    def backward():
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out = core(q, k, v, training=True)[0]
            loss = tf.reduce_sum(tf.cast(out, tf.float32))
        return tape.gradient(loss, [q, k, v])

    return best_seconds(forward, repeats), best_seconds(backward, repeats)


def core_parts(batch, length, heads, dim, repeats):
    """Forward seconds of the head-major core's parts: its two matmuls, + softmax, + dropout.

    Float32, training mode, as `MatmulMultiHeadAttention._head_major_attention`
    runs them; the differences say what the memory-bound passes over the
    (batch, heads, T, S) scores cost beside the matmuls.
    """
    keras.utils.set_random_seed(0)
    layer = MatmulMultiHeadAttention(num_heads=heads, key_dim=dim, dropout=0.1)
    x = tf.random.normal((batch, length, 16))
    layer(x, x)
    q, k, v = (tf.random.normal((batch, heads, dim, length)) for _ in range(3))

    def matmuls(weights):
        return tf.matmul(v, weights, transpose_b=True)

    parts = {
        "matmuls": lambda: matmuls(tf.matmul(q, k, transpose_a=True)),
        "softmax": lambda: matmuls(layer._masked_softmax(tf.matmul(q, k, transpose_a=True))),
        "dropout": lambda: layer._head_major_attention(q, k, v, training=True)[0],
    }
    return {name: best_seconds(tf.function(fn), repeats) for name, fn in parts.items()}


def whole_layer(layer, x):
    """A layer's training-mode output: what `layer_step` times by default."""
    return layer(x, x, training=True)


def projections_only(layer, x):
    """The layer's four projections (query, key, value: d_model -> heads x key_dim;
    output back) with the attention core replaced by a sum of the three projected
    tensors: what the layer costs beside its core, the floor no faster core can go below."""
    mixed = layer._query_dense(x) + layer._key_dense(x) + layer._value_dense(x)
    return layer._output_dense(mixed)


def layer_step(layer_class, batch, length, heads, d_model, repeats, output=whole_layer):
    """Seconds of one training step (forward + backward) of an attention layer.

    `output(layer, x)` is what the step computes and differentiates (the sum of
    its squares is the loss): the whole layer, or `projections_only`.
    """
    keras.utils.set_random_seed(0)
    layer = layer_class(num_heads=heads, key_dim=d_model, dropout=0.1)
    x = tf.random.normal((batch, length, d_model))
    layer(x, x)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(output(layer, x)))
        return tape.gradient(loss, layer.trainable_variables)

    return best_seconds(step, repeats)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=90)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--dim", type=int, default=128, help="head_dim (the tutorial's key_dim)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, for CI")
    args = parser.parse_args(argv)
    if args.smoke:
        args.batch, args.length, args.heads, args.dim, args.repeats = 2, 8, 2, 8, 1

    device = training_device()
    print(f"Device: {device.describe()}; --mixed-precision auto -> "
          f"{resolve_precision('auto', device)[0] or 'float32'}")  # fmt: skip
    shape = (f"batch {args.batch}, {args.heads} heads, {args.length} x {args.length} positions, "
             f"head_dim {args.dim}")  # fmt: skip
    core_flops = 4 * args.batch * args.heads * args.length**2 * args.dim  # two matmuls
    print(f"Attention core ({shape}), training mode (dropout 0.1); best of {args.repeats}")
    print(f"{'dtype':<9} {'core':<8} {'fwd ms':>8} {'GFLOP/s':>8} {'fwd+bwd ms':>11} "
          f"{'GFLOP/s':>8} {'matmul GFLOP/s':>15}")  # fmt: skip
    results = {}
    for dtype in ("float32", "bfloat16"):
        peak = matmul_gflops(dtype, args.repeats)
        for name, cls in (("einsum", keras.layers.MultiHeadAttention),
                          ("matmul", MatmulMultiHeadAttention)):  # fmt: skip
            fwd, fwd_bwd = core_timings(cls, dtype, args.batch, args.length, args.heads,
                                        args.dim, args.repeats)  # fmt: skip
            results[dtype, name] = (fwd, fwd_bwd)
            print(f"{dtype:<9} {name:<8} {1000 * fwd:8.1f} {core_flops / fwd / 1e9:8.1f} "
                  f"{1000 * fwd_bwd:11.1f} {3 * core_flops / fwd_bwd / 1e9:8.1f} "
                  f"{peak:15.1f}")  # fmt: skip
    for dtype in ("float32", "bfloat16"):
        (ef, eb), (mf, mb) = results[dtype, "einsum"], results[dtype, "matmul"]
        print(f"{dtype}: matmul core {ef / mf:.2f}x faster forward, "
              f"{eb / mb:.2f}x forward+backward")  # fmt: skip
    parts = core_parts(args.batch, args.length, args.heads, args.dim, args.repeats)
    matmuls, softmax, dropout = (parts[k] for k in ("matmuls", "softmax", "dropout"))
    print(f"matmul core, float32 forward, cumulative: its two matmuls {1000 * matmuls:.1f} ms "
          f"({core_flops / matmuls / 1e9:.1f} GFLOP/s), + softmax {1000 * softmax:.1f} ms, "
          f"+ dropout {1000 * dropout:.1f} ms (all but the matmuls: "
          f"{100 * (1 - matmuls / dropout):.0f}%)")  # fmt: skip
    steps = {name: layer_step(cls, args.batch, args.length, args.heads, args.dim, args.repeats)
             for name, cls in (("einsum", keras.layers.MultiHeadAttention),
                               ("matmul", MatmulMultiHeadAttention))}  # fmt: skip
    ratio = steps["einsum"] / steps["matmul"]
    print(f"Whole attention layer, one float32 training step (d_model {args.dim}, projections "
          f"included): einsum {1000 * steps['einsum']:.1f} ms, matmul "
          f"{1000 * steps['matmul']:.1f} ms ({ratio:.2f}x)")  # fmt: skip
    floor = layer_step(keras.layers.MultiHeadAttention, args.batch, args.length, args.heads,
                       args.dim, args.repeats, output=projections_only)  # fmt: skip
    print(f"Its four projections alone (core replaced by a sum): {1000 * floor:.1f} ms, "
          f"{100 * floor / steps['einsum']:.0f}% of the einsum layer's step: a core of zero cost "
          f"would make the layer at most {steps['einsum'] / floor:.2f}x faster")  # fmt: skip


if __name__ == "__main__":
    main()
