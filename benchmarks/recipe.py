"""Quality per minute: `train --recipe tutorial` against the defaults, at equal wall time.

Each configuration is one `tftransformer train` run in a child process, exactly
as a user runs it: `--recipe R --seed S` and either `--max-time BUDGET` or the
default epochs (`epochs`). For each it records the test split's BLEU / chrF as
the CLI prints them (sacrebleu on the raw references, greedy decoding), the
optimizer steps taken, the training seconds, the lowest validation loss, what
the run kept, whether the collapse guard fired (and its line), and the first
three translations. The device is printed first and stored with every row.

Rows are appended to `--results` (JSON lines, one per finished configuration),
and a configuration already there is skipped, so a stopped sweep loses
nothing and a rerun goes on where it stopped. `--plot PNG` draws test BLEU
against training minutes from the results file (one line per recipe, the mean
over seeds; each seed a point). `--table` prints the results as a markdown table.

Quality per minute is only fair on an otherwise idle machine: run it alone.

`--corpus embedded-joinedN` trains on long sentences made offline from real
ones: each example of every split is N consecutive embedded pairs joined by a
space (about N times as long; the rows keep that name, the runs read it as
`tsv:` files written to the work directory).

    python benchmarks/recipe.py [--recipes default,tutorial] [--budgets 5m,10m,25m,epochs]
        [--seeds 0,1,2] [--corpus embedded] [--work DIR] [--results FILE]
        [--plot PNG] [--table] [--report-only] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results" / "recipe.jsonl"


def device() -> str:
    """The training device as `train` sees it (`runs.precision`), and the core count."""
    from tftransformer.runs.precision import training_device

    return f"{training_device().describe()}, {os.cpu_count()} cores"


def key(row) -> tuple:
    # Rows trained before 2026-12-06's fix ran no dropout (Keras 3's fit did not pass
    # training=True to the Transformer): `dropout_ran: false` keeps them apart.
    return (row["corpus"], row["recipe"], row["budget"], row["seed"], row.get("extra", ""),
            row.get("dropout_ran", True))


def parse_output(text: str) -> dict:
    """Scores, collapse and translations from what `tftransformer train` printed."""
    found = {}
    score = re.search(r"^Test BLEU ([\d.]+)\s+chrF ([\d.]+)\s+\(\d+ sentences, greedy", text, re.M)
    if score:
        found["bleu"], found["chrf"] = float(score.group(1)), float(score.group(2))
    beam = re.search(r"^Test BLEU ([\d.]+)\s+chrF ([\d.]+)\s+\(\d+ sentences, beam", text, re.M)
    if beam:
        found["beam_bleu"], found["beam_chrf"] = float(beam.group(1)), float(beam.group(2))
    collapse = re.search(r"^training collapsed: .*$", text, re.M)
    found["collapsed"] = collapse.group(0) if collapse else None
    # The re-planned schedule line may follow Keras' progress bar on the same line.
    for name, pattern in (("kept", r"^Kept the (.*?):"), ("schedule", r"Learning rate: (.*)$"),
                          ("stopped", r"^Stopped by (.*)$")):  # fmt: skip
        matches = re.findall(pattern, text, re.M)
        found[name] = matches[-1] if matches else None
    kept_by = re.search(r"^Kept the .*?: validation (chrF|loss)", text, re.M)
    found["kept_by"] = f"validation {kept_by.group(1)}" if kept_by else None
    found["translations"] = re.findall(r"^Prediction\s+: (.*)$", text, re.M)[:3]
    return found


JOINED = re.compile(r"embedded-joined([1-9]\d*)")


def corpus_spec(corpus: str, work: Path) -> str:
    """The `train --corpus` spec for a row's corpus: `embedded-joinedN` is written out as TSV."""
    joined = JOINED.fullmatch(corpus)
    if not joined:
        return corpus
    from tftransformer.corpus import SPLITS, read_examples

    size, folder = int(joined.group(1)), work / corpus
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        examples = read_examples("embedded", split)
        groups = [examples[i : i + size] for i in range(0, len(examples) - size + 1, size)]
        lines = (" ".join(e.pt for e in g) + "\t" + " ".join(e.en for e in g) for g in groups)
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"tsv:{folder}"


def run_one(config: dict, work: Path, smoke: bool) -> dict:
    out = work / "-".join(str(v) for v in key(config)[:-1] if v != "")
    command = [sys.executable, "-m", "tftransformer", "train", "--out", str(out),
               "--corpus", corpus_spec(config["corpus"], work), "--recipe", config["recipe"],
               "--seed", str(config["seed"])]  # fmt: skip
    if config["budget"] != "epochs":
        command += ["--max-time", config["budget"]]
    if smoke:
        command += ["--epochs", "1", "--limit", "32", "--batch-size", "16", "--num-layers", "1",
                    "--d-model", "16", "--dff", "32", "--num-heads", "2"]  # fmt: skip
    command += config.get("extra", "").split()
    print("+", " ".join(command), flush=True)
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
    row = {**config, "seconds_total": round(time.monotonic() - start, 1), "status": done.returncode}
    if out.exists():  # what the user would have read, kept beside the run
        (out / "train.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    row.update(parse_output(done.stdout + done.stderr))
    if done.returncode and not row["collapsed"]:
        row["error"] = (done.stderr.strip().splitlines() or ["?"])[-1]
    history = out / "history.json"
    if history.exists():
        data = json.loads(history.read_text())
        row["steps"] = int(data.get("steps", [0])[-1])
        row["train_seconds"] = data.get("train_seconds", [None])[-1]
        row["best_val_loss"] = min(data.get("val_loss", [float("nan")]))
        row["val_accuracy"] = data.get("val_masked_accuracy", [])
    return row


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(rows) -> str:
    lines = ["| corpus | recipe | budget | seed | steps | train min | test BLEU | chrF | "
             "beam-4 BLEU | collapsed | kept |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        minutes = (r.get("train_seconds") or 0) / 60
        lines.append(
            f"| {r['corpus']} | {r['recipe']}{(' ' + r['extra']) if r.get('extra') else ''}"
            f"{'' if r.get('dropout_ran', True) else ' (no dropout ran)'} | "
            f"{r['budget']} | {r['seed']} | {r.get('steps', '')} | {minutes:.1f} | "
            f"{r.get('bleu', 'n/a')} | {r.get('chrf', 'n/a')} | {r.get('beam_bleu', 'n/a')} | "
            f"{'yes' if r.get('collapsed') else 'no'} | {r.get('kept') or 'last'} |"
        )
    return "\n".join(lines)


# (recipe, dropout ran, extra flags, legend): one line each. The second is the default
# before 2026-12-06's change to 40 epochs in bf16 (where native).
PREVIOUS_DEFAULTS = "--epochs 20 --mixed-precision float32"
LINES = (("default", True, "", "--recipe default"),
         ("default", True, PREVIOUS_DEFAULTS, f"--recipe default {PREVIOUS_DEFAULTS}"),
         ("tutorial", True, "", "--recipe tutorial"),
         ("default", False, PREVIOUS_DEFAULTS,
          f"--recipe default {PREVIOUS_DEFAULTS}, no dropout ran"),
         ("tutorial", False, "", "--recipe tutorial, no dropout ran"))  # fmt: skip


def plot_lines(rows, corpus: str = "embedded") -> list[tuple]:
    """(legend, dropout ran, mean points, rows) per `LINES` entry with rows of `corpus`: the
    mean test BLEU of each budget against its mean training minutes."""
    lines = []
    for recipe, dropout_ran, extra, name in LINES:
        mine = [r for r in rows if r["recipe"] == recipe and "bleu" in r
                and r.get("extra", "") == extra and r["corpus"] == corpus
                and r.get("dropout_ran", True) == dropout_ran]  # fmt: skip
        if not mine:
            continue
        by_budget = {}
        for r in mine:
            by_budget.setdefault(r["budget"], []).append(r)
        mean = lambda rs, field: sum(x[field] for x in rs) / len(rs)
        points = sorted((mean(rs, "train_seconds") / 60, mean(rs, "bleu"))
                        for rs in by_budget.values())  # fmt: skip
        lines.append((f"{name} (mean)", dropout_ran, points, mine))
    return lines


def plot(rows, path: Path, corpus: str = "embedded") -> None:
    """Test BLEU against training minutes for `corpus`'s rows (one line per `LINES` entry)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, dropout_ran, points, mine in plot_lines(rows, corpus):
        line = ax.plot(*zip(*points, strict=True), marker="o", label=label,
                       linestyle="-" if dropout_ran else "--")  # fmt: skip
        ax.scatter([r["train_seconds"] / 60 for r in mine], [r["bleu"] for r in mine],
                   color=line[0].get_color(), alpha=0.4, s=12)  # fmt: skip
    ax.set_xlabel("training minutes (as the runs ran: see the docs)")
    ax.set_ylabel("test BLEU (greedy, raw references)")
    ax.set_title(f"{corpus} corpus; {rows[0]['device']}" if rows else corpus)
    ax.grid(alpha=0.3)
    # Below the axes: the lines fill every corner of the plot.
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", default="default,tutorial")
    parser.add_argument("--budgets", default="5m,10m,25m,epochs")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--corpus", default="embedded")
    parser.add_argument("--extra", default="", help="more `train` flags for every run")
    parser.add_argument("--work", help="run directories (default: a temporary directory)")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS))
    parser.add_argument("--plot", help="write BLEU against minutes to this PNG")
    parser.add_argument("--table", action="store_true", help="print the results table")
    parser.add_argument("--smoke", action="store_true", help="tiny runs (CI)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: only --table / --plot from the results file")
    args = parser.parse_args(argv)

    results = Path(args.results)
    print(f"Device: {device()}", flush=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="tftransformer-recipe-"))
    done = {key(r) for r in read_rows(results)}
    for budget in [] if args.report_only else args.budgets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for recipe in args.recipes.split(","):
                config = dict(corpus=args.corpus, recipe=recipe, budget=budget, seed=seed,
                              extra=args.extra, device=device())  # fmt: skip
                if key(config) in done:
                    continue
                row = run_one(config, work, args.smoke)
                print(json.dumps({k: v for k, v in row.items() if k != "val_accuracy"}),
                      flush=True)  # fmt: skip
                results.parent.mkdir(parents=True, exist_ok=True)
                with results.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
    rows = read_rows(results)
    if args.table:
        print(table(rows))
    if args.plot:
        plot(rows, Path(args.plot), args.corpus)
        print(f"Wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
