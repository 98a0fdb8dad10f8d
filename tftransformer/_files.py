"""Files that are never half-written, and errors that name the file at fault.

Every file and directory the package writes goes through `atomic_path` or
`atomic_dir`: the content is written under a temporary name beside the target
(same file system), flushed to disk, and renamed into place, so a process
killed at any moment leaves either the old complete file or the new complete
one, never a partial one under the real name. Temporaries are dot-files ending
in `.tmp` (or `.tmp.<suffix>` where a writer needs a suffix, as Keras does).
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

# Set once an HDF5 (h5py) write has failed in this process: see `release_failed_hdf5`.
_hdf5_write_failed = False


class RunError(Exception):
    """A run directory or one of its files is missing or unusable (printed as one line)."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type name if it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _umask() -> int:
    # The process' file-creation mask (os.umask can only be read by setting it).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.0f} MB" if size >= 2**20 else f"{size / 2**10:,.0f} KB"


def free_bytes(path) -> int:
    """Free bytes on the file system that holds `path` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def require_space(path, needed: int, what: str) -> None:
    """`RunError` naming `path` unless its disk has `needed` bytes free for `what`.

    Checked before large writes: a weights file cut short by a full disk can kill the
    process inside h5py instead of raising (seen once: SIGSEGV after ENOSPC).
    """
    free = free_bytes(path)
    if free < needed:
        raise RunError(
            f"{path}: not enough disk space for {what}: about {_megabytes(needed)} needed, "
            f"{_megabytes(free)} free on that disk; free some space or write elsewhere"
        )


def quiet_unraisable():
    """Silence `sys.unraisablehook` and `sys.stderr` (h5py prints there as it frees
    objects whose file failed); returns what `release_failed_hdf5` puts back."""
    saved = sys.unraisablehook, sys.stderr
    sys.unraisablehook, sys.stderr = (lambda unraisable: None), io.StringIO()
    return saved


def release_failed_hdf5(saved) -> None:
    """After h5py raised on a write (a full disk): free what it left open, quietly.

    h5py leaves the half-written file's objects open; freeing them prints a
    traceback for each (silenced since `quiet_unraisable`; `saved` is put back
    here), and HDF5's own clean-up at interpreter exit then crashes the process
    (SIGSEGV, seen with ENOSPC): `exit_process` skips that clean-up.
    """
    global _hdf5_write_failed
    _hdf5_write_failed = True
    try:
        gc.collect()
    finally:
        sys.unraisablehook, sys.stderr = saved


def exit_process(code: int):
    """`sys.exit(code)`; after a failed HDF5 write, `os._exit(code)` once the output is
    flushed, so that HDF5's exit-time clean-up cannot turn a clear error into SIGSEGV."""
    if _hdf5_write_failed:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path beside `path`; on success it is fsynced and renamed to `path`.

    `suffix` is kept at the end of the temporary name, for writers that insist on
    one (`.keras`, `.weights.h5`, `.png`). On an exception the temporary is removed
    and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp makes the file private (0600); the renamed file gets the permissions any
    # other new file would (0644 under the usual umask), so a server can read it.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path, data) -> None:
    """Write `data` as indented JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def read_json(path) -> dict:
    """A JSON object from `path`, or `RunError` naming the file (and line) and the problem."""
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


def _old(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


@contextlib.contextmanager
def atomic_dir(target, replace: bool = False):
    """Yield a fresh staging directory beside `target`; on success it becomes `target`.

    With `replace=False` an existing `target` is an error (`RunError`, checked
    again just before the rename). With `replace=True` the old directory is
    renamed aside first and removed only once the new one is in place;
    `recover_dir` undoes a crash between the two renames. On an exception the
    staging directory is removed and `target` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())  # as `atomic_path`: not mkdtemp's private 0700
    try:
        yield staging
        if not replace:
            if target.exists():  # appeared while we worked
                raise RunError(f"{target}: already exists")
            os.rename(staging, target)
            return
        old = _old(target)
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            os.rename(target, old)
        os.rename(staging, target)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def recover_dir(target) -> Path:
    """`target`, restored from its `.old` twin if a replacement was cut short."""
    target = Path(target)
    old = _old(target)
    if not target.exists() and old.exists():
        os.rename(old, target)
    return target
