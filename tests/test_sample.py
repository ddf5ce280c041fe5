"""The built-in sample: layout, real decodable JPEGs of varied sizes, byte-for-byte
determinism, safe writing (refusal, --force, atomic), the cache copy and the CLI."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fastfood.data as data
from fastfood.cli import main
from fastfood.data import sample
from fastfood.errors import FastfoodError

REPO = Path(__file__).resolve().parents[1]


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def small(monkeypatch):
    """Shrink the sample to 2 + 1 images per class for tests of the writing logic."""
    monkeypatch.setattr(sample, "TRAIN_PER_CLASS", 2)
    monkeypatch.setattr(sample, "TEST_PER_CLASS", 1)


def test_sample_layout(sample_dir):
    spec = data.load(sample_dir)
    assert spec.layout == "food101"
    assert len(spec.classes) == 8
    assert spec.classes == tuple(c[0] for c in sample.CLASSES)
    assert spec.display_names == tuple(c[1] for c in sample.CLASSES)
    # train.txt's 60 per class: 54 train + 6 val (--val-fraction 0.1); test.txt's 15 test
    assert Counter(spec.train.labels) == {i: 54 for i in range(8)}
    assert Counter(spec.val.labels) == {i: 6 for i in range(8)}
    assert Counter(spec.test.labels) == {i: 15 for i in range(8)}
    assert (sample_dir / "meta" / "labels.txt").is_file()
    assert sample.sample_info(sample_dir) == {
        "format": "fastfood-sample", "version": 1, "seed": 0, "classes": 8,
        "train": 480, "test": 120}


def test_sample_images_are_real_jpegs_of_varied_sizes(sample_dir):
    spec = data.load(sample_dir)
    sides, aspects, means = [], [], {}
    for f, label in zip(spec.train.files + spec.val.files + spec.test.files,
                        spec.train.labels + spec.val.labels + spec.test.labels):
        with Image.open(f) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            pixels = np.asarray(im)  # decodes fully
        sides += im.size
        aspects.append(im.size[0] / im.size[1])
        means.setdefault(label, []).append(pixels.reshape(-1, 3).mean(0))
        assert pixels.std() > 5  # a pattern plus noise, not a flat colour
    assert 48 <= min(sides) < 64 and 224 < max(sides) <= 400
    assert sum(s > 224 for s in sides) > 50 and sum(s < 64 for s in sides) > 20
    assert min(aspects) < 0.5 and max(aspects) > 2
    # classes differ in colour: their mean colours are far apart
    centres = np.array([np.mean(means[c], 0) for c in sorted(means)])
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(8) * 1e9
    assert gaps.min() > 15


def test_sample_is_deterministic(sample_dir, tmp_path):
    again = sample.write_sample(tmp_path / "again", seed=0)
    assert tree_digest(again) == tree_digest(sample_dir)


def test_seed_changes_the_images():
    a = sample.render(3, np.random.default_rng([1, 0, 3, 0]))
    b = sample.render(3, np.random.default_rng([1, 1, 3, 0]))
    assert a.shape != b.shape or not np.array_equal(a, b)
    assert np.array_equal(a, sample.render(3, np.random.default_rng([1, 0, 3, 0])))


def test_existing_sample_is_left_alone(sample_dir):
    before = (sample_dir / sample.MARKER).stat().st_mtime_ns
    assert sample.write_sample(sample_dir, seed=0) == sample_dir
    assert (sample_dir / sample.MARKER).stat().st_mtime_ns == before


def test_non_empty_folder_is_refused_without_force(tmp_path, small):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.txt").write_text("precious")
    with pytest.raises(FastfoodError, match="not empty.*--force"):
        sample.write_sample(target)
    assert sorted(p.name for p in target.iterdir()) == ["thesis.txt"]
    sample.write_sample(target, force=True)
    assert (target / "thesis.txt").read_text() == "precious"
    assert len(data.load(target, val_fraction=0.0).train) == 16  # all of train.txt
    with pytest.raises(FastfoodError, match="holds the sample with seed 0"):
        sample.write_sample(target, seed=1)


def test_crash_leaves_no_partial_sample(tmp_path, small, monkeypatch):
    def broken_jpeg(image, rng):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sample, "_jpeg", broken_jpeg)
    with pytest.raises(FastfoodError, match="No space left"):
        sample.write_sample(tmp_path / "s")
    assert list(tmp_path.iterdir()) == []  # neither the target nor the hidden temp folder


def test_target_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(FastfoodError, match="is a file"):
        sample.write_sample(f)
    with pytest.raises(FastfoodError, match=f"{f} is a file"):
        sample.write_sample(f / "below")


def test_default_sample_is_made_once_in_the_cache(tmp_path, monkeypatch, small):
    monkeypatch.setenv("FASTFOOD_CACHE", str(tmp_path / "cache"))
    stale = tmp_path / "cache" / "sample-v1"
    stale.mkdir(parents=True)
    (stale / "half-written.jpg").write_bytes(b"\xff\xd8")  # no marker: incomplete
    path = sample.default_sample()
    assert path == stale and not (path / "half-written.jpg").exists()
    assert sample.sample_info(path)["seed"] == 0
    monkeypatch.setattr(sample, "_generate", lambda *a: pytest.fail("generated twice"))
    assert sample.default_sample() == path
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["sample-v1"]


def test_cli_writes_the_sample(tmp_path, capsys):
    main(["sample-data", str(tmp_path / "s"), "--seed", "0"])
    out = capsys.readouterr().out
    assert str(tmp_path / "s") in out and "8 classes" in out and "480 train + 120 test" in out
    main(["sample-data", str(tmp_path / "s")])
    assert "already holds the sample" in capsys.readouterr().out


def test_cli_refuses_a_non_empty_folder(tmp_path, capsys, small):
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(SystemExit) as info:
        main(["sample-data", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("fastfood: error:") and "--force" in err
    main(["sample-data", str(tmp_path), "--force", "--seed", "5"])
    assert sample.sample_info(tmp_path)["seed"] == 5


def test_cli_bad_target_exits_2_with_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-c", "from fastfood.cli import main; main()",
         "sample-data", str(blocker / "sub")],
        capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert str(blocker) in proc.stderr


@pytest.mark.slow
def test_sample_is_learnable_by_a_tiny_cnn(sample_dir):
    """The promise behind the sample: a tiny CNN at 64 px trained on train.txt gets > 95%
    top-1 on test.txt quickly."""
    keras = pytest.importorskip("keras")
    spec = data.load(sample_dir, val_fraction=0.0)

    def centre_64(path: str) -> np.ndarray:
        with Image.open(path) as im:
            w, h = im.size
            side = min(w, h)
            box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
            return np.asarray(im.convert("RGB").resize((64, 64), Image.BILINEAR, box=box),
                              np.float32) / 255.0

    x_train = np.stack([centre_64(f) for f in spec.train.files])
    y_train = np.array(spec.train.labels)
    x_val, y_val = np.stack([centre_64(f) for f in spec.test.files]), np.array(spec.test.labels)
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((64, 64, 3)),
        layers.Conv2D(16, 3, activation="relu", padding="same"), layers.MaxPool2D(),
        layers.Conv2D(32, 3, activation="relu", padding="same"), layers.MaxPool2D(),
        layers.Conv2D(32, 3, activation="relu", padding="same"), layers.MaxPool2D(),
        layers.GlobalAveragePooling2D(),
        layers.Dense(8),
    ])
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=4, verbose=0)
    _, accuracy = model.evaluate(x_val, y_val, verbose=0)
    assert accuracy > 0.95
