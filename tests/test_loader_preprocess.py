"""The shared TF preprocessing: crop windows, eval crop arithmetic, decode paths, flips."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from fastfood.loaders import preprocess
from fastfood.loaders.spec import AREA_RANGE, ASPECT_RANGE, SQUARE_MARGIN

from support.images import photo_array


def _encode(arr: np.ndarray, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    Image.fromarray(arr).save(out, fmt, **kw)
    return out.getvalue()


def _windows(h: int, w: int, crop: str, n: int, base: int = 0) -> np.ndarray:
    """n crop windows [y0, x0, ch, cw] for an h x w image, one per key."""
    keys = tf.stack([tf.fill([n], tf.constant(base, tf.int64)), tf.range(n, dtype=tf.int64)], axis=1)

    @tf.function
    def run(keys):
        return tf.map_fn(lambda k: preprocess.crop_window(h, w, k, crop), keys,
                         fn_output_signature=tf.int32)

    return run(keys).numpy()


@pytest.mark.parametrize("h,w", [(100, 100), (120, 200), (300, 110), (37, 29)])
def test_inception_crop_covers_the_documented_range(h: int, w: int) -> None:
    win = _windows(h, w, "inception", 600)
    y0, x0, ch, cw = win.T
    assert (ch >= 1).all() and (cw >= 1).all()
    assert (y0 >= 0).all() and (x0 >= 0).all()
    assert (y0 + ch <= h).all() and (x0 + cw <= w).all()
    # Sides are rounded to whole pixels: allow half a pixel of slack on each.
    area_lo = (ch - 0.5) * (cw - 0.5) / (h * w)
    area_hi = (ch + 0.5) * (cw + 0.5) / (h * w)
    assert (area_hi >= AREA_RANGE[0]).all() and (area_lo <= AREA_RANGE[1]).all()
    ratio_lo, ratio_hi = (cw - 0.5) / (ch + 0.5), (cw + 0.5) / (ch - 0.5)
    assert (ratio_hi >= ASPECT_RANGE[0]).all() and (ratio_lo <= ASPECT_RANGE[1]).all()
    # The whole range is used, not a corner of it.
    area = ch * cw / (h * w)
    ratio = cw / ch
    # The largest window with an in-range aspect ratio (less than the whole image when the
    # image's own ratio is out of range).
    feasible = max(min(w, h * r) * min(h, w / r)
                   for r in np.geomspace(*ASPECT_RANGE, 50)) / (h * w)
    assert area.min() < 0.12 and area.max() > 0.85 * feasible
    assert ratio.min() < 0.8 and ratio.max() > 1.25
    # Positions spread over the image: some crops touch each edge region.
    assert (y0 == 0).any() or y0.min() <= 2
    assert ((x0 + cw) >= w - 2).any()
    # Not the same window over and over.
    assert len({tuple(r) for r in win.tolist()}) > 500


def test_inception_crop_falls_back_to_a_centred_clamped_crop() -> None:
    # 10 x 400: no window with area >= 8% and aspect <= 4/3 fits in 10 rows.
    win = _windows(10, 400, "inception", 20)
    expected_w = round(10 * ASPECT_RANGE[1])
    assert (win == [0, (400 - expected_w) // 2, 10, expected_w]).all()
    # Tall version: width 6, height 500.
    win = _windows(500, 6, "inception", 5)
    expected_h = round(6 / ASPECT_RANGE[0])
    assert (win == [(500 - expected_h) // 2, 0, expected_h, 6]).all()


def test_seed_crop_is_a_random_square_inside_the_margin() -> None:
    win = _windows(100, 60, "square", 400)
    y0, x0, ch, cw = win.T
    side = 60 - 2 * SQUARE_MARGIN
    assert (ch == side).all() and (cw == side).all()
    assert set(x0.tolist()) == set(range(0, 60 - side + 1))  # every offset reachable
    assert y0.min() == 0 and y0.max() == 100 - side
    # Small images keep their whole short side.
    small = _windows(30, 50, "square", 50)
    assert (small[:, 2] == 30).all() and (small[:, 0] == 0).all()


def test_crop_window_is_a_function_of_the_key() -> None:
    a = _windows(200, 300, "inception", 50, base=7)
    assert np.array_equal(a, _windows(200, 300, "inception", 50, base=7))
    assert not np.array_equal(a, _windows(200, 300, "inception", 50, base=8))


@pytest.mark.parametrize("h,w", [(7, 12), (12, 7), (9, 9), (7, 14), (16, 9)])
def test_eval_crop_is_the_floor_centred_square(h: int, w: int) -> None:
    # Lossless PNG and image_size == side: the resize is the identity, so the output must be
    # exactly the centre square at floor offsets. A margin of 7 (offset 3.5) tells floor from
    # round-half-even (4); a margin of 5 (2.5) tells floor from round-half-up (3).
    arr = np.random.default_rng(h * 100 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    side = min(h, w)
    out = preprocess.eval_image(tf.constant(_encode(arr, "PNG")), side).numpy()
    y0, x0 = (h - side) // 2, (w - side) // 2
    assert np.array_equal(out, arr[y0:y0 + side, x0:x0 + side])


def test_eval_image_decodes_jpeg_gray_cmyk_png_to_rgb() -> None:
    rng = np.random.default_rng(0)
    arr = photo_array(40, 60, rng)
    jpeg = _encode(arr, "JPEG", quality=95)
    full = tf.io.decode_jpeg(jpeg, channels=3, dct_method="INTEGER_ACCURATE").numpy()
    out = preprocess.eval_image(tf.constant(jpeg), 40).numpy()
    assert np.array_equal(out, full[:, 10:50])  # accurate IDCT, centre square, identity resize

    gray = np.asarray(Image.fromarray(arr).convert("L"))
    out = preprocess.eval_image(tf.constant(_encode(gray, "JPEG", quality=95)), 16).numpy()
    assert out.shape == (16, 16, 3)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])

    cmyk = io.BytesIO()
    Image.fromarray(arr).convert("CMYK").save(cmyk, "JPEG", quality=95)
    out = preprocess.eval_image(tf.constant(cmyk.getvalue()), 40).numpy()
    assert out.shape == (40, 40, 3)
    assert np.abs(out.astype(int) - arr[:, 10:50].astype(int)).mean() < 8

    rgba = np.concatenate([arr, np.full((40, 60, 1), 128, np.uint8)], axis=-1)
    out = preprocess.eval_image(tf.constant(_encode(rgba, "PNG")), 40).numpy()
    assert np.array_equal(out, arr[:, 10:50])  # alpha dropped, pixels untouched


def test_eval_image_enlarges_small_images_and_keeps_flat_colours_exact() -> None:
    flat = np.full((9, 13, 3), (200, 17, 90), np.uint8)
    out = preprocess.eval_image(tf.constant(_encode(flat, "PNG")), 64).numpy()
    assert out.shape == (64, 64, 3)
    assert (out == (200, 17, 90)).all()  # no overshoot, rounding exact


def test_eval_image_is_a_pure_graph_function_of_a_string() -> None:
    fn = tf.function(lambda b: preprocess.eval_image(b, 24),
                     input_signature=[tf.TensorSpec([], tf.string)])
    graph = fn.get_concrete_function().graph
    op_types = {op.type for op in graph.get_operations()}
    assert not op_types & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}
    arr = photo_array(30, 50, np.random.default_rng(1))
    for data in (_encode(arr, "JPEG"), _encode(arr, "PNG")):
        out = fn(tf.constant(data))
        assert out.dtype == tf.uint8 and out.shape == (24, 24, 3)
    assert np.array_equal(fn(tf.constant(_encode(arr, "PNG"))).numpy(),
                          preprocess.eval_image(tf.constant(_encode(arr, "PNG")), 24).numpy())


def test_train_image_flips_half_the_time_and_is_keyed() -> None:
    # An 8x8 image is smaller than 4*margin, so the 'square' crop is the whole image and the
    # resize to 8 is the identity: each output is either the image or its mirror.
    arr = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    data = tf.constant(_encode(arr, "PNG"))
    n = 400

    @tf.function
    def run(keys):
        return tf.map_fn(lambda k: preprocess.train_image(data, k, 8, "square"), keys,
                         fn_output_signature=tf.uint8)

    keys = tf.stack([tf.zeros([n], tf.int64), tf.range(n, dtype=tf.int64)], axis=1)
    out = run(keys).numpy()
    flipped = np.array([np.array_equal(o, arr[:, ::-1]) for o in out])
    same = np.array([np.array_equal(o, arr) for o in out])
    assert (flipped | same).all()
    # Binomial(400, 0.5): 3.5 sigma is +-35.
    assert abs(flipped.sum() - n / 2) < 35
    assert np.array_equal(out, run(keys).numpy())


def test_train_image_jpeg_crop_matches_a_full_decode_closely() -> None:
    # decode_and_crop_jpeg decodes only the window; it must show the same content as slicing
    # the full decode (chroma upsampling at the window edge may differ slightly).
    arr = photo_array(90, 120, np.random.default_rng(3))
    data = tf.constant(_encode(arr, "JPEG", quality=95))
    key = tf.constant([5, 9], tf.int64)
    crop_key, flip_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    y0, x0, ch, cw = preprocess.crop_window(90, 120, crop_key, "inception").numpy()
    full = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
    expected = preprocess.resize_uint8(full[y0:y0 + ch, x0:x0 + cw], 32).numpy()
    if tf.random.stateless_uniform([], flip_key).numpy() < 0.5:
        expected = expected[:, ::-1]
    out = preprocess.train_image(data, key, 32, "inception").numpy()
    assert out.shape == (32, 32, 3)
    assert np.abs(out.astype(int) - expected.astype(int)).mean() < 1.0


def test_unknown_crop_is_rejected() -> None:
    with pytest.raises(ValueError):
        preprocess.crop_window(10, 10, tf.constant([0, 0], tf.int64), "random")


def test_crop_ranges_are_the_documented_ones() -> None:
    assert AREA_RANGE == (0.08, 1.0)
    assert math.isclose(ASPECT_RANGE[0], 3 / 4) and math.isclose(ASPECT_RANGE[1], 4 / 3)
    assert SQUARE_MARGIN == 10
