"""Greedy decoding of one trained run by five engines: speed, size, memory and quality.

On the same weights (a trained SentencePiece run, `RUN`), side by side in one
invocation, each engine in its own child process (so peak memory is its own):

  tensorflow        `FastTranslator.greedy` (the CLI's `translate`), in TensorFlow;
  ctranslate2 f32   `export --format ctranslate2` (exact weights), one thread;
  ctranslate2 int8  `export --format ctranslate2 --quantization int8`, one thread;
  litert f32        `export --format litert`: the `.tflite` file with the tokenizers
                    inside, on the `ai-edge-litert` interpreter, one thread;
  litert int8       `export --format litert --quantization dynamic-int8`.

For each: the model's size (TensorFlow: its float32 weights; the others: their
model file); latency for 1 sentence (mean over the first 16
test sentences, one call each) and for 32 sentences (one call for TensorFlow and
CTranslate2, which batch; 32 calls for LiteRT, whose file takes one sentence); the
child's peak resident memory above what it held before the engine loaded (with
TensorFlow imported, which all of them use for tokenizers or scoring); and test
BLEU / chrF (sacrebleu, raw references) over the whole test split. Warm-up
(tracing, compiling, first calls) is excluded from the latencies. This sits beside
`decode.py`, which times untrained models with `[END]` suppressed and so can
neither score translations nor make a SentencePiece-only export.

    python benchmarks/on_device.py RUN [--corpus embedded] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ENGINES = ("tensorflow", "ctranslate2 f32", "ctranslate2 int8", "litert f32", "litert int8")


def _sentences(corpus, limit=None):
    from tftransformer.corpus import load_corpus

    ds = load_corpus(corpus, "test")
    if limit:
        ds = ds.take(limit)
    pairs = [(pt.decode(), en.decode()) for pt, en in ds.as_numpy_iterator()]
    return [p for p, _ in pairs], [e for _, e in pairs]


def _translator(engine, run_dir):
    """A function from a list of sentences to their translations, and the model file(s)."""
    if engine == "tensorflow":
        from tftransformer.runs.run import Run
        from tftransformer.runs.translate import make_batch_translator

        run = Run(run_dir)
        translate = make_batch_translator(run.tokenizers, run.model, max_length=run.max_tokens,
                                          max_input_tokens=run.max_tokens)  # fmt: skip
        return translate, run.model.count_params() * 4  # float32 weights (model.keras also
        # holds the optimizer's state)
    kind, precision = engine.split()
    if kind == "ctranslate2":
        import ctranslate2

        from tftransformer.inference.ctranslate2_converter import translate as ct2_translate
        from tftransformer.runs.paths import RunDir
        from tftransformer.runs.settings import load_settings
        from tftransformer.tokenizers import load_tokenizers

        path = Path(run_dir) / "export" / "ctranslate2" / ("float32" if precision == "f32"
                                                           else "int8")  # fmt: skip
        translator = ctranslate2.Translator(str(path), device="cpu", intra_threads=1)
        tokenizers = load_tokenizers(Path(run_dir) / "tokenizers")
        # The run's max_tokens bounds every engine's output, as it does TensorFlow's (left
        # to its default, 256, CTranslate2 let a looping sentence run on: -1.1 BLEU once).
        max_length = load_settings(RunDir(run_dir), for_training=False).max_tokens
        return (lambda s: ct2_translate(translator, tokenizers, s, max_length=max_length),
                [path / "model.bin"])  # fmt: skip
    from tftransformer.inference.litert import LiteRTTranslator
    from tftransformer.runs.export import litert_path
    from tftransformer.runs.paths import RunDir

    path = litert_path(RunDir(run_dir), "float32" if precision == "f32" else "dynamic-int8")
    return LiteRTTranslator(path, num_threads=1).translate, [path]


def child(engine, run_dir, corpus, limit):
    """Time one engine; prints one JSON line."""
    import tensorflow_text  # noqa: F401  (every engine's process has TensorFlow loaded)

    from tftransformer.runs.scoring import published_scores

    sentences, references = _sentences(corpus, limit)
    baseline_kb = _rss_kb("VmRSS")
    _reset_peak()
    translate, files = _translator(engine, run_dir)
    singles = sentences[:16]
    for sentence in singles:  # warm-up: tracing and compiling every shape timed below
        translate([sentence])
    translate(sentences[:32])
    start = time.perf_counter()
    for sentence in singles:
        translate([sentence])
    one = (time.perf_counter() - start) / len(singles)
    start = time.perf_counter()
    translate(sentences[:32])
    batch = time.perf_counter() - start
    hypotheses = translate(sentences)
    scores = published_scores(hypotheses, references)
    # Peak memory above what the process held before the engine loaded (TensorFlow itself,
    # which every engine here imports for its tokenizers or scoring, is left out).
    peak_kb = _rss_kb("VmHWM") - baseline_kb
    print(json.dumps({"engine": engine, "ms_per_sentence": round(1000 * one, 1),
                      "s_per_32": round(batch, 3), "mb": round(_size(files) / 2**20, 1),
                      "peak_mb": round(peak_kb / 1024), "bleu": scores["bleu"],
                      "chrf": scores["chrf"], "first": hypotheses[:2]}))  # fmt: skip


def _size(files) -> int:
    """Bytes: a list of files' sizes, or a byte count as is."""
    return files if isinstance(files, int) else sum(f.stat().st_size for f in files)


def _rss_kb(field) -> int:
    """The process's resident memory (Linux), in kB: now (`VmRSS`) or its peak (`VmHWM`)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    """Start the peak (`VmHWM`) afresh from the current resident memory (Linux >= 4.0; where
    that is not allowed, the peak counts from the process's start)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def export_all(run_dir):
    from tftransformer.cli import main as cli

    exports = (["--format", "ctranslate2"], ["--format", "ctranslate2", "--quantization", "int8"],
               ["--format", "litert"], ["--format", "litert", "--quantization", "dynamic-int8"])
    for args in exports:
        if cli(["export", str(run_dir), *args]) != 0:
            raise SystemExit(f"export {' '.join(args)} failed")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a trained SentencePiece run directory")
    parser.add_argument("--corpus", default="embedded")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--smoke", action="store_true", help="40 test sentences only (CI)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    limit = 40 if args.smoke else None
    if args.child:
        return child(args.child, args.run, args.corpus, limit)
    from tftransformer.runs.precision import training_device

    print(f"Device: {training_device().describe()}, {os.cpu_count()} cores", flush=True)
    export_all(args.run)
    header = (f"{'engine':18s} {'file MB':>8s} {'ms/sentence':>12s} {'s per 32':>9s} "
              f"{'+peak MB':>8s} {'BLEU':>6s} {'chrF':>6s}")  # fmt: skip
    print(header)
    print("-" * len(header))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_NUM_INTRAOP_THREADS": "1",
           "TF_NUM_INTEROP_THREADS": "1"}  # fmt: skip
    rows = {}
    for engine in args.engines.split(","):
        command = [sys.executable, __file__, args.run, "--corpus", args.corpus, "--child", engine]
        if args.smoke:
            command.append("--smoke")
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
        if done.returncode:
            print(f"{engine:18s} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        row = rows[engine] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{engine:18s} {row['mb']:8.1f} {row['ms_per_sentence']:12.1f} "
              f"{row['s_per_32']:9.3f} {row['peak_mb']:8d} {row['bleu']:6.2f} "
              f"{row['chrf']:6.2f}", flush=True)  # fmt: skip
    for kind in ("ctranslate2", "litert"):
        if f"{kind} f32" in rows and f"{kind} int8" in rows:
            gap = rows[f"{kind} int8"]["bleu"] - rows[f"{kind} f32"]["bleu"]
            print(f"{kind}: int8 BLEU - float32 BLEU = {gap:+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
