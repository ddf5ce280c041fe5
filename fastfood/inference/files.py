"""Turn the paths a user typed into the list of image files to classify.

Folders are searched recursively for JPEG/PNG names (sorted, so output order is stable); a file
named explicitly is taken whatever its name, so a JPEG saved as `.jpeg2` or a text file called
`x.jpg` is tried and, if it is not an image, reported by name rather than silently skipped.
No TensorFlow here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from fastfood.errors import FastfoodError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})


def is_image_name(name: str) -> bool:
    """True for the file names a folder search picks up (case-insensitive suffix)."""
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def collect_images(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The images under `paths`, in the order given (folders sorted; hidden files and
    folders, such as macOS `._x.jpg` forks, skipped), spelled as the user spelled them.

    Raises FastfoodError naming the first path that does not exist. A file reached twice
    (named and inside a named folder) is listed once, at its first position.
    """
    out: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            out.append(path)

    for raw in paths:
        path = os.path.expanduser(os.fspath(raw))
        if not os.path.exists(path):
            raise FastfoodError(f"{raw}: no such file or folder")
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if is_image_name(name) and not name.startswith("."):
                        add(os.path.join(root, name))
        else:
            add(path)
    return out
