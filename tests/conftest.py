"""Shared fixtures: the built-in sample (written once per session) and factories for
tiny Food-101 and class-folder trees.

Tree images are 8x8 solid-colour JPEGs, one colour per class (CLASS_COLORS), so a loader
test can check that labels stay aligned with pixels.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import pytest
from PIL import Image

CLASS_COLORS = [
    (230, 30, 30), (30, 200, 30), (30, 30, 230), (230, 230, 30),
    (230, 30, 230), (30, 230, 230), (140, 70, 0), (250, 250, 250),
]


def jpeg_bytes(color: tuple[int, int, int] = (200, 50, 50), size: tuple[int, int] = (8, 8),
               fmt: str = "JPEG") -> bytes:
    """A real, decodable image of one colour (size is width, height)."""
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def write_food101(root: Path, classes: dict[str, tuple[int, int]],
                  labels: list[str] | None = None, size: tuple[int, int] = (8, 8)) -> Path:
    """Food-101 tree: {class: (n_train, n_test)} in the given (classes.txt) order."""
    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    train, test = [], []
    for ci, (name, (n_train, n_test)) in enumerate(classes.items()):
        folder = root / "images" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_train + n_test):
            (folder / f"{i:03d}.jpg").write_bytes(
                jpeg_bytes(CLASS_COLORS[ci % len(CLASS_COLORS)], size))
            (train if i < n_train else test).append(f"{name}/{i:03d}")
    (meta / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    (meta / "train.txt").write_text("".join(f"{line}\n" for line in train))
    (meta / "test.txt").write_text("".join(f"{line}\n" for line in test))
    if labels is not None:
        (meta / "labels.txt").write_text("".join(f"{x}\n" for x in labels))
    return root


def write_folders(root: Path, counts: dict[str, int], ext: str = ".jpg",
                  size: tuple[int, int] = (8, 8)) -> Path:
    """Class-folder tree: root/<class>/<i><ext>, classes coloured in sorted order."""
    for ci, name in enumerate(sorted(counts)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        fmt = "PNG" if ext.lower() == ".png" else "JPEG"
        for i in range(counts[name]):
            (folder / f"img{i:03d}{ext}").write_bytes(
                jpeg_bytes(CLASS_COLORS[ci % len(CLASS_COLORS)], size, fmt))
    return root


def write_presplit(root: Path, train: dict[str, int], val: dict[str, int], **kw) -> Path:
    """root/train/<class> and root/val/<class>."""
    write_folders(root / "train", train, **kw)
    write_folders(root / "val", val, **kw)
    return root


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in sample (seed 0), generated once per test session. Do not modify it."""
    from fastfood.data.sample import write_sample

    return write_sample(tmp_path_factory.mktemp("sample") / "sample", seed=0)


def _factory(tmp_path: Path, writer: Callable[..., Path], stem: str) -> Callable[..., Path]:
    made = iter(range(1000))

    def make(*args, **kwargs) -> Path:
        return writer(tmp_path / f"{stem}{next(made)}", *args, **kwargs)

    return make


@pytest.fixture
def make_food101(tmp_path: Path) -> Callable[..., Path]:
    """make_food101({'a': (n_train, n_test), ...}, labels=None, size=(8, 8)) -> root."""
    return _factory(tmp_path, write_food101, "food")


@pytest.fixture
def make_folders(tmp_path: Path) -> Callable[..., Path]:
    """make_folders({'a': n, ...}, ext='.jpg', size=(8, 8)) -> root."""
    return _factory(tmp_path, write_folders, "folders")


@pytest.fixture
def make_presplit(tmp_path: Path) -> Callable[..., Path]:
    """make_presplit({'a': n_train, ...}, {'a': n_val, ...}) -> root."""
    return _factory(tmp_path, write_presplit, "presplit")
