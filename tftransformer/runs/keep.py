"""Which weights a finished run keeps in `model.keras`: the last, the best epoch's, or an average.

Not in the tutorial, which keeps the last weights (`train --keep last`). With
`--keep best` (the default) the end of `train_run` scores three candidates on the
validation split and keeps the one with the lowest validation loss:

- the last weights;
- the weights of the epoch with the lowest validation loss (`checkpoints/best.weights.h5`,
  written by `RunBackup`), if that is not the last epoch;
- the mean of the last N epoch checkpoints (N = `AVERAGE_LAST`, or as many as there are,
  if at least two), as `tftransformer average` computes it.

What was kept and every candidate's validation loss are printed and written to
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


def keep_best(model, run: RunDir, history: dict, val, log=print) -> dict:
    """Leave `model` holding the candidate with the lowest validation loss; what was kept."""
    last = model.get_weights()
    epochs = len(history.get("val_loss", []))
    losses = {f"last epoch ({epochs})": _validation_loss(model, val)}
    weights = {f"last epoch ({epochs})": last}
    best_path = run.checkpoints / BEST_WEIGHTS
    if epochs and best_path.exists():
        best_epoch = 1 + min(range(epochs), key=history["val_loss"].__getitem__)
        if best_epoch != epochs:
            name = f"best epoch ({best_epoch})"
            model.load_weights(best_path)
            losses[name], weights[name] = _validation_loss(model, val), model.get_weights()
    paths = epoch_checkpoints(run)[-AVERAGE_LAST:]
    if len(paths) >= 2:
        first = int(paths[0].name.split("-")[1].split(".")[0])
        name = f"average of epochs {first}-{first + len(paths) - 1}"
        average_weights(model, paths)
        losses[name], weights[name] = _validation_loss(model, val), model.get_weights()
    # The lowest validation loss wins; on a tie the earlier candidate (the last weights).
    kept = min(losses, key=losses.__getitem__)
    model.set_weights(weights[kept])
    others = "; ".join(f"{name} {loss:.4f}" for name, loss in losses.items() if name != kept)
    log(f"Kept the {kept}: validation loss {losses[kept]:.4f}" + (f" ({others})" if others else ""))
    record = {"kept": kept, "val_loss": losses}
    write_json_atomic(run.path / "kept.json", record)
    return record
