"""The tutorials mirror the official headings and run end to end in smoke mode."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "tutorials"

# The official notebook's headings, in order (tensorflow/text docs/tutorials/transformer.ipynb).
TRANSFORMER_HEADINGS = [
    "## Why Transformers are significant",
    "## Setup",
    "## Data handling",
    "### Download the dataset",
    "### Set up the tokenizer",
    "### Set up a data pipeline with `tf.data`",
    "## Test the Dataset",
    "## Define the components",
    "### The embedding and positional encoding layer",
    "### Add and normalize",
    "### The base attention layer",
    "#### Attention refresher",
    "### The cross attention layer",
    "### The global self-attention layer",
    "### The causal self-attention layer",
    "### The feed forward network",
    "### The encoder layer",
    "### The encoder",
    "### The decoder layer",
    "### The decoder",
    "## The Transformer",
    "### Hyperparameters",
    "### Try it out",
    "## Training",
    "### Set up the optimizer",
    "### Set up the loss and metrics",
    "### Train the model",
    "## Run inference",
    "## Create attention plots",
    "## Export the model",
    "## Conclusion",
]

# The guide's headings (tensorflow/text docs/guide/subwords_tokenizer.ipynb).
SUBWORDS_HEADINGS = [
    "## Overview",
    "## Setup",
    "## Download the dataset",
    "## Generate the vocabulary",
    "## Build the tokenizer",
    "## Customization and export",
    "### Custom tokenization",
    "### Custom detokenization",
    "### Export",
    "## Optional: The algorithm",
    "### Choosing the vocabulary",
    "#### First iteration",
    "#### Second (and third ...) iteration",
    "### Applying WordPiece",
    "### Intuition",
    "## Optional: tf.lookup",
]


def headings(script: Path):
    """Markdown headings in the script's module-level string blocks, in order."""
    found = []
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                found += [
                    line.strip()
                    for line in node.value.value.splitlines()
                    if line.strip().startswith("#")
                ]
    return found


def test_transformer_tutorial_headings_match_the_official_order():
    assert headings(TUTORIALS / "transformer.py") == TRANSFORMER_HEADINGS


def test_subwords_guide_headings_match_the_official_order():
    assert headings(TUTORIALS / "subwords_tokenizer.py") == SUBWORDS_HEADINGS


def test_every_tutorial_has_a_tutobook_header():
    for script in TUTORIALS.glob("*.py"):
        header = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
        for field in ("Title:", "Description:", "Mirrors:"):
            assert field in header, (script.name, field)


def test_readme_maps_every_transformer_heading():
    table = (TUTORIALS / "README.md").read_text(encoding="utf-8")
    for heading in TRANSFORMER_HEADINGS:
        assert heading.lstrip("# ").replace("`", "") in table.replace("`", ""), heading


@pytest.mark.slow
@pytest.mark.parametrize(
    "script, figures",
    [
        ("transformer.py", ["token_lengths.png", "positional_encoding.png", "learning_rate.png",
                            "attention_head.png", "attention_heads.png"]),
        ("subwords_tokenizer.py", ["pt_vocab.txt", "en_vocab.txt"]),
        ("text_classification.py", ["multiclass_history.png", "multilabel_history.png"]),
    ],
)  # fmt: skip
def test_tutorial_runs_in_smoke_mode(script, figures, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("DISPLAY", None)
    result = subprocess.run(
        [sys.executable, str(TUTORIALS / script), "--smoke", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("Done.")
    for name in figures:
        assert (tmp_path / name).stat().st_size > 0, name
