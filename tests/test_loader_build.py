"""``fastfood.loaders.build``: the contract every loader kind meets, and the shared epoch logic.

Labels are set to each file's index, so the label sequence a loader yields IS the order in
which it read the files; the 'colour' set gives every file a flat colour of its own, so a
test can check that labels stay with their pixels through shuffling, crops and flips.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import fastfood.loaders as loaders
from fastfood.errors import FastfoodError
from fastfood.loaders import order, tfdata

from support.images import write_photo_set, write_tiny_set


_DALI = pytest.param("dali", marks=pytest.mark.dali)
KINDS = ["tfdata", _DALI, "synthetic"]
REAL = ["tfdata", _DALI]
S = 24


def _colour(i: int) -> tuple[int, int, int]:
    return (37 * i % 256, 91 * i % 256 if i % 2 else 255 - 53 * i % 256, (17 * i + 128) % 256)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> list[str]:
    return write_tiny_set(tmp_path_factory.mktemp("tiny"), 29)


@pytest.fixture(scope="module")
def coloured(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("colour")
    paths = []
    for i in range(12):
        p = root / f"c{i:02d}.jpg"
        Image.new("RGB", (20 + 3 * i, 30 - i), _colour(i)).save(p, quality=95)
        paths.append(str(p))
    return paths


def _collect(ds: tf.data.Dataset) -> tuple[list[np.ndarray], list[np.ndarray]]:
    images, labels = [], []
    for x, y in ds:
        images.append(x.numpy())
        labels.append(y.numpy())
    return images, labels


def _tfdata(files: list[str], labels: list[int], *, deterministic: bool | None = None,
            **request) -> tf.data.Dataset:
    """The tf.data loader alone (no preflight), for a request given as keywords."""
    return tfdata.build(files, labels, loaders.LoaderRequest(kind="tfdata", **request),
                        deterministic=deterministic)


def _labels(ds: tf.data.Dataset) -> list[int]:
    """Every real sample's label in order (DALI's eval padding left out)."""
    return [int(v) for _, y in ds for v in y.numpy() if v != loaders.PAD_LABEL]


@pytest.mark.parametrize("kind", KINDS)
def test_training_contract(kind: str, tiny: list[str]) -> None:
    ds = loaders.build(kind, tiny, list(range(len(tiny))), training=True, batch_size=4, image_size=S)
    assert ds.element_spec[0] == tf.TensorSpec([4, S, S, 3], tf.uint8)
    assert ds.element_spec[1] == tf.TensorSpec([4], tf.int32)
    images, labels = _collect(ds)
    assert len(images) == loaders.steps_per_epoch(len(tiny), 4) == 7
    assert all(x.shape == (4, S, S, 3) and x.dtype == np.uint8 for x in images)
    assert all(y.shape == (4,) and y.dtype == np.int32 for y in labels)
    assert np.concatenate(images).std() > 10  # real pixels, not zeros
    if kind != "synthetic":
        seen = np.concatenate(labels)
        assert len(set(seen.tolist())) == 28  # 28 distinct files: one epoch, no repeats


@pytest.mark.parametrize("kind", KINDS)
def test_eval_contract(kind: str, tiny: list[str]) -> None:
    files = tiny[:11]
    ds = loaders.build(kind, files, list(range(11)), training=False, batch_size=4, image_size=S)
    images, labels = _collect(ds)
    if kind == "dali":
        # Fixed-size batches: the last one is filled up with PAD_LABEL samples.
        assert ds.element_spec[0] == tf.TensorSpec([4, S, S, 3], tf.uint8)
        assert [x.shape[0] for x in images] == [4, 4, 4]
        flat = np.concatenate(labels).tolist()
        assert flat == list(range(11)) + [loaders.PAD_LABEL]
    else:
        assert ds.element_spec[0] == tf.TensorSpec([None, S, S, 3], tf.uint8)
        assert ds.element_spec[1] == tf.TensorSpec([None], tf.int32)
        assert [x.shape[0] for x in images] == [4, 4, 3]
        if kind != "synthetic":
            assert np.concatenate(labels).tolist() == list(range(11))  # input order, each once
    # A multiple of the batch size: no empty trailing batch.
    ds = loaders.build(kind, tiny[:8], list(range(8)), training=False, batch_size=4, image_size=S)
    assert [x.shape[0] for x, _ in ds] == [4, 4]


@pytest.mark.parametrize("kind", REAL)
def test_labels_stay_with_their_pixels(kind: str, coloured: list[str]) -> None:
    colours = np.array([_colour(i) for i in range(len(coloured))], dtype=float)
    for training in (True, False):
        ds = loaders.build(kind, coloured, list(range(len(coloured))), training=training,
                           batch_size=3, image_size=S, epoch=1)
        n = 0
        for x, y in ds:
            keep = y.numpy() != loaders.PAD_LABEL
            means = x.numpy()[keep].reshape(int(keep.sum()), -1, 3).mean(axis=1)
            nearest = np.abs(means[:, None, :] - colours[None]).sum(-1).argmin(1)
            assert nearest.tolist() == y.numpy()[keep].tolist()
            n += int(keep.sum())
        assert n == len(coloured)


@pytest.mark.parametrize("kind", REAL)
def test_training_order_is_the_shared_epoch_order(kind: str, tiny: list[str]) -> None:
    n = len(tiny)
    expected = order.epoch_indices(n, seed=5, epoch=3, batch_size=4)[0].tolist()
    if kind == "dali":
        ds = loaders.build("dali", tiny, list(range(n)), training=True, batch_size=4,
                           image_size=S, seed=5, epoch=3)
    else:  # the default tf.data map may reorder within its window; ask for strict order
        ds = tfdata.build(tiny, list(range(n)), loaders.LoaderRequest(
            kind="tfdata", training=True, batch_size=4, image_size=S, seed=5, epoch=3),
            deterministic=True)
    assert _labels(ds) == expected
    other = order.epoch_indices(n, seed=5, epoch=4, batch_size=4)[0].tolist()
    assert other != expected


@pytest.mark.dali
def test_default_tfdata_training_reads_the_same_files_as_dali(tiny: list[str]) -> None:
    kw = dict(training=True, batch_size=4, image_size=S, seed=2, epoch=1)
    a = _labels(loaders.build("tfdata", tiny, list(range(len(tiny))), **kw))
    b = _labels(loaders.build("dali", tiny, list(range(len(tiny))), **kw))
    assert sorted(a) == sorted(b) and len(set(a)) == len(a) == 28


@pytest.mark.parametrize("kind", REAL)
def test_shards_are_disjoint_complete_and_in_step(kind: str, tiny: list[str]) -> None:
    n, count = len(tiny), 3
    perm = order.epoch_order(n, 0, 0)
    seen = []
    for i in range(count):
        labels = _labels(loaders.build(kind, tiny, list(range(n)), training=True, batch_size=3,
                                       image_size=S, shard=(i, count)))
        assert len(labels) == loaders.steps_per_epoch(n, 3, (i, count)) * 3 == 9
        start, _ = order.shard_bounds(n, (i, count))
        assert set(labels) == set(perm[start:start + 9].tolist())
        seen.append(set(labels))
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert len(set.union(*seen)) == 27  # 29 files: one left over per short shard


def test_skip_batches_resumes_exactly_tfdata(tiny: list[str]) -> None:
    kw = dict(training=True, batch_size=4, image_size=S, seed=1, epoch=2, deterministic=True)
    full_x, full_y = _collect(_tfdata(tiny, list(range(len(tiny))), **kw))
    rest_x, rest_y = _collect(_tfdata(tiny, list(range(len(tiny))), skip_batches=3, **kw))
    assert len(rest_x) == len(full_x) - 3
    # Same files AND the same crops and flips: the randomness is keyed by epoch position.
    for a, b in zip(full_x[3:], rest_x):
        assert np.array_equal(a, b)
    for a, b in zip(full_y[3:], rest_y):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_skip_batches_resumes_at_the_right_place(kind: str, tiny: list[str]) -> None:
    kw = dict(training=True, batch_size=4, image_size=S, seed=1, epoch=2)
    full = list(loaders.build(kind, tiny, list(range(len(tiny))), **kw))
    rest = list(loaders.build(kind, tiny, list(range(len(tiny))), skip_batches=5, **kw))
    assert len(rest) == len(full) - 5 == 2
    if kind == "dali":
        assert [y.numpy().tolist() for _, y in rest] == [y.numpy().tolist() for _, y in full[5:]]
    done = list(loaders.build(kind, tiny, list(range(len(tiny))), skip_batches=7, **kw))
    assert done == []


def test_tfdata_epoch_is_reproducible_and_epochs_differ(tiny: list[str]) -> None:
    kw = dict(training=True, batch_size=4, image_size=S, seed=9, deterministic=True)
    a, _ = _collect(_tfdata(tiny, list(range(len(tiny))), epoch=0, **kw))
    b, _ = _collect(_tfdata(tiny, list(range(len(tiny))), epoch=0, **kw))
    c, _ = _collect(_tfdata(tiny, list(range(len(tiny))), epoch=1, **kw))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("kind", REAL)
def test_bad_files_are_skipped_reported_and_logged(kind: str, tmp_path: Path, caplog) -> None:
    good = write_tiny_set(tmp_path / "good", 6)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "note.jpg").write_text("not an image")
    files = [good[0], str(tmp_path / "empty.jpg"), *good[1:4], str(tmp_path / "note.jpg"), *good[4:]]
    labels = list(range(len(files)))
    report: list[tuple[str, str]] = []
    with caplog.at_level(logging.WARNING, logger="fastfood"):
        ds = loaders.build(kind, files, labels, training=False, batch_size=4, image_size=S,
                           report=report)
    assert [p for p, _ in report] == [str(tmp_path / "empty.jpg"), str(tmp_path / "note.jpg")]
    assert _labels(ds) == [0, 2, 3, 4, 6, 7]  # the rest, in order, labels still aligned
    assert "skipping 2 of 8" in caplog.text and "empty.jpg" in caplog.text and "note.jpg" in caplog.text
    # Training skips them too (the warning is given once per file list; the report each time).
    report2: list[tuple[str, str]] = []
    ds = loaders.build(kind, files, labels, training=True, batch_size=2, image_size=S, report=report2)
    assert sorted(_labels(ds)) == [0, 2, 3, 4, 6, 7]
    assert report2 == report


def test_tfdata_training_skips_a_file_that_fails_decode_after_the_preflight(tmp_path: Path) -> None:
    # The preflight is bypassed (tfdata.build directly) to exercise the ignore_errors backstop.
    files = write_tiny_set(tmp_path, 8)
    data = bytearray(Path(files[3]).read_bytes())
    del data[2:4]  # drop the APP0 marker bytes: the header no longer parses
    Path(files[3]).write_bytes(bytes(data))
    labels = _labels(_tfdata(files, list(range(8)), training=True, batch_size=1, image_size=S))
    assert sorted(labels) == [0, 1, 2, 4, 5, 6, 7]


def test_user_errors_are_fastfood_errors(tiny: list[str], tmp_path: Path) -> None:
    labels = list(range(len(tiny)))
    with pytest.raises(FastfoodError, match="no full batch"):
        loaders.build("tfdata", tiny, labels, training=True, batch_size=64, image_size=S)
    with pytest.raises(FastfoodError, match="--loader"):
        loaders.build("pytorch", tiny, labels, training=True, batch_size=4, image_size=S)
    with pytest.raises(FastfoodError, match="--crop"):
        loaders.build("tfdata", tiny, labels, training=True, batch_size=4, image_size=S, crop="random")
    with pytest.raises(FastfoodError, match="empty file list"):
        loaders.build("tfdata", [], [], training=False, batch_size=4, image_size=S)
    (tmp_path / "a.jpg").write_bytes(b"")
    with pytest.raises(FastfoodError, match="a.jpg: empty file"):
        loaders.build("tfdata", [str(tmp_path / "a.jpg")], [0], training=False, batch_size=4, image_size=S)
    with pytest.raises(ValueError):
        loaders.build("tfdata", tiny, labels[:-1], training=False, batch_size=4, image_size=S)


def test_auto_picks_dali_when_the_plugin_imports() -> None:
    expected = "dali" if loaders.dali_available() else "tfdata"
    assert loaders.resolve_kind("auto") == expected
    assert loaders.resolve_kind("tfdata") == "tfdata"
    assert loaders.resolve_kind("synthetic") == "synthetic"


@pytest.mark.parametrize("kind", REAL)
def test_square_crop_and_mixed_formats(kind: str, tmp_path: Path) -> None:
    files = write_photo_set(tmp_path)  # includes gray, CMYK and PNG, sizes below and above S
    for crop in ("square", "inception"):
        ds = loaders.build(kind, files, list(range(len(files))), training=True, batch_size=5,
                           image_size=S, crop=crop)
        images, labels = _collect(ds)
        assert len(images) == len(files) // 5
        assert all(x.shape == (5, S, S, 3) for x in images)


def test_synthetic_is_one_fixed_batch_with_cycling_labels(tiny: list[str]) -> None:
    ds = loaders.build("synthetic", tiny, [i % 3 for i in range(len(tiny))], training=True,
                       batch_size=4, image_size=S, seed=3)
    images, labels = _collect(ds)
    assert all(np.array_equal(x, images[0]) for x in images)
    assert labels[0].tolist() == [0, 1, 2, 0]
    other = loaders.build("synthetic", tiny, [0] * len(tiny), training=True, batch_size=4,
                          image_size=S, seed=4)
    assert not np.array_equal(next(iter(other))[0].numpy(), images[0])
