"""Decoding speed: the tutorial's `Translator` vs the cached `FastTranslator`.

Side by side in one run, with the tutorial's hyper-parameters (4 layers,
d_model 128, dff 512, 8 heads) and vocabulary sizes (7765 pt / 7010 en),
untrained weights, and `[END]` suppressed (its output bias pushed to -1e4) so
that every method produces exactly `--tokens` tokens per sentence:

  tutorial     the tutorial's `Translator` inside `tf.function`, one sentence
               at a time (re-runs the whole model over the prefix per token);
  greedy ...   `FastTranslator.greedy`, batched, with the key/value cache or
               the input cache (see decoding.py), as a plain TF graph or
               compiled with XLA (static, padded shapes); "default" is what
               `FastTranslator()` picks (input cache, XLA);
  beam4        `FastTranslator.beam_search(beam_size=4)`, default settings;
  ctranslate2  the same weights converted exactly to CTranslate2
               (`tftransformer export --format ctranslate2`), float32 greedy
               on 1 and `--threads` threads (default: all cores), int8 greedy
               and float32 beam 4 on 1 thread, one batch per call, timed in a
               child process without TensorFlow. Skipped, saying so, when
               `ctranslate2` is not installed (`pip install 'tftransformer[bench]'`).

For one sentence and for a batch of `--batch` sentences it prints seconds,
ms per generated token (per sentence token for batches: total time / all
tokens) and each method's speed-up over the tutorial method. Compilation
and tracing are excluded (one warm-up call each); the best of `--repeats`
timed calls is reported.

    python benchmarks/decode.py [--tokens 128] [--batch 64] [--repeats 3] [--smoke]

With `--run RUN` (a trained SentencePiece run) it instead compares the engines
that can decode that run's real translations, on its weights: FastTranslator,
CTranslate2 float32 / int8 and the LiteRT file float32 / dynamic-int8, with
latency for 1 and 32 sentences, file size, peak memory and test BLEU / chrF
(`on_device.py` beside this file does the work; LiteRT cannot take the untrained
WordPiece models timed above, whose tokenizer has no LiteRT kernels here).

    python benchmarks/decode.py --run RUN [--engines ...] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tftransformer import FastTranslator, Transformer, TransformerConfig
from tftransformer.corpus import load_corpus
from tftransformer.tokenizers import RESERVED_TOKENS, CustomTokenizer, build_vocab

TUTORIAL_VOCAB = {"pt": 7765, "en": 7010}


def padded_vocab(words, size):
    """`words` (reserved tokens first) filled up to `size` with unused pieces."""
    vocab = list(dict.fromkeys(words))[:size]
    filler = (f"##q{i}" for i in range(size))
    while len(vocab) < size:
        vocab.append(next(filler))
    return vocab


def tutorial_sized_tokenizers(workdir: Path, pairs_limit=None):
    """A pt/en `CustomTokenizer` pair with exactly the tutorial's vocabulary sizes.

    The word pieces are learned from the embedded corpus (its first `pairs_limit`
    pairs, if given) and padded with unused pieces, so the model's embedding and
    output sizes are the tutorial's while tokenizing stays real.
    """
    pairs = load_corpus("embedded", "train")
    if pairs_limit:
        pairs = pairs.take(pairs_limit)
    tokenizers = tf.Module()
    for index, lang in enumerate(("pt", "en")):
        learned = build_vocab(pairs.map(lambda *pair, i=index: pair[i]), vocab_size=8000)
        path = workdir / f"{lang}_vocab.txt"
        vocab = padded_vocab(RESERVED_TOKENS + learned, TUTORIAL_VOCAB[lang])
        path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        setattr(tokenizers, lang, CustomTokenizer(RESERVED_TOKENS, str(path)))
    return tokenizers


def untrained_model_without_end(tokenizers, end_id, config=None):
    keras.utils.set_random_seed(0)
    model = Transformer.from_hparams(
        config or TransformerConfig(),
        input_vocab_size=int(tokenizers.pt.get_vocab_size()),
        target_vocab_size=int(tokenizers.en.get_vocab_size()),
    )
    model.build(((None, None), (None, None)))
    bias = model.final_layer.bias
    bias.assign(tf.tensor_scatter_nd_update(bias, [[end_id]], [-1e4]))
    return model


def ctranslate2_rows(model, tokenizers, workdir, batches, args):
    """CTranslate2 on the same weights, converted exactly: [(batch label, method, seconds)].

    Timed in a child process that imports only `ctranslate2`: in one process
    with TensorFlow, the two runtimes' thread pools fight over the cores (a
    2-thread CTranslate2 ran several times slower beside TensorFlow). [] (and a
    line saying so) if `ctranslate2` is not installed.
    """
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        print("ctranslate2 is not installed (pip install 'tftransformer[bench]'): no rows")
        return []
    from tftransformer.inference.ctranslate2_converter import convert, source_tokens

    for quantization in ("float32", "int8"):
        convert(model, tokenizers, workdir / f"ct2-{quantization}", quantization)
    job = {
        "models": {q: str(workdir / f"ct2-{q}") for q in ("float32", "int8")},
        "batches": {label: source_tokens(tokenizers.pt, batch) for label, batch in batches},
        "tokens": args.tokens, "repeats": args.repeats,
        "threads": sorted({1, args.threads or os.cpu_count()}),
    }  # fmt: skip
    (workdir / "ct2-job.json").write_text(json.dumps(job), encoding="utf-8")
    result = subprocess.run([sys.executable, __file__, "--ctranslate2-child", str(workdir)],
                            capture_output=True, text=True, timeout=3600)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"CTranslate2 child failed:\n{result.stderr[-3000:]}")
    return [tuple(row) for row in json.loads(result.stdout.strip().splitlines()[-1])]


def ctranslate2_child(workdir):
    """Time CTranslate2 greedy/beam for the job in `workdir`; print the rows as JSON."""
    import ctranslate2

    job = json.loads((Path(workdir) / "ct2-job.json").read_text(encoding="utf-8"))
    configs = [("float32", 1, t) for t in job["threads"]]
    configs += [("int8", 1, 1), ("float32", 4, 1)]
    rows = []
    for label, sources in job["batches"].items():
        for quantization, beam, threads in configs:
            translator = ctranslate2.Translator(
                job["models"][quantization], device="cpu", inter_threads=1,
                intra_threads=threads, compute_type=quantization,
            )  # fmt: skip

            def run(translator=translator, beam=beam, sources=sources):
                results = translator.translate_batch(
                    sources, beam_size=beam, max_decoding_length=job["tokens"],
                    max_batch_size=len(sources),
                )  # fmt: skip
                lengths = [len(r.hypotheses[0]) for r in results]
                assert all(n == job["tokens"] for n in lengths), lengths

            name = ("ctranslate2 " + ("greedy" if beam == 1 else f"beam{beam}")
                    + (" int8" if quantization == "int8" else "")
                    + f" ({threads} thread{'s' if threads > 1 else ''})")  # fmt: skip
            rows.append((label, name, best_time(run, job["repeats"])))
    print(json.dumps(rows))


def trained_run_engines(args):
    """`--run`: the five engines on one trained run's weights (see on_device.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import on_device

    argv = [args.run] + (["--engines", args.engines] if args.engines else [])
    return on_device.main(argv + (["--smoke"] if args.smoke else []))


def best_time(fn, repeats):
    fn()  # warm-up: tracing and compilation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--tutorial-sentences",
        type=int,
        default=None,
        help="time the tutorial method on this many of the batch and scale up "
        "(default: all of them)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="TensorFlow intra- and inter-op threads (default: TensorFlow's choice)",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--run", help="a trained SentencePiece run: compare TensorFlow, "
                        "CTranslate2 and LiteRT (float32 and int8) on its weights instead")
    parser.add_argument("--engines", help="with --run: which engines (default: all)")
    parser.add_argument("--ctranslate2-child", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ctranslate2_child:
        return ctranslate2_child(args.ctranslate2_child)
    if args.run:
        return trained_run_engines(args)
    from tftransformer.runs.precision import training_device

    print(f"Device: {training_device().describe()}", flush=True)
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if args.smoke:
        args.tokens, args.batch, args.repeats, args.tutorial_sentences = 6, 3, 1, 1

    from tftransformer.translator import Translator

    with tempfile.TemporaryDirectory() as workdir:
        # --smoke learns the word pieces from 400 pairs: learning them from all of the
        # corpus took a quarter of a smoke run, and an untrained model decodes either way.
        tokenizers = tutorial_sized_tokenizers(Path(workdir), 400 if args.smoke else None)
        end_id = int(tokenizers.en.tokenize(tf.constant([""]))[0][1])
        # --smoke checks that every method runs, on a 1-layer model (tracing and XLA
        # compilation of the tutorial's 4 layers would dominate a CI run).
        small = TransformerConfig(num_layers=1, d_model=32, dff=64, num_heads=2)
        model = untrained_model_without_end(tokenizers, end_id, small if args.smoke else None)
        sentences = [
            pt.decode("utf-8")
            for pt, _ in load_corpus("embedded", "test").take(args.batch).as_numpy_iterator()
        ]
        one = sentences[:1]

        translator = Translator(tokenizers, model)
        tutorial_fn = tf.function(
            lambda s: translator(s, max_length=args.tokens)[1],
            input_signature=[tf.TensorSpec([], tf.string)],
        )

        def tutorial(batch):
            for sentence in batch:
                tokens = tutorial_fn(tf.constant(sentence))
                assert tokens.shape[0] == args.tokens + 1, tokens.shape

        translators = {
            (cache, xla): FastTranslator(tokenizers, model, jit_compile=xla, cache=cache)
            for cache in ("keys_values", "inputs")
            for xla in (False, True, None)
        }

        def check(found):
            lengths = found["lengths"].numpy()
            assert (lengths == args.tokens).all(), lengths

        def greedy(cache, xla):
            return lambda b: check(translators[cache, xla].greedy_ids(b, args.tokens))

        def beam(cache, xla):
            return lambda b: check(translators[cache, xla].beam_search_ids(b, 4, 0.6, args.tokens))

        methods = {
            "greedy kv-cache": greedy("keys_values", False),
            "greedy kv-cache xla": greedy("keys_values", True),
            "greedy input-cache": greedy("inputs", False),
            "greedy input-cache xla": greedy("inputs", True),
            "greedy default": greedy("inputs", None),
            "beam4 default": beam("inputs", None),
        }
        if args.smoke:  # each method traces (and XLA-compiles) anew; the other cache and XLA
            # combinations decode the same in tests/test_fast_translator.py
            kept = ("greedy kv-cache xla", "greedy default", "beam4 default")
            methods = {name: methods[name] for name in kept}

        rows = []
        batches = (("1 sentence", one), (f"{len(sentences)} sentences", sentences))
        if args.smoke:  # every method runs; a second batch shape would only trace them again
            batches = batches[:1]
        for label, batch in batches:
            sample = batch
            if args.tutorial_sentences and len(batch) > args.tutorial_sentences:
                sample = batch[: args.tutorial_sentences]
            repeats = 1 if len(sample) > 1 else args.repeats
            base = best_time(lambda s=sample: tutorial(s), repeats) * len(batch) / len(sample)
            tokens = len(batch) * args.tokens
            rows.append((label, "tutorial (tf.function)", base, tokens, 1.0))
            for name, method in methods.items():
                seconds = best_time(lambda m=method, b=batch: m(b), args.repeats)
                rows.append((label, name, seconds, tokens, base / seconds))
        bases = {r[0]: (r[2], r[3]) for r in rows if r[1].startswith("tutorial")}
        for label, name, seconds in ctranslate2_rows(model, tokenizers, Path(workdir), batches,
                                                     args):  # fmt: skip
            base, tokens = bases[label]
            rows.append((label, name, seconds, tokens, base / seconds))

    sizes = "smoke sizes" if args.smoke else "tutorial sizes"
    print(f"\n{args.tokens} tokens per sentence, {sizes}, untrained, [END] suppressed")
    print(f"{'batch':<14} {'method':<34} {'seconds':>9} {'ms/token':>9} {'speed-up':>9}")
    for label, name, seconds, tokens, ratio in rows:
        print(f"{label:<14} {name:<34} {seconds:9.3f} {1000 * seconds / tokens:9.3f} {ratio:8.1f}x")
    greedy = {r[0]: r[2] for r in rows if r[1] == "greedy default"}
    for label, name, seconds, *_ in rows:
        if name.startswith("beam4"):
            print(f"{label}: {name} time / greedy default time = {seconds / greedy[label]:.2f}")
    times = {(r[0], r[1]): r[2] for r in rows}
    for label in dict.fromkeys(r[0] for r in rows):
        for ours, kind in (("greedy default", "greedy ("), ("beam4 default", "beam4 (")):
            prefix = f"ctranslate2 {kind}"
            theirs = [n for (lab, n) in times if lab == label and n.startswith(prefix)]
            if theirs:  # CTranslate2's fastest thread count
                best = min(theirs, key=lambda n, lab=label: times[lab, n])
                ratio = times[label, best] / times[label, ours]
                print(f"{label}: {best} time / {ours} time = {ratio:.2f} "
                      f"(> 1: FastTranslator is faster)")  # fmt: skip
    return rows


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
