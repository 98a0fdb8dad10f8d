"""Which weights a finished run keeps in `model.keras`: the last, the best epoch's, or an average.

Not in the tutorial, which keeps the last weights (`train --keep last`). With
`--keep best` (the default) the end of `train_run` weighs up to three candidates:

- the last weights;
- the weights of the epoch with the lowest validation loss (`checkpoints/best.weights.h5`,
  written by `RunBackup`), if that is not the last epoch;
- the mean of the last N epoch checkpoints (N = `AVERAGE_LAST`, or as many as there are,
  if at least two), as `tftransformer average` computes it.

Each gets its validation loss and, when `train` passes a scorer, the chrF of its greedy
translations of the validation split (what a user reads); the highest chrF is kept, or,
without a scorer, the lowest loss. Deviation from the earlier rule (lowest validation
loss): with label smoothing the loss prefers an early, hedging epoch. On the default
recipe's seeds 0 and 1 (docs/training.md, "Keeping the best weights") the lowest-loss candidate was
the worst of the three by test BLEU (26.38 and 24.45, against 27.29 and 27.36 for the
highest validation chrF).

What was kept and every candidate's figures are printed and written to
`RUN/kept.json`. The training backup always keeps the last weights, so a resumed
run continues from where training stopped, and choosing again after more epochs
looks at the new candidates.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tftransformer._files import RunError, first_line, write_json_atomic
from tftransformer.runs.backup import BEST_WEIGHTS, KEEP_EPOCH_CHECKPOINTS
from tftransformer.runs.paths import RunDir

AVERAGE_LAST = KEEP_EPOCH_CHECKPOINTS
KEEP = ("best", "last")
_EPOCH = re.compile(r"epoch-(\d+)\.weights\.h5")


def epoch_checkpoints(run: RunDir) -> list[Path]:
    """`checkpoints/epoch-NNN.weights.h5` of a run, oldest epoch first."""
    found = []
    for path in run.checkpoints.glob("epoch-*.weights.h5"):
        match = _EPOCH.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return [path for _epoch, path in sorted(found)]


def average_weights(model, paths) -> list[np.ndarray]:
    """The element-wise mean of `model`'s weights over the weight files `paths`.

    Each file is loaded into `model` in turn (so it must fit its
    architecture); floating weights are averaged in float64, other weights
    (integer counters, if any) are taken from the last file. The model is left
    holding the average.
    """
    if not paths:
        raise ValueError("average_weights needs at least one weights file")
    sums = None
    for path in paths:
        try:
            model.load_weights(path)
        except Exception as error:  # h5py/keras raise many types for a bad file
            raise RunError(f"{path}: cannot load these weights ({first_line(error)})") from None
        values = [np.asarray(v) for v in model.get_weights()]
        if sums is None:
            sums = [v.astype("float64") if v.dtype.kind == "f" else v for v in values]
        else:
            sums = [s + v if v.dtype.kind == "f" else v for s, v in zip(sums, values, strict=True)]
    last = [np.asarray(v) for v in model.get_weights()]
    mean = [
        (s / len(paths)).astype(v.dtype) if v.dtype.kind == "f" else v
        for s, v in zip(sums, last, strict=True)
    ]
    model.set_weights(mean)
    return mean


def _validation_loss(model, val) -> float:
    return float(model.evaluate(val, verbose=0, return_dict=True)["loss"])


def candidates(model, run: RunDir, history: dict) -> dict:
    """{name: weights} of the candidates above, the last weights first; `model` is left
    holding the last weights."""
    last = model.get_weights()
    epochs = len(history.get("val_loss", []))
    found = {f"last epoch ({epochs})": last}
    best_path = run.checkpoints / BEST_WEIGHTS
    if epochs and best_path.exists():
        best_epoch = 1 + min(range(epochs), key=history["val_loss"].__getitem__)
        if best_epoch != epochs:
            model.load_weights(best_path)
            found[f"best epoch ({best_epoch})"] = model.get_weights()
    paths = epoch_checkpoints(run)[-AVERAGE_LAST:]
    if len(paths) >= 2:
        first = int(paths[0].name.split("-")[1].split(".")[0])
        found[f"average of epochs {first}-{first + len(paths) - 1}"] = average_weights(model, paths)
    model.set_weights(last)
    return found


def keep_best(model, run: RunDir, history: dict, val, log=print, score=None) -> dict:
    """Leave `model` holding the kept candidate; returns (and writes to `kept.json`) what
    was kept with every candidate's validation loss and, given `score` (a function of no
    arguments scoring the model's current weights, higher is better: `train` passes the
    validation split's greedy chrF), its score. With one candidate nothing is scored."""
    weights = candidates(model, run, history)
    losses, scores = {}, {}
    for name, values in weights.items():
        model.set_weights(values)
        losses[name] = _validation_loss(model, val)
        if score is not None and len(weights) > 1:
            scores[name] = float(score())
    # Highest score (or, unscored, lowest loss) wins; a tie goes to the earlier candidate.
    if scores:
        kept = max(scores, key=scores.__getitem__)
    else:
        kept = min(losses, key=losses.__getitem__)
    model.set_weights(weights[kept])

    def figures(name):
        loss = f"loss {losses[name]:.4f}"
        return f"chrF {scores[name]:.2f}, {loss}" if scores else loss

    others = "; ".join(f"{name} {figures(name)}" for name in losses if name != kept)
    log(f"Kept the {kept}: validation {figures(kept)}" + (f" ({others})" if others else ""))
    record = {"kept": kept, "chosen_by": "validation chrF" if scores else "validation loss",
              "val_loss": losses}  # fmt: skip
    if scores:
        record["val_chrf"] = scores
    write_json_atomic(run.path / "kept.json", record)
    return record
