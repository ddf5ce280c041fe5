"""Unpack a tar archive without letting any member land outside the target folder.

Every member is checked by name and kind before it is written, in one streaming pass
(a 5 GB .tar.gz is read once, not once to list and once to extract): an absolute path,
a `..` component, a symlink or hard link (refused altogether: a dataset needs none, and
a link is how a later member escapes), a device or FIFO is refused with the member's name.
Python's own `filter="data"` runs as well (the same rules and more, e.g. no setuid bits),
as a second line.

The caller unpacks into an empty temporary folder and renames it into place only when
this returns, so a refused or broken archive leaves nothing half-made.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath

from fastfood.errors import FastfoodError

# Python 3.10.12+ / 3.11.4+ have the extraction filters; on older patch releases the
# checks in member_problem are the only line.
_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
_FilterError = getattr(tarfile, "FilterError", ())


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why `member` may not be unpacked (None when it is a plain file or folder inside)."""
    name = member.name
    if not name or "\0" in name:
        return "has an empty or NUL-containing name"
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute():
        return "has an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "has '..' in its path (it would land outside the target folder)"
    if member.issym():
        return f"is a symlink (to {member.linkname!r}); links are refused"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r}); links are refused"
    if member.ischr() or member.isblk():
        return "is a device file"
    if member.isfifo():
        return "is a FIFO"
    if not (member.isfile() or member.isdir()):
        return "is not a regular file or folder"
    return None


def unpack(archive: str | os.PathLike[str], into: str | os.PathLike[str]) -> int:
    """Extract `archive` (tar, optionally gz/bz2/xz) into the folder `into`; returns the
    number of files written. FastfoodError naming the archive and member on a bad member
    or an unreadable archive; what was written so far is the caller's to delete."""
    archive, into = Path(archive), Path(into)
    files = 0
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                why = member_problem(member)
                if why:
                    raise FastfoodError(f"{archive}: member {member.name!r} {why}; "
                                        "refusing to unpack it")
                if member.isdir():  # made here so a read-only mode cannot block its files
                    (into / member.name).mkdir(parents=True, exist_ok=True)
                    continue
                tar.extract(member, into, set_attrs=False, **_FILTER)
                files += 1
    except _FilterError as err:  # the data filter found what the checks above missed
        name = getattr(getattr(err, "tarinfo", None), "name", "?")
        raise FastfoodError(f"{archive}: member {name!r} refused ({err})") from None
    except (tarfile.ReadError, tarfile.CompressionError, EOFError) as err:
        raise FastfoodError(f"{archive}: not a readable tar archive ({err})") from None
    except OSError as err:
        raise FastfoodError(f"cannot unpack {archive} into {into}: "
                            f"{err.strerror or err}") from None
    return files
