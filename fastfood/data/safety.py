"""Guards shared by both layouts: the root exists, listed paths stay inside it, meta
files read cleanly. Every failure is a FastfoodError naming the file (and line).

Paths that escape the root (`../`, absolute paths, symlinks pointing elsewhere) are
refused so a dataset description can never make fastfood read arbitrary files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from fastfood.errors import FastfoodError


def check_root(path: str | os.PathLike[str]) -> Path:
    """The dataset root as an absolute resolved Path; FastfoodError if it is not a folder.

    Cheap on purpose: commands call it before importing TensorFlow, so a typo in --data
    fails instantly. `food101`, when no folder has that name, is the tree that
    `fastfood data food101` downloaded.
    """
    from fastfood.data.food101_install import expand_alias

    raw = Path(os.path.expanduser(expand_alias(os.fspath(path))))
    if not raw.exists():
        raise FastfoodError(f"data root not found: {raw}")
    if not raw.is_dir():
        raise FastfoodError(f"data root is not a directory: {raw}")
    return raw.resolve()


def check_val_fraction(val_fraction: float, name: str = "val_fraction") -> float:
    """val_fraction must lie in [0, 1): 1 would leave nothing to train on. `name` is what
    the error calls it (the CLI flag, where there is one)."""
    try:
        value = float(val_fraction)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value < 1.0:  # also catches NaN
        raise FastfoodError(f"{name} must be a number in [0, 1), got {val_fraction!r}")
    return value


def check_held_out(val_fraction: float, test_fraction: float) -> None:
    """val and test together must leave something to train on."""
    if val_fraction + test_fraction >= 1.0:
        raise FastfoodError(f"--val-fraction plus --test-fraction must be below 1, got "
                            f"{val_fraction:g} + {test_fraction:g}")


def bad_relpath(rel: str) -> str | None:
    """Why a path from a meta file may not be used (None when it is fine)."""
    if "\0" in rel:
        return "NUL byte in the path"
    if rel.startswith("/"):
        return "absolute paths are not allowed"
    if ".." in PurePosixPath(rel).parts:
        return "'..' is not allowed (path would leave the dataset root)"
    return None


def bad_class_name(name: str) -> str | None:
    """Why a class name cannot be a single folder name (None when it is fine)."""
    if name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        return f"class name {name!r} must be a plain folder name"
    return None


class RootGuard:
    """Checks that files exist and resolve inside one root, caching folder lookups.

    Food-101 lists ~100k images; resolving every full path would cost a syscall per
    path component, so folders are resolved once and files only when they are links.
    """

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self._prefix = self.root.rstrip(os.sep) + os.sep
        self._dirs: dict[str, bool] = {}

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self._prefix)

    def _dir_inside(self, folder: str) -> bool:
        known = self._dirs.get(folder)
        if known is None:
            known = self._dirs[folder] = self._inside(os.path.realpath(folder))
        return known

    def problem(self, path: str, kind: str = "file") -> str | None:
        """Why `path` (absolute, under root) is unusable as a `kind` ('file'|'dir'), or None."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return "not found"
        except NotADirectoryError:
            return "not found (a parent is not a folder)"
        except OSError as err:
            return f"cannot be read ({err.strerror})"
        if not self._dir_inside(os.path.dirname(path)):
            return f"resolves outside the dataset root {self.root}"
        if stat.S_ISLNK(st.st_mode):
            if not self._inside(os.path.realpath(path)):
                return f"is a link that resolves outside the dataset root {self.root}"
            try:
                st = os.stat(path)
            except OSError:
                return "is a broken link"
        wanted = stat.S_ISDIR if kind == "dir" else stat.S_ISREG
        if not wanted(st.st_mode):
            return f"is not a {'folder' if kind == 'dir' else 'regular file'}"
        return None


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a UTF-8 meta file as (1-based line number, stripped text).

    Blank lines (and a trailing newline, a BOM, CRLF endings) are tolerated because
    hand-edited meta files have them; they carry no meaning.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FastfoodError(f"missing {path}") from None
    except IsADirectoryError:
        raise FastfoodError(f"{path} is a folder, expected a text file") from None
    except UnicodeDecodeError as err:
        raise FastfoodError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise FastfoodError(f"cannot read {path}: {err.strerror}") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
