"""Checkpoint averaging: the mean of a run's last N epoch weights, as a new run.

Not in the tutorial. Production NMT toolkits (the paper's base models too)
average the weights of the last few checkpoints: it smooths out the noise of
the last updates and usually gains a little BLEU for free.

`average_run(RUN, N)` never touches RUN's own files: it writes a complete run
directory (config, tokenizers, the averaged `model.keras`, `averaged.json`
naming the sources) to a new place, default `RUN/averaged-last-N/`, that
`evaluate`, `translate`, `plot` and `export` take like any other run.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from tftransformer._files import RunError, atomic_dir, first_line, write_json_atomic
from tftransformer.runs.rundir import RunDir

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


def average_run(run_path, last: int, out=None) -> Path:
    """Average RUN's last `last` epoch checkpoints into a new run dir; returns its path."""
    from tftransformer.runs.run import load_run

    run = RunDir(run_path)
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise RunError(f"--last must be a positive integer, got {last!r}")
    out = Path(out) if out else run.path / f"averaged-last-{last}"
    if out.exists():
        raise RunError(f"--out {out} already exists; averaging never overwrites, pick a new place")
    _settings, _tokenizers, model = load_run(run.path)
    paths = epoch_checkpoints(run)
    if len(paths) < last:
        raise RunError(
            f"--last {last}: {run.checkpoints} has only {len(paths)} epoch checkpoint(s) "
            f"({', '.join(p.name for p in paths) or 'none'})"
        )
    paths = paths[-last:]
    average_weights(model, paths)

    with atomic_dir(out) as staging:  # refuses an `out` that appeared while we worked
        target = RunDir(staging)
        shutil.copy2(run.config, target.config)
        shutil.copytree(run.tokenizers, target.tokenizers)
        model.save(target.model)
        write_json_atomic(
            staging / "averaged.json",
            {"source": str(run.path.resolve()), "checkpoints": [p.name for p in paths]},
        )
    return out
