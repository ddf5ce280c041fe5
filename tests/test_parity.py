"""Eval-mode parity: DALI (CPU backend) and tf.data give the same images for the same files.

The bound: mean absolute difference <= 1.0 on 0-255 over the set and no single
image above 2.0; labels and order identical. Measured here: a few hundredths of a level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fastfood.loaders as loaders

from support.corpus import ODD
from support.images import write_photo_set


pytestmark = pytest.mark.dali
MEAN_BOUND = 1.0
IMAGE_BOUND = 2.0


def _eval(kind: str, files: list[str], size: int, batch_size: int = 8, report=None):
    ds = loaders.build(kind, files, list(range(len(files))), training=False,
                       batch_size=batch_size, image_size=size, report=report)
    images, labels = [], []
    for x, y in ds:
        keep = y.numpy() != loaders.PAD_LABEL  # DALI's padding of its last batch
        images.append(x.numpy()[keep])
        labels.append(y.numpy()[keep])
    return np.concatenate(images), np.concatenate(labels)


def _per_image_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).reshape(len(a), -1).mean(axis=1)


@pytest.mark.parametrize("size", [32, 96])  # mostly shrinking / mostly enlarging
def test_dali_and_tfdata_eval_images_match(tmp_path: Path, size: int) -> None:
    files = write_photo_set(tmp_path)
    dali_x, dali_y = _eval("dali", files, size)
    tf_x, tf_y = _eval("tfdata", files, size)
    assert dali_y.tolist() == tf_y.tolist() == list(range(len(files)))
    assert dali_x.shape == tf_x.shape == (len(files), size, size, 3)
    diff = _per_image_diff(dali_x, tf_x)
    assert diff.mean() <= MEAN_BOUND, diff
    assert diff.max() <= IMAGE_BOUND, diff
    # The comparison has teeth: a one-pixel shift of the crop is far outside the bound.
    shifted = np.roll(tf_x, 1, axis=2)
    assert _per_image_diff(shifted, tf_x).mean() > 3 * MEAN_BOUND


def test_whole_odd_jpegs_corpus_through_every_loader_and_mode() -> None:
    files = sorted(str(p) for p in ODD.iterdir())
    everything = set(range(len(files)))
    decoded = {}
    for kind in ("dali", "tfdata"):
        report: list[tuple[str, str]] = []
        x, y = _eval(kind, files, 48, batch_size=4, report=report)
        skipped = {files.index(p) for p, _ in report}
        assert all(reason for _, reason in report)
        assert set(y.tolist()) | skipped == everything and not set(y.tolist()) & skipped
        assert y.tolist() == sorted(y.tolist())  # input order
        decoded[kind] = (x, y, skipped)

        report = []
        ds = loaders.build(kind, files, list(range(len(files))), training=True, batch_size=1,
                           image_size=48, report=report)
        seen = [int(v) for _, lab in ds for v in lab.numpy()]
        assert len(seen) == len(set(seen))
        assert set(seen) | {files.index(p) for p, _ in report} == everything
    # Both loaders skip the same files, so their epochs line up, and agree on the rest.
    (dx, dy, dskip), (tx, ty, tskip) = decoded["dali"], decoded["tfdata"]
    assert dskip == tskip and dy.tolist() == ty.tolist()
    names = {Path(files[i]).name for i in dy}
    assert {"png_named_as.jpg", "sugarshack.mpo", "pil_sample_cmyk.jpg", "hopper_gray.jpg",
            "icc_profile_big.jpg", "icc-after-SOF.jpg", "orientation_rectangle.jpg"} <= names
    diff = _per_image_diff(dx, tx)
    assert diff.mean() <= MEAN_BOUND and diff.max() <= IMAGE_BOUND, dict(zip(dy.tolist(), diff))


def test_exif_orientation_is_ignored_on_both_loaders() -> None:
    path = str(ODD / "hopper_orientation_6.jpg")
    raw = np.asarray(Image.open(path).convert("RGB"))  # PIL does not apply EXIF on open
    assert raw.shape == (128, 128, 3)
    outs = {kind: _eval(kind, [path], 128)[0][0] for kind in ("dali", "tfdata")}
    assert _per_image_diff(outs["dali"][None], outs["tfdata"][None])[0] <= IMAGE_BOUND
    for out in outs.values():
        assert np.abs(out.astype(int) - raw.astype(int)).mean() < 2.0  # stored pixels
        for k in (1, 3):  # far from either rotation
            assert np.abs(out.astype(int) - np.rot90(raw, k).astype(int)).mean() > 10
