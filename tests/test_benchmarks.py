"""The speed benchmarks run end to end at smoke sizes (their timings are not checked)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tftransformer.runs.run import Run

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def _run(script, *args):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *args],
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_train_throughput_smoke(tokenizers_dir):
    # One configuration: each costs a fresh process that imports TensorFlow and traces.
    # The session's tokenizers (learned from the embedded corpus, as the benchmark's
    # default would) save learning them again.
    out = _run("train_throughput.py", "--smoke", "--data", "long", "--configs", "bucket",
               "--tokenizers", str(tokenizers_dir))  # fmt: skip
    lines = out.splitlines()
    assert lines[0].startswith("Device: ") and "--mixed-precision auto picks" in lines[0]
    assert lines[1].startswith("long: 200 pairs; pt words/sentence mean")
    rows = [line for line in lines if line.startswith("| long |")]
    assert [row.split(" | ")[1] for row in rows] == ["bucket"]


def test_throughput_configurations_and_long_sentences():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import train_throughput
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert train_throughput.config_name("") == "tutorial"
    assert train_throughput.config_name("bucket,bf16") == "bucket + bf16"
    words = [len(pt.split()) for pt, _ in train_throughput.long_pairs(2000)]
    assert 21 <= np.mean(words) <= 25 and max(words) <= 92  # the report's: mean ~23, max 92


def test_tokenizer_choice_smoke(tmp_path):
    work = tmp_path / "runs"
    args = ("--smoke", "--configs", "sentencepiece:500:shared", "--work", str(work))
    out = _run("tokenizer_choice.py", *args)
    lines = out.splitlines()
    assert lines[0].startswith("Device: CPU ") or lines[0].startswith("Device: GPU ")
    assert lines[1].startswith("corpus=embedded epochs=1 seed=0")
    assert lines[2].startswith("BLEU nrefs:1|case:mixed")
    row = next(line for line in lines if line.startswith("sentencepiece-500-shared "))
    cells = row.split()
    assert cells[1] == cells[3]  # one shared vocabulary: as many pieces on both sides
    assert cells[-2] == "-"  # natural text: no normalized scores
    # The run is kept for reuse, and it is a shared-vocabulary run throughout.
    run = Run(work / "sentencepiece-500-shared")
    assert run.settings.shared_vocabulary and run.settings.tokenizer == "sentencepiece"
    size = int(run.tokenizers.pt.get_vocab_size())
    assert cells[1] == str(size) and int(run.tokenizers.en.get_vocab_size()) == size
    path = run.tokenizers.pt.get_vocab_path().numpy().decode()
    assert path == run.tokenizers.en.get_vocab_path().numpy().decode()
    assert path.endswith("shared_sentencepiece.model")
    # Both embeddings and the output layer are sized by the one vocabulary.
    assert run.model.encoder.pos_embedding.embedding.input_dim == size
    assert run.model.decoder.pos_embedding.embedding.input_dim == size
    assert run.model.final_layer.units == size


def test_tokenizer_choice_configs_are_parsed_and_bad_ones_named():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from tokenizer_choice import parse_config
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert parse_config("wordpiece") == ("wordpiece", {"tokenizer": "wordpiece",
                                                       "shared_vocabulary": False})  # fmt: skip
    assert parse_config("sentencepiece:1000:shared") == (
        "sentencepiece-1000-shared",
        {"tokenizer": "sentencepiece", "shared_vocabulary": True, "vocab_size": 1000},
    )
    with pytest.raises(SystemExit, match="'bpe:1000': the kind must be one of"):
        parse_config("bpe:1000")
    with pytest.raises(SystemExit, match="'big' is neither a size nor 'shared'"):
        parse_config("sentencepiece:big")


def test_recipe_benchmark_smoke_records_plots_and_skips_what_is_done(tmp_path):
    results, png = tmp_path / "recipe.jsonl", tmp_path / "recipe.png"
    args = ("--smoke", "--recipes", "tutorial", "--budgets", "epochs", "--seeds", "0",
            "--work", str(tmp_path / "runs"), "--results", str(results))  # fmt: skip
    out = _run("recipe.py", *args, "--table", "--plot", str(png))
    assert out.startswith("Device: CPU ") or out.startswith("Device: GPU ")
    import json

    (row,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert row["recipe"] == "tutorial" and row["status"] == 0 and row["collapsed"] is None
    assert isinstance(row["bleu"], float) and isinstance(row["chrf"], float)
    assert row["steps"] == 2 and len(row["translations"]) == 3  # 32 pairs, batches of 16
    assert "tutorial's CustomSchedule" in row["schedule"]
    assert "| embedded | tutorial | epochs | 0 | 2 |" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    # A rerun finds the configuration done and trains nothing.
    again = _run("recipe.py", *args)
    assert "+ " not in again and len(results.read_text().splitlines()) == 1


@pytest.mark.slow
def test_classify_recipe_benchmark_smoke_records_and_skips_what_is_done(tmp_path):
    import json

    results = tmp_path / "classify_recipe.jsonl"
    args = ("--smoke", "--data", "ko", "--configs", "tokenizer=sentencepiece", "--seeds", "0",
            "--results", str(results))  # fmt: skip
    out = _run("classify_recipe.py", *args, "--table")
    assert out.startswith("Device: ")
    (row,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert row["data"] == "ko" and row["config"] == "tokenizer=sentencepiece"
    assert row["examples"] == 48 and 0 <= row["accuracy"] <= 1
    # SentencePiece keeps Hangul syllables: pieces are more than the 4 reserved ones.
    assert row["vocab"] > 100
    assert "| ko | tokenizer=sentencepiece | 0 |" in out
    again = _run("classify_recipe.py", *args)
    assert len(again.strip().splitlines()) == 1 and len(results.read_text().splitlines()) == 1


@pytest.mark.slow
def test_decode_run_benchmark_smoke_prints_every_engine(tiny_run, tmp_path):
    # decode.py --run hands the trained run to on_device.py: both scripts run here.
    pytest.importorskip("ctranslate2")
    pytest.importorskip("ai_edge_litert")
    from conftest import copy_run

    run = copy_run(tiny_run, tmp_path / "run")
    out = _run("decode.py", "--run", str(run), "--smoke")
    lines = out.splitlines()
    assert lines[0].startswith("Device: ")
    rows = {line.split("  ")[0].strip(): line for line in lines if line[:1].isalpha()}
    for engine in ("tensorflow", "ctranslate2 f32", "ctranslate2 int8", "litert f32",
                   "litert int8"):  # fmt: skip
        assert engine in rows and "failed" not in rows[engine], out
    assert (run / "export" / "litert" / "dynamic-int8" / "translator.tflite").exists()
    for kind in ("ctranslate2", "litert"):
        (gap,) = [line for line in lines if line.startswith(f"{kind}: int8 BLEU - float32 BLEU")]
        bleu = {e: float(rows[e].split()[-2]) for e in (f"{kind} f32", f"{kind} int8")}
        assert float(gap.split()[-1]) == pytest.approx(bleu[f"{kind} int8"] - bleu[f"{kind} f32"],
                                                      abs=0.011)


def test_recipe_joined_corpus_is_consecutive_real_pairs_joined(tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import recipe
    finally:
        sys.path.remove(str(BENCHMARKS))
    from tftransformer.corpus import read_examples

    assert recipe.corpus_spec("embedded", tmp_path) == "embedded"
    spec = recipe.corpus_spec("embedded-joined3", tmp_path)
    assert spec == f"tsv:{tmp_path / 'embedded-joined3'}"
    for split in ("train", "validation", "test"):
        examples = read_examples("embedded", split)
        joined = read_examples(spec, split)
        assert len(joined) == len(examples) // 3
        assert joined[1].pt == " ".join(e.pt for e in examples[3:6])
        last = examples[3 * len(joined) - 3 : 3 * len(joined)]
        assert joined[-1].en == " ".join(e.en for e in last)


def test_recipe_reads_what_was_kept_and_by_what():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import recipe
    finally:
        sys.path.remove(str(BENCHMARKS))
    now = "Kept the last epoch (20): validation chrF 49.58, loss 3.2463 (best epoch (16) ...)\n"
    before = "Kept the best epoch (16): validation loss 3.1929 (last epoch (20) 3.2317)\n"
    assert recipe.parse_output(now)["kept"] == "last epoch (20)"
    assert recipe.parse_output(now)["kept_by"] == "validation chrF"
    assert recipe.parse_output(before)["kept_by"] == "validation loss"
    assert recipe.parse_output("no kept line")["kept_by"] is None


def test_recipe_plot_draws_one_line_per_recipe_and_flag_variant():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import recipe
    finally:
        sys.path.remove(str(BENCHMARKS))

    def row(recipe_name, budget, seconds, bleu, extra="", seed=0):
        return dict(corpus="embedded", recipe=recipe_name, budget=budget, seed=seed,
                    extra=extra, train_seconds=seconds, bleu=bleu)  # fmt: skip

    previous = recipe.PREVIOUS_DEFAULTS
    rows = [row("default", "epochs", 1500, 36.0), row("default", "epochs", 1440, 38.0, seed=1),
            row("default", "10m", 600, 16.0), row("default", "epochs", 1300, 24.0, previous),
            row("tutorial", "epochs", 1400, 10.0), row("default", "epochs", 900, 9.0, "--bucket"),
            dict(row("default", "epochs", 1, 1.0), corpus="embedded-joined3")]  # fmt: skip
    lines = {label: points for label, _ran, points, _rows in recipe.plot_lines(rows)}
    # Budgets are averaged over seeds and sorted by minutes; other flags and corpora stay out.
    assert lines == {"--recipe default (mean)": [(10.0, 16.0), (24.5, 37.0)],
                     f"--recipe default {previous} (mean)": [(1300 / 60, 24.0)],
                     "--recipe tutorial (mean)": [(1400 / 60, 10.0)]}  # fmt: skip


def test_val_nll_is_the_tutorial_loss_without_smoothing_per_piece_and_per_word(tiny_run):
    # The tiny run trained with label smoothing 0.1 (the default); the script scores
    # without it, and its per-piece figure is the tutorial's `masked_loss` summed over the
    # validation batches (weighted by their pieces), its words the raw references'.
    import json

    from tftransformer.corpus import load_corpus
    from tftransformer.runs.train_inputs import make_batches_for, take
    from tftransformer.training import masked_loss

    run = Run(tiny_run)
    assert run.settings.label_smoothing == 0.1
    pairs = take(load_corpus(run.settings.corpus, "validation"), run.settings.limit)
    total = pieces = 0.0
    for (source, target_in), target_out in make_batches_for(run.settings, run.tokenizers, pairs):
        count = float(np.sum(target_out.numpy() != 0))
        total += float(masked_loss(target_out, run.model((source, target_in)))) * count
        pieces += count
    words = sum(len(en.numpy().decode().split()) for _, en in pairs)
    line = json.loads(_run("val_nll.py", str(tiny_run)).strip().splitlines()[-1])
    assert (line["pieces"], line["words"]) == (pieces, words)
    assert line["nats_per_piece"] == pytest.approx(total / pieces, abs=1e-3)
    assert line["nats_per_word"] == pytest.approx(total / words, abs=1e-3)
