"""Get Food-101 onto this machine: download the official tarball, check it, unpack it.

The address and md5 are the ones torchvision checks the same file against
(pytorch/vision, torchvision/datasets/food101.py: Food101._URL and Food101._MD5).

It goes to fastfood's cache folder (cache_dir()/food-101, ~/.cache/fastfood/food-101
unless FASTFOOD_CACHE says otherwise) by default: the built-in sample lives there too,
it does not depend on the folder a command is started from, and so `--data food101`
can find it from anywhere. The archive (about 5 GB, and as much again unpacked) is
downloaded beside the target as <target>.tar.gz, unpacked into a hidden sibling folder
and renamed into place only when whole, then deleted. A folder that already holds the
tree is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path
from typing import Iterator

from fastfood.data.progress import Transfer, size
from fastfood.errors import FastfoodError
from fastfood.paths import cache_dir

URL = "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz"
MD5 = "85eeb15f3717b99a5da872d97d918f87"
ALIAS = "food101"  # `--data food101`: the downloaded tree, when no folder has that name
NEEDED = ("meta/classes.txt", "meta/train.txt", "meta/test.txt")


def default_dir() -> Path:
    return cache_dir() / "food-101"


def incomplete(root: Path) -> str | None:
    """Why `root` is not a whole Food-101 tree (None when it is): the meta files, and a
    folder under images/ for every class. Cheap: no image is opened."""
    if not root.is_dir():
        return "not a folder"
    for rel in NEEDED:
        if not (root / rel).is_file():
            return f"no {rel}"
    try:
        classes = [c.strip() for c in (root / "meta" / "classes.txt").read_text(
            encoding="utf-8-sig").splitlines() if c.strip()]
    except (OSError, UnicodeDecodeError) as err:
        return f"meta/classes.txt unreadable ({err})"
    if not classes:
        return "meta/classes.txt lists no class"
    missing = [c for c in classes if not (root / "images" / c).is_dir()]
    if missing:
        return f"no images/{missing[0]}/" + (f" (and {len(missing) - 1} more)"
                                               if len(missing) > 1 else "")
    return None


def expand_alias(root: str) -> str:
    """`food101` means the downloaded tree unless a folder of that name is here."""
    if root != ALIAS or os.path.exists(root):
        return root
    home = default_dir()
    if incomplete(home) is None:
        return str(home)
    raise FastfoodError(f"--data {ALIAS}: Food-101 is not downloaded to {home} (and there is "
                        f"no folder ./{ALIAS}); run `fastfood data food101` first")


def install(out: str | os.PathLike[str] | None, progress: Transfer, *, url: str = URL,
            md5: str = MD5, **download_kw: object) -> tuple[Path, bool]:
    """(the tree's folder, whether anything was done). Downloads (resuming), checks the
    md5, unpacks safely and renames into place; FastfoodError naming what went wrong."""
    from fastfood.data.archive import unpack
    from fastfood.data.download import check_md5, check_url, download

    check_url(url)
    check_md5(md5)
    target = Path(os.path.expanduser(os.fspath(out))) if out else default_dir()
    target = target.absolute()
    if incomplete(target) is None:
        return target, False
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise FastfoodError(f"--out {target} exists and is not a Food-101 tree "
                            f"({incomplete(target)}); remove it or choose another --out")
    _make_parent(target.parent)
    archive = target.with_name(target.name + ".tar.gz")
    with _lock(target):
        download(url, archive, md5, progress, **download_kw)  # type: ignore[arg-type]
        _check_room(archive, target.parent)
        tmp = target.with_name(f".{target.name}.unpack-{os.getpid()}")
        _remove_stale(target)
        try:
            tmp.mkdir()
            progress.note(f"unpacking {archive.name} ({size(archive.stat().st_size)})")
            unpack(archive, tmp)
            tree = _tree_in(tmp)
            why = incomplete(tree)
            if why:
                raise FastfoodError(f"{archive} holds no Food-101 tree ({why})")
            if target.is_dir():
                target.rmdir()  # empty, checked above
            os.rename(tree, target)
        except OSError as err:
            raise FastfoodError(f"cannot unpack into {target}: {err.strerror or err}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        archive.unlink()
    return target, True


def _make_parent(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FastfoodError(f"cannot create {folder}: {err.strerror or err}") from None


@contextlib.contextmanager
def _lock(target: Path) -> Iterator[None]:
    """One download into `target` at a time: a second would write the same .part."""
    path = target.with_name(f".{target.name}.lock")
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FastfoodError(f"another `fastfood data` is downloading into {target} "
                                f"(it holds {path})") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale(target: Path) -> None:
    """Unpack folders left by a run that was killed (we hold the lock: none is live)."""
    for old in target.parent.glob(f".{target.name}.unpack-*"):
        shutil.rmtree(old, ignore_errors=True)


def _check_room(archive: Path, folder: Path) -> None:
    """JPEGs do not compress: the tree needs about as much room as the archive."""
    need, free = archive.stat().st_size, shutil.disk_usage(folder).free
    if need > free:
        raise FastfoodError(f"not enough space in {folder} to unpack {archive.name}: needs "
                            f"about {size(need)}, {size(free)} is free (the archive stays)")


def _tree_in(folder: Path) -> Path:
    """The tree's root inside the unpack folder: the folder itself when it holds meta/,
    else its only sub-folder (the official archive holds food-101/)."""
    if (folder / "meta").is_dir():
        return folder
    subdirs = [p for p in folder.iterdir() if p.is_dir()]
    return subdirs[0] if len(subdirs) == 1 else folder
