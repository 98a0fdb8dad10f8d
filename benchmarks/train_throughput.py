"""Training throughput: the tutorial's pipeline vs each speed option, per real token.

With the tutorial's hyper-parameters (4 layers, d_model 128, dff 512, 8 heads,
dropout 0.1, batch 64, `CustomSchedule` Adam, `masked_loss`), on length
distributions tokenized by the real subword tokenizers (WordPiece learned from
the embedded corpus):

- `embedded`: the embedded corpus's train split (real sentences, short);
- `long`: synthetic pairs with long sentences like a real parallel corpus's
  (log-normal, mean about 23 words, at most 92), built from the embedded
  corpus's words;
- `ted-like`: synthetic pairs with TED-talk-like lengths (median ~20 words,
  a longer tail), trimmed at 128 tokens as the tutorial does.

Each configuration (`--configs`, `;`-separated; each a `,`-list of options)
runs in its own child process, so its peak memory is its own (a `--smoke` run
of a single configuration trains in-process):

- `bucket`: `make_bucketed_batches` (same examples, same 64 per batch, padded
  to their length bucket) instead of padding to the batch's longest sentence;
- `bf16` / `fp16`: that mixed precision policy, whether or not the device has
  it natively (`train` would refuse an emulated one; here it is measured);
- `auto`: `--mixed-precision auto`'s choice on this device;
- `jit`: XLA.

The first configuration (default: none, the tutorial's pipeline exactly) is
the baseline of the ratios. Prints the device and its CPU features, the
sentence lengths of each distribution, then per configuration: seconds per
step, steps/s, non-pad target tokens per second (wall clock, and per
CPU-second of the process, which other load disturbs less), padding share,
peak RSS, the model FLOP utilisation (useful FLOPs of the non-pad tokens per
second over the measured matmul peak of this machine), and the loss per token
at the same token counts, to show that the configurations learn alike.

    python benchmarks/train_throughput.py [--seconds 60] [--data embedded,long]
        [--configs ";bucket;bf16;bucket,bf16"] [--tokenizers DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OPTIONS = ("bucket", "bf16", "fp16", "auto", "jit")
DEFAULT_CONFIGS = ";bucket;bf16;bucket,bf16"


def matmul_peak(dtype, n=1024, seconds=3.0):
    """Measured GFLOP/s of an n×n matmul in `dtype` on this machine."""
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype="float32")
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    mm = tf.function(lambda x, y: tf.matmul(x, y))
    mm(a, b).numpy()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        mm(a, b).numpy()
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def train_flops(src_lengths, tgt_lengths, hp, vocab):
    """Matmul FLOPs of one training step (forward + backward = 3× forward) for these lengths.

    Per example with source length S and target length T: encoder layers
    (Q/K/V/O projections, scores and weighted sum, feed-forward), decoder
    layers (causal self-attention, cross-attention, feed-forward), the final
    projection to the vocabulary.
    """
    d, f, n = hp["d_model"], hp["dff"], hp["num_layers"]
    s = np.asarray(src_lengths, "float64")
    t = np.asarray(tgt_lengths, "float64")
    enc = n * (8 * s * d * d + 4 * s * s * d + 4 * s * d * f)
    dec = n * (8 * t * d * d + 4 * t * t * d  # self-attention
               + 4 * t * d * d + 4 * s * d * d + 4 * t * s * d  # cross-attention
               + 4 * t * d * f)  # fmt: skip
    final = 2 * t * d * vocab
    return float(3 * np.sum(enc + dec + final))


def corpus_words():
    """The embedded train split's Portuguese and English words, as numpy arrays.

    Arrays, not lists: `Generator.choice` converts a list to an array on every
    call, which made building 2,000 synthetic pairs take 20 s.
    """
    from tftransformer.corpus import read_embedded

    rows = read_embedded("train")
    return (np.array(" ".join(r.pt for r in rows).split()),
            np.array(" ".join(r.en for r in rows).split()))  # fmt: skip


def ted_like_pairs(count, seed=0):
    """(pt, en) string pairs with TED-like lengths, from the embedded corpus's words."""
    pt_words, en_words = corpus_words()
    rng = np.random.default_rng(seed)
    # TED talk sentences: median ~20 words, long right tail (log-normal).
    words = np.clip(rng.lognormal(mean=np.log(20), sigma=0.55, size=count), 2, 150).astype(int)
    pairs = []
    for n in words:
        m = max(1, int(round(n * rng.uniform(0.85, 1.15))))
        pairs.append((" ".join(rng.choice(pt_words, n)), " ".join(rng.choice(en_words, m))))
    return pairs


def long_pairs(count, seed=0):
    """(pt, en) string pairs with long sentences: mean about 23 words, at most 92."""
    pt_words, en_words = corpus_words()
    rng = np.random.default_rng(seed)
    # log-normal with median 20.3 words and sigma 0.5: mean exp(mu + sigma^2 / 2) = 23.
    words = np.clip(rng.lognormal(mean=np.log(23) - 0.125, sigma=0.5, size=count), 3, 92)
    pairs = []
    for n in words.astype(int):
        m = int(np.clip(round(n * rng.uniform(0.85, 1.15)), 1, 92))
        pairs.append((" ".join(rng.choice(pt_words, n)), " ".join(rng.choice(en_words, m))))
    return pairs


def dataset_for(data, pairs):
    """The (pt, en) string pairs of distribution `data` as a tf.data.Dataset."""
    import tensorflow as tf

    from tftransformer.corpus import load_corpus

    if data == "embedded":
        return load_corpus("embedded", "train")
    made = {"long": long_pairs, "ted-like": ted_like_pairs}[data](pairs)
    pt, en = zip(*made, strict=True)
    return tf.data.Dataset.from_tensor_slices((list(pt), list(en)))


def length_summary(data, pairs, tokenizers):
    """One line: words and subword tokens per sentence (pt side), mean and max."""
    import tensorflow as tf

    texts = [pt.decode("utf-8") for pt, _ in dataset_for(data, pairs).as_numpy_iterator()]
    words = np.array([len(t.split()) for t in texts])
    tokens = tokenizers.pt.tokenize(tf.constant(texts)).row_lengths().numpy()
    return (f"{data}: {len(texts)} pairs; pt words/sentence mean {words.mean():.1f}, max "
            f"{words.max()}; subword tokens mean {tokens.mean():.1f}, max {tokens.max()} "
            f"(trimmed at 128)")  # fmt: skip


def child(args):
    """One configuration: train for `--seconds`; returns its measurements."""
    import keras

    from tftransformer.config import TransformerConfig
    from tftransformer.data import make_batches, make_bucketed_batches
    from tftransformer.runs.precision import resolve_precision, training_device
    from tftransformer.runs.train import TrainSettings, build_model
    from tftransformer.tokenizers import load_tokenizers

    options = set(filter(None, args.options.split(",")))
    tokenizers = load_tokenizers(args.tokenizers)
    ds = dataset_for(args.data, args.pairs)
    hp = TransformerConfig() if not args.smoke else TransformerConfig(num_layers=1, d_model=16,
                                                                      dff=32, num_heads=2)
    precision = next((p for p in ("bf16", "fp16") if p in options), None)
    if "auto" in options:
        precision = resolve_precision("auto", training_device())[0]
    settings = TrainSettings(
        hparams=hp,
        bucket="bucket" in options,
        mixed_precision=precision,
        jit_compile="jit" in options,
    )
    keras.utils.set_random_seed(0)
    batcher = make_bucketed_batches if settings.bucket else make_batches
    batches = batcher(ds, tokenizers, seed=0).repeat()
    model = build_model(settings, tokenizers)
    vocab = int(tokenizers.en.get_vocab_size())

    losses, tokens, cells = [], [], []
    flops_useful = 0.0
    steps, timed_steps, start = 0, 0, None
    for (src, tgt_in), labels in batches:
        model.reset_metrics()
        loss = model.train_on_batch((src, tgt_in), labels, return_dict=True)["loss"]
        labels = labels.numpy()
        real = labels != 0
        losses.append(float(loss))
        tokens.append(int(real.sum()))
        cells.append(labels.size)
        steps += 1
        if steps == args.warmup:  # tracing (and XLA compiles) done; start the clock
            start, cpu_start = time.perf_counter(), time.process_time()
            continue
        if start is not None:
            timed_steps += 1
            src_len = (src.numpy() != 0).sum(axis=1)
            flops_useful += train_flops(src_len, real.sum(axis=1), hp.to_dict(), vocab)
            if time.perf_counter() - start >= args.seconds:
                break
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    timed_tokens = sum(tokens[args.warmup :])
    return dict(
        data=args.data, options=sorted(options), precision=precision or "float32",
        steps_per_s=timed_steps / elapsed,
        tokens_per_s=timed_tokens / elapsed, tokens_per_cpu_s=timed_tokens / cpu,
        pad_share=1 - sum(tokens[args.warmup:]) / sum(cells[args.warmup:]),
        useful_gflops=flops_useful / elapsed / 1e9,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        losses=losses, tokens=tokens,
    )  # fmt: skip


def loss_at_tokens(result, marks, window):
    """Token-weighted mean training loss of the batches within ±window tokens of each mark.

    Weighting by each batch's non-pad tokens makes it a loss *per token*: bucketed
    batches of short sentences hold fewer tokens than batches of long ones.
    """
    tokens = np.asarray(result["tokens"], "float64")
    middle = np.cumsum(tokens) - tokens / 2
    losses = np.asarray(result["losses"])
    out = []
    for mark in marks:
        near = np.abs(middle - mark) <= window
        if not near.any():  # a short (smoke) run: no batch near this mark
            out.append(float("nan"))
            continue
        out.append(float(np.sum(losses[near] * tokens[near]) / np.sum(tokens[near])))
    return out


def config_name(options):
    """A configuration's label: "tutorial", or its options joined by " + "."""
    return " + ".join(o for o in options.split(",") if o) or "tutorial"


def run_child(args, data, options, tokenizers_dir, in_process=False):
    """One configuration's measurements, from a child process of its own.

    `in_process` (a `--smoke` run of a single configuration) trains in this
    process instead: its peak memory is not compared with anything, and it
    saves importing TensorFlow a second time.
    """
    if in_process:
        child_args = argparse.Namespace(**{**vars(args), "data": data, "options": options,
                                           "tokenizers": tokenizers_dir})  # fmt: skip
        return child(child_args)
    argv = [sys.executable, __file__, "--child", "--data", data, "--options", options,
            "--tokenizers", tokenizers_dir, "--seconds", str(args.seconds),
            "--warmup", str(args.warmup), "--pairs", str(args.pairs)]  # fmt: skip
    if args.smoke:
        argv.append("--smoke")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=args.seconds * 4 + 300)
    if result.returncode != 0:
        raise SystemExit(f"{data} {options or 'tutorial'} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="timed seconds per config")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS,
                        help=f"';'-separated configurations, each a ','-list of "
                        f"{', '.join(OPTIONS)}; the first is the baseline "
                        f"(default {DEFAULT_CONFIGS!r})")  # fmt: skip
    parser.add_argument("--data", default="embedded,long", help="embedded, long, ted-like")
    parser.add_argument("--pairs", type=int, default=4000, help="synthetic pairs per data")
    parser.add_argument("--save", help="also write the raw measurements (JSON) here")
    parser.add_argument("--smoke", action="store_true", help="tiny model, a few seconds")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="", help=argparse.SUPPRESS)
    parser.add_argument(
        "--tokenizers",
        metavar="DIR",
        help="saved tokenizers to use (a run's tokenizers/ directory); by default "
        "WordPiece tokenizers are learned from the embedded corpus",
    )
    args = parser.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(";")]
    unknown = {o for c in configs for o in c.split(",") if o} - set(OPTIONS)
    if unknown:
        parser.error(f"--configs: unknown option(s) {sorted(unknown)}; choose from {OPTIONS}")
    unknown_data = set(args.data.split(",")) - {"embedded", "long", "ted-like"}
    if unknown_data:
        parser.error(f"--data: unknown {sorted(unknown_data)}; choose embedded, long, ted-like")
    if args.smoke:
        args.seconds, args.warmup, args.pairs = min(args.seconds, 3.0), 2, 200
    if args.child:
        print(json.dumps(child(args)))
        return None

    from tftransformer.corpus import load_corpus
    from tftransformer.runs.precision import resolve_precision, training_device
    from tftransformer.tokenizers import build_tokenizers, load_tokenizers, save_tokenizers

    device = training_device()
    print(f"Device: {device.describe()}; --mixed-precision auto picks "
          f"{resolve_precision('auto', device)[0] or 'float32'}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-tok-") as tmp:
        saved = args.tokenizers
        if saved is None:
            saved = f"{tmp}/saved"
            save_tokenizers(
                build_tokenizers(load_corpus("embedded", "train"), vocab_dir=f"{tmp}/vocab"),
                saved,
            )
        tokenizers = load_tokenizers(saved)
        for data in args.data.split(","):
            print(length_summary(data, args.pairs, tokenizers))
        peaks = {} if args.smoke else {"float32": matmul_peak("float32"),
                                       "bfloat16": matmul_peak("bfloat16"),
                                       "float16": matmul_peak("float16")}  # fmt: skip
        rows = []
        in_process = args.smoke and len(configs) == 1 and "," not in args.data
        for data in args.data.split(","):
            results = [(c, run_child(args, data, c, saved, in_process)) for c in configs]
            rows.append((data, results))
    if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
            json.dump(rows, f)

    print(f"Tutorial hyper-parameters, batch 64; {args.seconds:.0f} s timed per configuration "
          f"after {args.warmup} warm-up steps; ratios against {config_name(configs[0])}.")
    if peaks:
        print("Measured matmul peak (1024², this machine): " + ", ".join(
            f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items()))  # fmt: skip
    print()
    print("| data | configuration | precision | s/step | steps/s | non-pad target tokens/s "
          "| ratio | tokens/CPU-s | ratio | pad share | peak RSS MB | MFU |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    dtypes = {"bf16": "bfloat16", "fp16": "float16", "float32": "float32"}
    for data, results in rows:
        base = results[0][1]
        for config, r in results:
            peak = peaks.get(dtypes[r["precision"]])
            mfu = f"{100 * r['useful_gflops'] / peak:.1f}%" if peak else "-"
            ratio = r["tokens_per_s"] / base["tokens_per_s"]
            cpu_ratio = r["tokens_per_cpu_s"] / base["tokens_per_cpu_s"]
            print(f"| {data} | {config_name(config)} | {r['precision']} "
                  f"| {1 / r['steps_per_s']:.2f} | {r['steps_per_s']:.2f} "
                  f"| {r['tokens_per_s']:.0f} | {ratio:.2f}× | {r['tokens_per_cpu_s']:.0f} "
                  f"| {cpu_ratio:.2f}× | {100 * r['pad_share']:.0f}% | {r['peak_rss_mb']:.0f} "
                  f"| {mfu} |")  # fmt: skip
    print()
    print("Training loss per token (token-weighted mean of the batches within ±10% of the "
          "tokens seen; same start weights):")  # fmt: skip
    for data, results in rows:
        base = results[0][1]
        total = min(sum(r["tokens"]) for _, r in results)
        marks = np.linspace(0.15, 0.85, 5) * total
        noise = float(np.std(np.diff(base["losses"]))) / np.sqrt(2)
        print(f"  {data}: single-batch loss noise (std) {noise:.3f}")
        window = 0.1 * total
        losses = [loss_at_tokens(r, marks, window) for _, r in results]
        for i, mark in enumerate(marks):
            cells = "  ".join(f"{config_name(c)} {values[i]:.3f}"
                              for (c, _), values in zip(results, losses, strict=True))  # fmt: skip
            print(f"    {mark:>9.0f} tokens: {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
