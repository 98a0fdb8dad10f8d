"""The run directory: every file a training run leaves for later commands.

    RUN/config.json      settings of the run (hyper-parameters, corpus spec, ...)
    RUN/tokenizers/      the pt/en CustomTokenizer pair (SavedModel)
    RUN/checkpoints/     backup for resuming (weights + optimizer), per-epoch weights
    RUN/model.keras      the trained Transformer
    RUN/logs/            TensorBoard logs
    RUN/history.json     per-epoch loss/accuracy (train and validation)
    RUN/export/<name>/<version>/   SavedModels for TF Serving

Every file is written to a temporary name and renamed into place, so an
interrupted write never leaves half a file under the real name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


class RunError(Exception):
    """A run directory or one of its files is missing or unusable."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type name if it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def write_json_atomic(path, data) -> None:
    """Write `data` as JSON to `path` via a temp file in the same directory."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def write_text_atomic(path, text: str) -> None:
    """Write UTF-8 `text` to `path` via a temp file in the same directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path) -> dict:
    """A JSON object from `path`, or `RunError` naming the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RunError(f"{path}: unreadable ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RunError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise RunError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


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


def replace_dir_atomic(staging, target) -> None:
    """Move the finished directory `staging` to `target`, replacing any old one.

    The old directory is renamed aside first and removed only after the new
    one is in place; `recover_dir` undoes a crash between the two renames.
    """
    import shutil

    staging, target = Path(staging), Path(target)
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.rename(target, old)
    os.rename(staging, target)
    if old.exists():
        shutil.rmtree(old)


def recover_dir(target) -> Path:
    """`target`, restored from its `.old` twin if a replacement was cut short."""
    target = Path(target)
    old = target.with_name(f".{target.name}.old")
    if not target.exists() and old.exists():
        os.rename(old, target)
    return target


def staging_dir(target) -> Path:
    """A fresh temporary directory beside `target` (same file system, so renames are atomic)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
