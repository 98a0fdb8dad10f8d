"""The speed benchmarks run end to end at smoke sizes (their timings are not checked)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def _run(script, *args):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *args],
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_attention_benchmark_smoke():
    out = _run("attention.py", "--smoke")
    assert out.startswith("Device: CPU ") or out.startswith("Device: GPU ")
    for dtype in ("float32", "bfloat16"):
        for core in ("einsum", "matmul"):
            assert any(line.split()[:2] == [dtype, core] for line in out.splitlines())
    assert "Whole attention layer" in out


@pytest.mark.slow
def test_train_throughput_smoke():
    out = _run("train_throughput.py", "--smoke", "--data", "long", "--configs", ";bucket")
    lines = out.splitlines()
    assert lines[0].startswith("Device: ") and "--mixed-precision auto picks" in lines[0]
    assert lines[1].startswith("long: 200 pairs; pt words/sentence mean")
    rows = [line for line in lines if line.startswith("| long |")]
    assert [row.split(" | ")[1] for row in rows] == ["tutorial", "bucket"]


def test_throughput_configurations_and_long_sentences():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import train_throughput
    finally:
        sys.path.remove(str(BENCHMARKS))
    assert train_throughput.config_name("") == "tutorial"
    assert train_throughput.config_name("matmul,bucket,bf16") == "matmul core + bucket + bf16"
    words = [len(pt.split()) for pt, _ in train_throughput.long_pairs(2000)]
    assert 21 <= np.mean(words) <= 25 and max(words) <= 92  # the report's: mean ~23, max 92
