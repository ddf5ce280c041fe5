"""Shared fixtures: the built-in sample and a run trained on it (each made once per
session), factories for tiny Food-101 and class-folder trees, and the `dali` marker, which
skips a test where DALI's TensorFlow plugin does not import.

Helpers that are not fixtures live in tests/support/.

Tree images are 8x8 solid-colour JPEGs, one colour per class (CLASS_COLORS), so a loader
test can check that labels stay aligned with pixels.
"""

from __future__ import annotations

import atexit
import functools
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import pytest
from PIL import Image

# The per-file facts cache (fastfood.data.filecache) of this test session: never the user's.
if "FASTFOOD_FILE_CACHE" not in os.environ:
    os.environ["FASTFOOD_FILE_CACHE"] = tempfile.mkdtemp(prefix="fastfood-facts-")
    atexit.register(shutil.rmtree, os.environ["FASTFOOD_FILE_CACHE"], True)

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


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    """A run directory trained by fastfood.train for 30 steps on the sample: width 0.125 at
    64 px, tf.data, fp32. Made once per session; do not modify it."""
    from fastfood.config import DataConfig, LoaderConfig, ModelConfig, RunConfig, TrainConfig
    from fastfood.train import train_and_evaluate

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    config = RunConfig(
        data=DataConfig(root=str(sample_dir)),
        loader=LoaderConfig(kind="tfdata", batch_size=32),
        model=ModelConfig(image_size=64, width=0.125, weights="none"),
        train=TrainConfig(max_steps=30, lr=0.01, precision="fp32", xla="off",
                          run_dir=str(run_dir), save_every=1000),
    )
    summary = train_and_evaluate(config, stream=io.StringIO())
    assert summary.get("exit_code", 0) == 0, summary
    return run_dir


@functools.cache
def _dali_available() -> bool:
    from fastfood.loaders import dali_available

    return dali_available()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `dali` need DALI's TensorFlow plugin; skip them where it does not import."""
    if item.get_closest_marker("dali") is not None and not _dali_available():
        pytest.skip("needs DALI: its TensorFlow plugin (nvidia.dali.plugin.tf) does not import")


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
