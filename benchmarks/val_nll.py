"""Validation cross-entropy that runs with different tokenizers can be compared on.

`train`'s validation loss cannot compare two recipes: the default's carries label
smoothing (0.1 of the probability spread over every piece adds a large constant), and
the two recipes cut the same sentence into different subword pieces (SentencePiece
8,000 against WordPiece), so "loss per piece" counts different things. This script
scores a finished run's validation split without smoothing and divides the summed
negative log-likelihood (nats, teacher forcing, every target piece including [END])
both by the pieces and by the reference words (whitespace-separated, raw text): the
per-word figure is the same yardstick for any tokenizer.

    python benchmarks/val_nll.py RUN [RUN ...] [--weights best]

`--weights best` also scores `checkpoints/best.weights.h5` (the epoch with the lowest
validation loss) beside the kept `model.keras`. Prints one JSON line per model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tftransformer.corpus import load_corpus  # noqa: E402
from tftransformer.runs.backup import BEST_WEIGHTS  # noqa: E402
from tftransformer.runs.run import Run  # noqa: E402
from tftransformer.runs.train_inputs import make_batches_for, take  # noqa: E402


def validation_nll(model, settings, tokenizers) -> dict:
    """Summed unsmoothed NLL of the run's validation split, per piece and per word."""
    pairs = take(load_corpus(settings.corpus, "validation"), settings.limit)
    total, pieces = 0.0, 0
    for (source, target_in), target_out in make_batches_for(settings, tokenizers, pairs):
        logits = model((source, target_in), training=False)
        nll = keras.losses.sparse_categorical_crossentropy(
            target_out, keras.ops.cast(logits, "float32"), from_logits=True
        )
        mask = keras.ops.convert_to_numpy(target_out) != 0
        total += float(np.sum(keras.ops.convert_to_numpy(nll)[mask]))
        pieces += int(mask.sum())
    words = sum(len(target.numpy().decode("utf-8").split()) for _, target in pairs)
    return {
        "pieces": pieces,
        "words": words,
        "nats_per_piece": round(total / pieces, 4),
        "nats_per_word": round(total / words, 4),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--weights", choices=["kept", "best"], default="kept",
                        help="'best' also scores checkpoints/best.weights.h5")  # fmt: skip
    args = parser.parse_args(argv)
    for path in args.runs:
        run = Run(path)
        scored = [("model.keras", None)]
        if args.weights == "best" and (run.dir.checkpoints / BEST_WEIGHTS).exists():
            scored.append((BEST_WEIGHTS, run.dir.checkpoints / BEST_WEIGHTS))
        for name, weights in scored:
            if weights is not None:
                run.model.load_weights(weights)
            line = {"run": str(path), "weights": name, "tokenizer": run.settings.tokenizer,
                    "label_smoothing": run.settings.label_smoothing,
                    **validation_nll(run.model, run.settings, run.tokenizers)}  # fmt: skip
            print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
