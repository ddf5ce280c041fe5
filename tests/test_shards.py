"""Packed shards: what `fastfood pack` writes, and that both loaders read from it the
pixels and labels they read from the files, in an order that resumes exactly."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support.images import body_corrupt_jpeg
from fastfood import data, loaders
from fastfood.data import shards
from fastfood.errors import FastfoodError
from fastfood.loaders import order

SIZE = 16


def _noise_tree(root: Path, per_class: int = 10) -> Path:
    """Three classes of small noise JPEGs: every image has its own pixels."""
    for c, name in enumerate("abc"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            rng = np.random.default_rng([c, i])
            pixels = rng.integers(0, 256, (20 + i % 3, 28, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:02d}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """(class folders, their shards, the manifest): ~1.4 KB images, 4 KB shards."""
    from fastfood.loaders.pack import pack

    tmp = tmp_path_factory.mktemp("shards")
    root = _noise_tree(tmp / "data")
    (root / "a" / "empty.jpg").write_bytes(b"")
    (root / "b" / "corrupt.jpg").write_bytes(body_corrupt_jpeg())
    spec = data.load(root, 0.2, 0, 0.2, group_duplicates=False)
    out = tmp / "packed"
    manifest = pack(spec, out, shard_mb=0.004, say=lambda line: None)
    return root, out, manifest


def _by_name(root: Path, spec_split, manifest_names: list[str]) -> list[int]:
    """For each packed record (in packed order), the index of its file in the files' split."""
    files = [str(Path(f).relative_to(root)) for f in spec_split.files]
    return [files.index(n) for n in manifest_names]


def _eval(kind: str, split) -> tuple[np.ndarray, np.ndarray]:
    ds = loaders.build(kind, split.files, split.labels, training=False, batch_size=4,
                       image_size=SIZE)
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    labels = np.concatenate(labels)
    keep = labels != loaders.PAD_LABEL
    return np.concatenate(images)[keep], labels[keep]


def test_pack_writes_shards_indexes_and_leaves_out_odd_files(packed) -> None:
    root, out, manifest = packed
    assert manifest["format"] == shards.FORMAT and manifest["classes"] == ["a", "b", "c"]
    skipped = {Path(p).name: r for name in manifest["splits"]
               for p, r in manifest["splits"][name]["skipped"]}
    assert set(skipped) <= {"empty.jpg", "corrupt.jpg"} and skipped  # found where split
    assert all("empty" in r or "decode" in r.lower() or "corrupt" in r.lower()
               for r in skipped.values())
    for name, split in manifest["splits"].items():
        assert len(split["shards"]) > 1  # 4 KB shards of ~1.4 KB images
        assert sum(s["count"] for s in split["shards"]) == len(split["labels"])
        assert not any(Path(n).name in skipped for n in split["names"])
        for entry in split["shards"]:
            raw = (out / entry["file"]).read_bytes()
            at, expected = 0, []
            while at < len(raw):  # DALI's tfrecord2idx: offset and framed size per record
                length = struct.unpack("<q", raw[at:at + 8])[0]
                expected.append(f"{at} {length + 16}")
                at += length + 16
            assert (out / entry["index"]).read_text().split("\n")[:-1] == expected
    spec = data.load(out)
    assert spec.layout == "shards" and len(spec.test) == len(manifest["splits"]["test"]["labels"])


def test_pack_refuses_a_folder_in_use_and_a_packed_dataset(packed, tmp_path: Path) -> None:
    from fastfood.loaders.pack import pack

    root, out, _ = packed
    with pytest.raises(FastfoodError, match="not an empty folder"):
        pack(data.load(root, 0.2, 0, group_duplicates=False), out, say=lambda line: None)
    with pytest.raises(FastfoodError, match="packed already"):
        pack(data.load(out), tmp_path / "again", say=lambda line: None)
    assert not list(tmp_path.glob(".again.packing-*"))


@pytest.mark.parametrize("kind", ["tfdata", pytest.param("dali", marks=pytest.mark.dali)])
def test_same_pixels_and_labels_from_shards_as_from_files(packed, kind: str) -> None:
    root, out, manifest = packed
    files_spec = data.load(root, 0.2, 0, 0.2, group_duplicates=False)
    shard_spec = data.load(out)
    for split in ("val", "test"):
        names = manifest["splits"][split]["names"]
        order_ = _by_name(root, getattr(files_spec, split), names)
        file_images, file_labels = _eval(kind, getattr(files_spec, split))
        shard_images, shard_labels = _eval(kind, getattr(shard_spec, split))
        assert len(shard_labels) == len(names) > 0
        np.testing.assert_array_equal(shard_labels, file_labels[order_])
        np.testing.assert_array_equal(shard_images, file_images[order_])


def test_epoch_order_shuffles_shards_and_records_from_seed_and_epoch() -> None:
    groups = (5, 3, 4)
    starts = (0, 5, 8)
    first = order.epoch_order(12, 7, 0, groups)
    assert sorted(first.tolist()) == list(range(12))
    assert np.array_equal(first, order.epoch_order(12, 7, 0, groups))
    assert not np.array_equal(first, order.epoch_order(12, 7, 1, groups))
    shard_of = np.searchsorted(starts, first, side="right") - 1
    assert (np.diff(shard_of) != 0).sum() == len(groups) - 1  # one shard at a time
    with pytest.raises(ValueError):
        order.epoch_order(12, 7, 0, (5, 3))


@pytest.mark.parametrize("kind", ["tfdata", pytest.param("dali", marks=pytest.mark.dali)])
def test_resume_from_shards_reads_what_the_uninterrupted_run_reads(packed, kind: str) -> None:
    _, out, _ = packed
    spec = data.load(out)
    kw = dict(training=True, batch_size=4, image_size=SIZE, seed=3)
    steps = loaders.steps_per_epoch(len(spec.train), 4)

    def batches(**more):
        ds = loaders.build(kind, spec.train.files, spec.train.labels, **kw, **more)
        return [(x.numpy(), y.numpy()) for x, y in ds]

    whole = batches(epoch=0, epochs=2)
    resumed = batches(epoch=1, epochs=1, skip_batches=1)
    assert len(whole) == 2 * steps and len(resumed) == steps - 1
    for (wx, wy), (rx, ry) in zip(whole[steps + 1:], resumed):
        np.testing.assert_array_equal(wy, ry)
        if kind == "tfdata":  # crops keyed by position; DALI's by (seed, epoch, skip)
            np.testing.assert_array_equal(wx, rx)
    picked = order.run_indices(len(spec.train), seed=3, epoch=0, epochs=1, batch_size=4,
                               groups=shards.group_sizes(spec.train.files))
    labels = np.concatenate([y for _, y in whole[:steps]])
    np.testing.assert_array_equal(labels, np.asarray(spec.train.labels)[picked])


def test_train_split_is_packed_in_a_shuffled_order(packed) -> None:
    """Shards hold a mix of classes: the epoch order only shuffles across shards."""
    _, _, manifest = packed
    labels = manifest["splits"]["train"]["labels"]
    assert labels != sorted(labels)
    first = manifest["splits"]["train"]["shards"][0]["count"]
    assert len(set(labels[:first])) > 1 or first == 1


def test_a_missing_shard_is_named(packed, tmp_path: Path) -> None:
    _, out, manifest = packed
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / shards.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(FastfoodError, match="shard .* or its index is missing"):
        data.load(broken)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["tfdata", pytest.param("dali", marks=pytest.mark.dali)])
def test_train_from_shards_validates_and_calibrates(packed, tmp_path: Path, kind: str) -> None:
    from fastfood.config import DataConfig, LoaderConfig, ModelConfig, RunConfig, TrainConfig
    from fastfood.train import train_and_evaluate

    _, out, manifest = packed
    run = tmp_path / "run"
    config = RunConfig(data=DataConfig(root=str(out)),
                       loader=LoaderConfig(kind=kind, batch_size=4),
                       model=ModelConfig(width=0.125, image_size=32, weights="none"),
                       train=TrainConfig(epochs=1, max_steps=3, lr=0.01, precision="fp32",
                                         run_dir=str(run)))
    summary = train_and_evaluate(config, fancy=False)
    assert summary["exit_code"] == 0 and summary["step"] == 3 and summary["loader"] == kind
    assert summary["val"]["count"] == len(manifest["splits"]["val"]["labels"])

    from fastfood.calibrate import fit_temperature

    calibration = fit_temperature(run, loader=kind, write=False)  # the val records, read back
    assert calibration.n == len(manifest["splits"]["val"]["labels"])


def test_the_loops_feed_resumes_from_shards_exactly(packed) -> None:
    """The training loop's own input (TrainFeed at a Position, as a resumed run asks for
    it) yields, from shards, the batches the uninterrupted run reads there."""
    from fastfood.config import LoaderConfig, RunConfig
    from fastfood.loaders.request import LoaderRequest
    from fastfood.train import distribute, setup
    from fastfood.train.feeds import TrainFeed
    from fastfood.train.position import Position

    _, out, _ = packed
    spec = data.load(out)
    strategy = distribute.make_strategy()
    plan = setup.plan(len(spec.train), RunConfig(loader=LoaderConfig(batch_size=4)), strategy)
    spe = plan.steps_per_epoch
    request = LoaderRequest(kind="tfdata", image_size=SIZE, seed=5, crop="inception")

    def feed() -> TrainFeed:
        return TrainFeed(strategy, plan, spec.train.files, spec.train.labels, request)

    whole = feed()
    it = whole.at(Position())
    [next(it) for _ in range(spe)]
    it = whole.at(Position(spe, 1, 0))
    second_epoch = [next(it) for _ in range(spe)]
    it = feed().at(Position(spe + 1, 1, 1))  # a run stopped after epoch 2's first batch
    for (wx, wy), (rx, ry) in zip(second_epoch[1:], [next(it) for _ in range(spe - 1)]):
        np.testing.assert_array_equal(wy.numpy(), ry.numpy())
        np.testing.assert_array_equal(wx.numpy(), rx.numpy())
