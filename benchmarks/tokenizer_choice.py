"""Which subword tokenizer: kinds, vocabulary sizes, separate or shared, scored as published.

Trains `tftransformer train` runs (through `tftransformer.runs.train.train_run`,
exactly as the CLI does) that differ only in their tokenizer settings: same
corpus, model, epochs and seed. Each configuration (`--configs`, `;`-separated)
is `KIND[:VOCAB_SIZE][:shared]`, e.g. `wordpiece` (the tutorial's, size 8000),
`sentencepiece:1000`, `sentencepiece:2000:shared` (one vocabulary learned from
both languages, `train --shared-vocabulary`).

For each run it prints the vocabulary sizes (pt / en), the mean tokens per
train sentence ([START]/[END] included) and the tokenizers' throughput
(train split, batches of 256, best of 3), then the test split's scores as the
CLI reports them: sacrebleu BLEU and chrF on the raw references for greedy
decoding and for beam search (beam 4, alpha 0.6), and for WordPiece runs the
normalized BLEU beside them (labelled; not comparable with published scores),
with the training seconds.

Runs live in `--work DIR/<name>` (default: a temporary directory). A finished
run there is reused as `train` reuses it (only evaluated again), so a sweep
can be extended or resumed; a run cut short resumes.

    python benchmarks/tokenizer_choice.py [--configs "wordpiece;sentencepiece:1000"]
        [--epochs 20] [--work DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# `train`'s default (sentencepiece) beside the tutorial's WordPiece and two other sizes.
DEFAULT_CONFIGS = "wordpiece;sentencepiece;sentencepiece:2000;sentencepiece:2000:shared"


def parse_config(text):
    """`KIND[:VOCAB_SIZE][:shared]` -> `(name, {tokenizer, vocab_size?, shared_vocabulary})`."""
    from tftransformer.runs.train_options import TOKENIZERS

    kind, *rest = text.strip().split(":")
    if kind not in TOKENIZERS:
        raise SystemExit(f"--configs: {text!r}: the kind must be one of {', '.join(TOKENIZERS)}")
    options = {"tokenizer": kind, "shared_vocabulary": False}
    for part in rest:
        if part == "shared":
            options["shared_vocabulary"] = True
        elif part.isdigit() and int(part) > 0:
            options["vocab_size"] = int(part)
        else:
            raise SystemExit(f"--configs: {text!r}: {part!r} is neither a size nor 'shared'")
    name = "-".join([kind, *rest])
    return name, options


def tokenization_stats(tokenizers, corpus, limit):
    """Per side: (pieces, mean tokens per train sentence, sentences/s best of 3)."""
    import tensorflow as tf

    from tftransformer.corpus import load_corpus

    pairs = load_corpus(corpus, "train")
    if limit is not None:
        pairs = pairs.take(limit)
    sides = {"pt": [], "en": []}
    for pt, en in pairs.as_numpy_iterator():
        sides["pt"].append(pt)
        sides["en"].append(en)
    stats = {}
    for lang, texts in sides.items():
        tokenizer = getattr(tokenizers, lang)
        batches = [tf.constant(texts[i : i + 256]) for i in range(0, len(texts), 256)]
        lengths = [tokenizer.tokenize(batch).row_lengths() for batch in batches]  # warm up too
        mean = float(tf.reduce_mean(tf.cast(tf.concat(lengths, 0), tf.float32)))
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for batch in batches:
                tokenizer.tokenize(batch)
            best = min(best, time.perf_counter() - start)
        stats[lang] = (int(tokenizer.get_vocab_size()), mean, len(texts) / best)
    return stats


def measure(name, settings, work):
    """Train (or reuse) one run and score it as `train` does; a dict of figures."""
    from tftransformer.runs.scoring import prints_normalized_text
    from tftransformer.runs.train import train_run
    from tftransformer.runs.translate import evaluate_split

    out = Path(work) / name
    model, tokenizers, history = train_run(out, settings, verbose=0, log=lambda *args: None)
    common = dict(limit=settings.limit, max_tokens=settings.max_tokens)
    greedy, _rows, examples = evaluate_split(model, tokenizers, settings.corpus, "test", **common)
    beam, _rows, _beams = evaluate_split(
        model, tokenizers, settings.corpus, "test", decode="beam", **common
    )
    seconds = history.get("train_seconds") or [float("nan")]
    return {
        "name": name,
        "stats": tokenization_stats(tokenizers, settings.corpus, settings.limit),
        "greedy": greedy,
        "beam": beam,
        "train_seconds": seconds[-1],
        "normalized": prints_normalized_text(settings.tokenizer),
        "examples": examples[:3],
    }


def print_table(results, settings):
    print(f"corpus={settings.corpus} epochs={settings.epochs} seed={settings.seed} "
          f"hparams={settings.hparams.to_dict()}; test split, {results[0]['greedy']['sentences']} "
          "sentences; BLEU/chrF: sacrebleu on the raw references")  # fmt: skip
    print(results[0]["greedy"]["signature"])
    header = (f"{'tokenizer':28s} {'pieces pt/en':>13s} {'tok/sent pt/en':>15s} "
              f"{'sent/s pt/en':>15s} {'greedy BLEU/chrF':>17s} {'beam BLEU/chrF':>15s} "
              f"{'normalized g/b BLEU':>20s} {'train s':>8s}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for r in results:
        (pt_size, pt_len, pt_rate), (en_size, en_len, en_rate) = r["stats"]["pt"], r["stats"]["en"]
        g, b = r["greedy"], r["beam"]
        if r["normalized"]:
            norm = "{:.2f} / {:.2f}".format(g["normalized"]["bleu"], b["normalized"]["bleu"])
        else:
            norm = "-"  # natural text: only the published scores apply
        cells = [
            f"{pt_size} / {en_size}",
            f"{pt_len:.1f} / {en_len:.1f}",
            f"{pt_rate:,.0f} / {en_rate:,.0f}",
            "{:.2f} / {:.2f}".format(g["bleu"], g["chrf"]),
            "{:.2f} / {:.2f}".format(b["bleu"], b["chrf"]),
            norm,
        ]
        widths = (13, 15, 15, 17, 15, 20)
        row = " ".join(f"{cell:>{width}s}" for cell, width in zip(cells, widths, strict=True))
        print(f"{r['name']:28s} {row} {r['train_seconds']:8.0f}")
    for r in results:
        print(f"\n{r['name']}: the first test translations (greedy)")
        for text in r["examples"]:
            print(f"  {text}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    parser.add_argument("--epochs", type=int, default=None, help="default: train's (20)")
    parser.add_argument("--corpus", default="embedded")
    parser.add_argument("--work", help="keep the runs here (and reuse finished ones)")
    parser.add_argument("--smoke", action="store_true", help="a tiny model on 24 pairs, for CI")
    args = parser.parse_args(argv)
    from tftransformer.runs.precision import training_device

    print(f"Device: {training_device().describe()}", flush=True)

    from tftransformer.config import TransformerConfig
    from tftransformer.runs.train import TrainSettings

    base = TrainSettings(corpus=args.corpus)
    if args.epochs is not None:
        base.epochs = args.epochs
    if args.smoke:
        base = dataclasses.replace(
            base, epochs=1, limit=24, batch_size=16, warmup_steps=10, min_token_count=1,
            max_tokens=16,
            hparams=TransformerConfig(num_layers=1, d_model=16, dff=32, num_heads=2),
        )  # fmt: skip
    configs = [parse_config(text) for text in args.configs.split(";") if text.strip()]
    with tempfile.TemporaryDirectory(prefix="tftransformer-tokenizers-") as scratch:
        work = args.work or scratch
        results = [
            measure(name, dataclasses.replace(base, **options), work) for name, options in configs
        ]
    print_table(results, base)


if __name__ == "__main__":
    main()
