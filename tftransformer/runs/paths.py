"""The run directory: every file a training run leaves for later commands.

    RUN/config.json      settings of the run (hyper-parameters, corpus spec, ...)
    RUN/tokenizers/      the pt/en CustomTokenizer pair (SavedModel)
    RUN/checkpoints/     backup for resuming (weights + optimizer), per-epoch weights
    RUN/model.keras      the trained Transformer
    RUN/logs/            TensorBoard logs
    RUN/history.json     per-epoch loss/accuracy (train and validation)
    RUN/export/<name>/<version>/   SavedModels for TF Serving

Every file is written through `tftransformer._files` (temporary name, then
rename), so an interrupted write never leaves half a file under the real name.
"""

from __future__ import annotations

from pathlib import Path

from tftransformer._files import RunError

__all__ = ["RunDir", "RunError"]


class RunDir:
    """Paths inside one run directory."""

    def __init__(self, path):
        self.path = Path(path)

    config = property(lambda self: self.path / "config.json")
    tokenizers = property(lambda self: self.path / "tokenizers")
    checkpoints = property(lambda self: self.path / "checkpoints")
    model = property(lambda self: self.path / "model.keras")
    logs = property(lambda self: self.path / "logs")
    history = property(lambda self: self.path / "history.json")
    plots = property(lambda self: self.path / "plots")

    def export_root(self, name: str) -> Path:
        return self.path / "export" / name

    def require(self, *names: str) -> None:
        """Fail with one clear line if the run dir or any named file is missing."""
        if not self.path.is_dir():
            raise RunError(
                f"{self.path}: no such run directory (train one with `tftransformer train`)"
            )
        for name in names:
            target = getattr(self, name)
            if not target.exists():
                raise RunError(f"{target}: missing; is {self.path} a finished training run?")
