"""Derived files built once per machine under ARTIFACTS_DIR (a base model, an exported encoder):
built under a file lock, so concurrent processes build it once, into a temporary name moved into
place when complete, so a reader never sees half a file."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def build_once(path: Path, build: Callable[[Path], None], *, done: Callable[[Path], bool] | None = None) -> Path:
    """`path` once it exists; otherwise `build(partial)` writes a file or folder at `partial`,
    which then becomes `path`. `done(path)` says whether it exists (default: path.exists())."""
    done = done or Path.exists
    if done(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done(path):
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            _remove(partial)
            try:
                build(partial)
                if path.exists():
                    _remove(path)  # an incomplete leftover that `done` refused
                os.replace(partial, path)
            finally:
                _remove(partial)
    return path


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
