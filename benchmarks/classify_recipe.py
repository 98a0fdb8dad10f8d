"""`classify train` defaults by measurement: tokenizer and learning-rate schedule, seeds 0-2.

Each configuration is one `tftransformer.runs.classify.train_classifier` run, as the
CLI runs it (`classify train` with the given flags), scored on the test split as the
CLI prints it (micro/macro F1; accuracy too for multiclass data). Data sets:

  - `embedded:en`, `embedded:pt`: the embedded corpus's topic tags (multi-label,
    14 labels), English or Portuguese side;
  - `ko`: a small Korean topic task made for this benchmark
    (`benchmarks/data/ko_topics/`, 6 labels, multiclass; 216 / 24 / 48 sentences),
    where WordPiece's lower-casing NFD-decomposes Hangul syllables into jamo and
    SentencePiece keeps them.

Rows are appended to `--results` (JSON lines); a configuration already there is
skipped, so a stopped sweep loses nothing. `--table` prints the mean and spread
over seeds per configuration. Test scores do not depend on the machine's load
(fixed epochs), so this may share the machine; the seconds do.

    python benchmarks/classify_recipe.py [--data embedded:en,embedded:pt,ko]
        [--configs "tokenizer=wordpiece;tokenizer=sentencepiece"] [--seeds 0,1,2]
        [--results FILE] [--table] [--report-only] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results" / "classify_recipe.jsonl"
DATA = {
    "embedded:en": dict(data="embedded", side="en", mode="multilabel"),
    "embedded:pt": dict(data="embedded", side="pt", mode="multilabel"),
    "ko": dict(data=f"tsv:{HERE / 'data' / 'ko_topics'}", side="en", mode="multiclass"),
}
FIELDS = {"tokenizer": str, "learning_rate": float, "warmup_epochs": float, "vocab_size": int,
          "epochs": int, "batch_size": int, "model": str}  # fmt: skip


def parse_config(text: str) -> dict:
    """`tokenizer=sentencepiece,learning_rate=1e-3` -> settings overrides."""
    config = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in FIELDS:
            raise SystemExit(f"--configs: unknown setting {name!r} (one of {', '.join(FIELDS)})")
        config[name] = FIELDS[name](value)
    return config


def run_one(data: str, config: dict, seed: int, smoke: bool) -> dict:
    from tftransformer.config import TransformerConfig
    from tftransformer.runs.classify import ClassifySettings, evaluate_classifier, train_classifier

    settings = ClassifySettings(**DATA[data], seed=seed, **config)
    if smoke:
        settings.epochs, settings.limit = 1, 64
        settings.hparams = TransformerConfig(num_layers=1, d_model=16, dff=32, num_heads=2)
    settings.check()
    with tempfile.TemporaryDirectory(prefix="tftransformer-classify-recipe-") as out:
        start = time.perf_counter()
        model, tokenizer, vocab, history = train_classifier(out, settings, verbose=0)
        seconds = time.perf_counter() - start
        test = evaluate_classifier(settings, tokenizer, vocab, model, settings.data, "test",
                                   settings.limit)  # fmt: skip
    return {"vocab": int(tokenizer.get_vocab_size()), "train_seconds": round(seconds, 1),
            "best_val_loss": round(min(history["val_loss"]), 4), **test}  # fmt: skip


def key(row) -> tuple:
    return row["data"], row["config"], row["seed"]


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(rows) -> str:
    groups = {}
    for row in rows:
        groups.setdefault((row["data"], row["config"]), []).append(row)
    lines = ["| data | configuration | seeds | test micro-F1 (mean ± sd) | macro-F1 | accuracy | "
             "vocab | train s |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip

    def stat(group, name):
        values = [r[name] for r in group if name in r]
        if not values:
            return "n/a"
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} ± {spread:.3f}"

    for (data, config), group in sorted(groups.items()):
        seeds = ",".join(str(r["seed"]) for r in sorted(group, key=lambda r: r["seed"]))
        seconds = statistics.mean(r["train_seconds"] for r in group)
        lines.append(f"| {data} | {config or 'defaults'} | {seeds} | {stat(group, 'micro_f1')} | "
                     f"{stat(group, 'macro_f1')} | {stat(group, 'accuracy')} | "
                     f"{group[0]['vocab']} | {seconds:.0f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=",".join(DATA))
    parser.add_argument("--configs", default="tokenizer=wordpiece;tokenizer=sentencepiece",
                        help="';'-separated configurations, each 'setting=value,...'")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS))
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny runs (CI)")
    args = parser.parse_args(argv)
    from tftransformer.runs.precision import training_device

    device = f"{training_device().describe()}"
    print(f"Device: {device}", flush=True)
    results = Path(args.results)
    done = {key(r) for r in read_rows(results)}
    for data in [] if args.report_only else args.data.split(","):
        if data not in DATA:
            raise SystemExit(f"--data: unknown data set {data!r} (one of {', '.join(DATA)})")
        for config_text in args.configs.split(";"):
            config = parse_config(config_text)
            for seed in (int(s) for s in args.seeds.split(",")):
                row = {"data": data, "config": config_text, "seed": seed}
                if key(row) in done:
                    continue
                row.update(run_one(data, config, seed, args.smoke), device=device)
                print(json.dumps(row), flush=True)
                results.parent.mkdir(parents=True, exist_ok=True)
                with results.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
    if args.table:
        print(table(read_rows(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
