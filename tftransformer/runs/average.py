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

import shutil
from pathlib import Path

from tftransformer._checks import positive_int
from tftransformer._files import RunError, atomic_dir, write_json_atomic
from tftransformer.runs.backup import save_model_atomic
from tftransformer.runs.keep import average_weights, epoch_checkpoints
from tftransformer.runs.paths import RunDir

__all__ = ["average_run", "average_weights", "epoch_checkpoints"]


def average_run(run_path, last: int, out=None) -> Path:
    """Average RUN's last `last` epoch checkpoints into a new run dir; returns its path."""
    from tftransformer.runs.run import Run

    run = RunDir(run_path)
    positive_int(last, "--last", error=RunError)
    out = Path(out) if out else run.path / f"averaged-last-{last}"
    if out.exists():
        raise RunError(f"--out {out} already exists; averaging never overwrites, pick a new place")
    model = Run(run.path).model
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
        save_model_atomic(model, target.model)
        write_json_atomic(
            staging / "averaged.json",
            {"source": str(run.path.resolve()), "checkpoints": [p.name for p in paths]},
        )
    return out
