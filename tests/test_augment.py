"""--augment and --random-erasing: the tf.data ops compute DALI's, op by op, and both
loaders train on the same distribution (statistics over many samples of tiny images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import fastfood.loaders as loaders
from fastfood.config import RunConfig
from fastfood.errors import FastfoodError
from fastfood.loaders import autoaugment, preprocess
from fastfood.loaders.request import LoaderRequest
from fastfood.loaders.spec import AUGMENT_OPS, ERASE_FILL, FILL_VALUE, MAGNITUDE_BINS
from support.images import photo_array

S = 24


def _images() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
    return [photo_array(S, S, rng), photo_array(S, S, rng), noise,
            (photo_array(S, S, rng) // 3 + 70).astype(np.uint8)]  # low contrast


def _dali_ops(images: list[np.ndarray], policy: str, magnitude_bin: int, sign: int):
    """Every op of the suite at one signed bin, through DALI's own operators (CPU)."""
    from nvidia.dali import fn, pipeline_def, types
    from nvidia.dali.auto_aug.core import signed_bin

    from fastfood.loaders.dali_augment import suite

    @pipeline_def(enable_conditionals=True, batch_size=len(images), num_threads=1,
                  device_id=None, seed=1)
    def ops():
        x = fn.external_source(source=lambda: images, layout="HWC", batch=True)
        outs = []
        for aug in suite(policy):
            b = signed_bin(magnitude_bin,
                           random_sign=fn.random.uniform(values=[sign], dtype=types.INT32))
            extra = {"shape": (S, S)} if aug.name.startswith("translate") else {}
            if aug.name in ("translate_x", "translate_y", "shear_x", "shear_y", "rotate"):
                extra["fill_value"] = FILL_VALUE
            outs.append(aug(x, magnitude_bin=b, num_magnitude_bins=MAGNITUDE_BINS, **extra))
        return tuple(outs)

    pipe = ops()
    pipe.build()
    return [np.asarray(o.as_tensor()) for o in pipe.run()]


@pytest.mark.dali
@pytest.mark.parametrize("policy,magnitude_bin,sign", [
    ("randaugment", 9, 0), ("trivial", 30, 1), ("trivial", 17, 0)])
def test_every_op_matches_dalis(policy: str, magnitude_bin: int, sign: int) -> None:
    images = _images()
    dali = _dali_ops(images, policy, magnitude_bin, sign)
    for k, (entry, want) in enumerate(zip(AUGMENT_OPS, dali)):
        got = np.stack([autoaugment.apply_op(tf.constant(im), tf.constant(k),
                                             tf.constant(magnitude_bin), tf.constant(bool(sign)),
                                             policy).numpy() for im in images])
        diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
        # Interpolation and float rounding differ by at most one level here and there.
        assert diff.max() <= 1 and diff.mean() <= 0.2, (entry[0], diff.max(), diff.mean())
        changed = np.abs(want.astype(np.int16) - np.stack(images)).mean()
        if entry[0] != "identity" and (entry[2] is None or magnitude_bin >= 9):
            # The comparison has teeth: every other op visibly changes the images.
            assert changed > 0.3, (entry[0], changed)


def test_posterize_and_solarize_thresholds() -> None:
    x = tf.constant(np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, -1))
    assert np.array_equal(autoaugment.posterize(x, tf.constant(4.0)).numpy(),
                          x.numpy() & 0xF0)
    solar = autoaugment.solarize(x, tf.constant(128.0)).numpy().ravel()[::3]
    assert solar[127] == 127 and solar[128] == 255 - 128
    assert np.array_equal(autoaugment.solarize(x, tf.constant(256.0)).numpy(), x.numpy())


def test_random_erase_fills_one_box_at_the_asked_rate() -> None:
    image = tf.fill([S, S, 3], tf.constant(7, tf.uint8))
    erased, areas = 0, []
    for i in range(200):
        out = autoaugment.random_erase(image, tf.constant([5, i], tf.int64), 0.5).numpy()
        filled = np.all(out == ERASE_FILL, axis=-1)
        if filled.any():
            erased += 1
            rows, cols = np.where(filled)
            box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert box == filled.sum()  # one rectangle
            areas.append(filled.sum() / S**2)
        assert np.all(out[~filled] == 7)
    assert 70 <= erased <= 130  # 100 expected
    assert 0.0 < min(areas) and max(areas) <= 0.5


def _train(kind: str, files: list[str], augment: str, erasing: float = 0.0) -> np.ndarray:
    ds = loaders.build(kind, files, [0] * len(files), training=True, batch_size=32,
                       image_size=S, crop="square", augment=augment, random_erasing=erasing)
    return np.concatenate([x.numpy() for x, _ in ds])


def _stats(x: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Per-sample statistics averaged over samples: what each op family moves."""
    f = x.reshape(len(x), -1, 3).astype(np.float32)
    return {
        "mean": float(f.mean()),
        "std": float(f.std(axis=1).mean()),
        "fill": float(np.all(x == FILL_VALUE, axis=-1).mean()),  # warps' uncovered pixels
        "erased": float(np.all(x == ERASE_FILL, axis=-1).mean()),
        "changed": float((np.abs(x.astype(np.int16) - reference).reshape(len(x), -1)
                          .mean(axis=1) > 0.5).mean()),
    }


TOLERANCE = {"mean": 4.0, "std": 3.0, "fill": 0.03, "erased": 0.03, "changed": 0.09}


@pytest.mark.dali
@pytest.mark.slow
def test_both_loaders_draw_the_same_distribution(tmp_path: Path) -> None:
    # One tiny flip-symmetric PNG read 384 times: crop (the whole square), resize (to its
    # own size) and flip leave it as it is, so every difference between samples is the
    # augmentation's.
    half = photo_array(S, S // 2, np.random.default_rng(0))
    image = np.concatenate([half, half[:, ::-1]], axis=1)
    path = tmp_path / "one.png"
    Image.fromarray(image).save(path)
    files = [str(path)] * 384
    stats = {(kind, augment): _stats(_train(kind, files, augment, erasing), image)
             for augment, erasing in (("randaugment", 0.0), ("trivial", 0.5))
             for kind in ("dali", "tfdata")}
    for augment in ("randaugment", "trivial"):
        dali, tfdata = stats["dali", augment], stats["tfdata", augment]
        for name, bound in TOLERANCE.items():
            assert abs(dali[name] - tfdata[name]) <= bound, (augment, name, dali, tfdata)
        assert tfdata["changed"] > 0.6  # most samples are augmented
    assert stats["tfdata", "trivial"]["erased"] > 0.02 > stats["dali", "randaugment"]["erased"]
    # Teeth: the two policies are told apart on some statistic, on either loader.
    for kind in ("dali", "tfdata"):
        ra, ta = stats[kind, "randaugment"], stats[kind, "trivial"]
        assert any(abs(ra[n] - ta[n]) > TOLERANCE[n] for n in TOLERANCE if n != "erased")


def test_tfdata_views_are_keyed_so_a_resumed_epoch_repeats_them() -> None:
    contents = tf.io.encode_png(tf.constant(photo_array(S, S, np.random.default_rng(1))))
    view = lambda key: preprocess.train_image(  # noqa: E731
        contents, tf.constant(key, tf.int64), S, augment="trivial", random_erasing=0.5).numpy()
    views = [view([0, i]) for i in range(6)]
    assert all(np.array_equal(v, view([0, i])) for i, v in enumerate(views))
    assert len({v.tobytes() for v in views}) == len(views)
    # 'basic' draws the crop and flip it drew before augmentation existed.
    plain = preprocess.train_image(contents, tf.constant([0, 3], tf.int64), S).numpy()
    old_crop, old_flip = tf.unstack(tf.random.experimental.stateless_split(
        tf.constant([0, 3], tf.int64), num=2))
    window = preprocess.crop_window(S, S, old_crop).numpy()
    want = tf.image.decode_png(contents)[window[0]:window[0] + window[2],
                                         window[1]:window[1] + window[3]]
    want = preprocess.resize_uint8(want, S)
    if tf.random.stateless_uniform([], old_flip) < 0.5:
        want = tf.reverse(want, [1])
    assert np.array_equal(plain, want.numpy())


def test_settings_are_checked_and_old_configs_keep_the_basic_recipe() -> None:
    with pytest.raises(FastfoodError, match="--augment"):
        LoaderRequest(augment="autoaugment")
    with pytest.raises(FastfoodError, match="--random-erasing"):
        RunConfig().but("loader", random_erasing=1.5)
    old = RunConfig().to_dict()
    for key in ("augment", "random_erasing", "exif"):
        del old["loader"][key]
    loaded = RunConfig.from_dict(old).loader
    assert (loaded.augment, loaded.random_erasing, loaded.exif) == ("basic", 0.0, "off")
    fresh = RunConfig().loader
    assert (fresh.augment, fresh.random_erasing, fresh.exif) == ("basic", 0.0, "on")
