"""Write an export beside its target, and move it into place only when it passed its check.

The artifact is written into a hidden staging folder next to `--out` (same filesystem, so
the final move is a rename). A failed check, an error or Ctrl-C removes the staging folder
and leaves `--out` as it was: nothing half-made is left, and an older export in `--out`
(replaced with --force) is kept until the new one is in place.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastfood.errors import FastfoodError


def check_out(out: Path, overwrite: bool) -> None:
    """--out must be a new or empty folder (or --force): an export never mixes two models."""
    if out.exists() and not out.is_dir():
        raise FastfoodError(f"--out {out}: exists and is not a folder")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise FastfoodError(f"--out {out}: cannot create it, {parent} is a file")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FastfoodError(f"--out {out}: folder is not empty (use --force to write over it)")


def staging_path(out: Path, tag: str = "staging") -> Path:
    """The hidden sibling of `out` an export is written into first."""
    out = out.absolute()
    return out.parent / f".{out.name}.{tag}-{os.getpid()}"


@contextmanager
def staged(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty staging folder; on a clean exit it becomes `out` (see the module doc)."""
    check_out(out, overwrite)
    stage = staging_path(out)
    shutil.rmtree(stage, ignore_errors=True)  # left by a killed export of this same pid
    stage.mkdir(parents=True)
    try:
        yield stage
        publish(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def publish(stage: Path, out: Path) -> None:
    """Rename `stage` to `out`; an existing `out` is moved aside first and removed after."""
    out = out.absolute()
    old = None
    if out.is_dir():
        if any(out.iterdir()):
            old = staging_path(out, "old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
        else:
            out.rmdir()
    try:
        stage.rename(out)
    except OSError as err:
        if old is not None:
            old.rename(out)  # put the previous export back
        raise FastfoodError(f"--out {out}: cannot move the export into place ({err})") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
