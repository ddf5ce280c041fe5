"""RandAugment, TrivialAugment-wide and random erasing as TensorFlow ops, for tf.data.

The DALI loader uses DALI's own operators (``nvidia.dali.auto_aug``, ``fn.erase``; see
``dali_augment.py``); this module reimplements the same op set, magnitude ranges and
sampling (``spec.AUGMENT_OPS``) so that both loaders train on the same distribution:

- RandAugment: ``RAND_AUGMENT_OPS`` ops drawn uniformly (with replacement) from the 14,
  applied in sequence, each at bin ``RAND_AUGMENT_MAGNITUDE`` with its own random sign.
- TrivialAugment-wide: one op drawn uniformly, at a bin drawn uniformly, random sign.

Each op computes what DALI's does, pixel for pixel up to interpolation rounding
(tests/test_augment_parity.py runs every op through both at several magnitudes): the warps
map pixel centres as DALI's ``warp_affine`` does (continuous coordinates, centres at
+0.5) with bilinear sampling and ``FILL_VALUE`` outside; contrast blends towards the
image's mean luma and color towards each pixel's luma, as PIL (and DALI) do; sharpness
is DALI's 3x3 kernel with reflect-101 borders; equalize is OpenCV's histogram
equalisation, which DALI follows.

Randomness is stateless, keyed by the caller (the tf.data loader keys each image by seed,
epoch and position), so a resumed epoch reproduces its augmentation exactly.
"""

from __future__ import annotations

import math

import tensorflow as tf

from fastfood.loaders.spec import (AUGMENT_OPS, ERASE_AREA, ERASE_ASPECT, ERASE_FILL,
                                   FILL_VALUE, MAGNITUDE_BINS, RAND_AUGMENT_MAGNITUDE,
                                   RAND_AUGMENT_OPS, magnitudes)

_LUMA = (0.299, 0.587, 0.114)  # PIL's and DALI's RGB -> L weights


def _to_uint8(x: tf.Tensor) -> tf.Tensor:
    """Round to nearest and saturate, as DALI converts floats to uint8."""
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def _warp(image: tf.Tensor, forward: tf.Tensor) -> tf.Tensor:
    """Warp by the affine map ``forward`` (2x3, source -> destination, in continuous
    (x, y) coordinates with pixel centres at +0.5, as DALI's ``warp_affine`` takes it):
    bilinear, FILL_VALUE outside."""
    a = tf.concat([forward, tf.constant([[0.0, 0.0, 1.0]])], axis=0)
    inv = tf.linalg.inv(a)
    # TF's projective transform samples input index = M @ output index; indices are the
    # continuous coordinates minus 0.5, so conjugate the inverse map by that shift.
    shift = tf.constant([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    unshift = tf.constant([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    m = unshift @ inv @ shift
    transform = tf.reshape(tf.concat([tf.reshape(m[:2, :], [6]), tf.zeros([2])], 0), [1, 8])
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(image, tf.float32)[None], transforms=transform,
        output_shape=tf.stack([h, w]), fill_value=float(FILL_VALUE),
        interpolation="BILINEAR", fill_mode="CONSTANT")[0]
    return _to_uint8(out)


def _affine(rows: list[list]) -> tf.Tensor:
    return tf.convert_to_tensor([[tf.cast(v, tf.float32) for v in row] for row in rows])


def shear_x(image: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
    return _warp(image, _affine([[1.0, m, 0.0], [0.0, 1.0, 0.0]]))


def shear_y(image: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
    return _warp(image, _affine([[1.0, 0.0, 0.0], [m, 1.0, 0.0]]))


def translate_x(image: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
    offset = m * tf.cast(tf.shape(image)[1], tf.float32)
    return _warp(image, _affine([[1.0, 0.0, offset], [0.0, 1.0, 0.0]]))


def translate_y(image: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
    offset = m * tf.cast(tf.shape(image)[0], tf.float32)
    return _warp(image, _affine([[1.0, 0.0, 0.0], [0.0, 1.0, offset]]))


def rotate(image: tf.Tensor, degrees: tf.Tensor) -> tf.Tensor:
    """Rotate about the image centre, keeping the size; positive angles turn the picture
    counter-clockwise as displayed (DALI's ``fn.rotate``)."""
    t = -tf.cast(degrees, tf.float32) * (math.pi / 180.0)
    c, s = tf.cos(t), tf.sin(t)
    cy = tf.cast(tf.shape(image)[0], tf.float32) / 2.0
    cx = tf.cast(tf.shape(image)[1], tf.float32) / 2.0
    return _warp(image, _affine([[c, -s, cx - c * cx + s * cy], [s, c, cy - s * cx - c * cy]]))


def brightness(image: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
    return _to_uint8(tf.cast(image, tf.float32) * (1.0 + m))


def contrast(image: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
    x = tf.cast(image, tf.float32)
    centre = tf.reduce_sum(tf.reduce_mean(x, axis=[0, 1]) * tf.constant(_LUMA))
    return _to_uint8(centre + (x - centre) * (1.0 + m))


def color(image: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
    x = tf.cast(image, tf.float32)
    luma = tf.reduce_sum(x * tf.constant(_LUMA), axis=-1, keepdims=True)
    return _to_uint8(luma + (x - luma) * (1.0 + m))


def sharpness(image: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
    blur = tf.constant([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0
    ident = tf.constant([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    kernel = -m * blur + (1.0 + m) * ident
    x = tf.pad(tf.cast(image, tf.float32)[None], [[0, 0], [1, 1], [1, 1], [0, 0]], "REFLECT")
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
    out = tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="VALID")[0]
    return _to_uint8(out)


def posterize(image: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
    bits = tf.clip_by_value(tf.round(m), 1.0, 8.0)
    drop = tf.cast(8.0 - bits, tf.int32)
    mask = tf.cast(255 ^ (tf.bitwise.left_shift(1, drop) - 1), tf.uint8)
    return tf.bitwise.bitwise_and(image, mask)


def solarize(image: tf.Tensor, m: tf.Tensor) -> tf.Tensor:
    return tf.where(tf.cast(image, tf.float32) < m, image, 255 - image)


def equalize(image: tf.Tensor, _: tf.Tensor) -> tf.Tensor:
    """OpenCV's ``equalizeHist`` per channel: the first used level maps to 0, level i to
    round(255 * (cdf(i) - cdf(first)) / (n - cdf(first)))."""
    def one(channel: tf.Tensor) -> tf.Tensor:
        flat = tf.cast(tf.reshape(channel, [-1]), tf.int32)
        hist = tf.math.bincount(flat, minlength=256, maxlength=256)
        total = tf.size(flat)
        first = tf.reduce_min(flat)
        base = tf.gather(hist, first)
        cdf = tf.cumsum(hist) - tf.gather(tf.cumsum(hist), first)
        scale = 255.0 / tf.cast(tf.maximum(total - base, 1), tf.float32)
        lut = _to_uint8(tf.cast(cdf, tf.float32) * scale)
        lut = tf.where(tf.range(256) < first, tf.zeros_like(lut), lut)
        flat_out = tf.gather(lut, flat)
        flat_out = tf.where(base == total, tf.cast(flat, tf.uint8), flat_out)
        return tf.reshape(flat_out, tf.shape(channel))

    return tf.stack([one(image[..., c]) for c in range(3)], axis=-1)


def auto_contrast(image: tf.Tensor, _: tf.Tensor) -> tf.Tensor:
    x = tf.cast(image, tf.float32)
    lo = tf.reduce_min(x, axis=[0, 1])
    hi = tf.reduce_max(x, axis=[0, 1])
    spread = hi - lo > 0
    scale = 255.0 / tf.where(spread, hi - lo, 255.0)
    return _to_uint8((x - tf.where(spread, lo, 0.0)) * scale)


def identity(image: tf.Tensor, _: tf.Tensor) -> tf.Tensor:
    return image


OPS = {name: globals()[name] for name, *_ in AUGMENT_OPS}


def apply_op(image: tf.Tensor, index: tf.Tensor, magnitude_bin: tf.Tensor, negate: tf.Tensor,
             policy: str) -> tf.Tensor:
    """Op ``index`` of ``AUGMENT_OPS`` at ``magnitude_bin`` under ``policy``'s ranges
    ('randaugment' or 'trivial'), negated where ``negate`` and the op allows it."""
    column = 2 if policy == "randaugment" else 3

    def branch(entry):
        name, signed, *_ = entry
        table = magnitudes(entry[column]) or (0.0,)

        def run() -> tf.Tensor:
            m = tf.gather(tf.constant(table, tf.float32),
                          tf.minimum(magnitude_bin, len(table) - 1))
            if signed:
                m = tf.where(negate, -m, m)
            return OPS[name](image, m)
        return run

    out = tf.switch_case(tf.cast(index, tf.int32), [branch(e) for e in AUGMENT_OPS])
    out.set_shape(image.shape)
    return out


def _ints(key: tf.Tensor, shape: list[int], high: int) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, key, minval=0, maxval=high, dtype=tf.int32)


def auto_augment(image: tf.Tensor, key: tf.Tensor, policy: str) -> tf.Tensor:
    """``image`` (uint8 [S, S, 3]) under 'randaugment', 'trivial' or 'basic' (unchanged)."""
    if policy == "basic":
        return image
    op_key, bin_key, sign_key = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(key, tf.int64), num=3))
    count = len(AUGMENT_OPS)
    if policy == "randaugment":
        ops = _ints(op_key, [RAND_AUGMENT_OPS], count)
        signs = _ints(sign_key, [RAND_AUGMENT_OPS], 2) > 0
        for i in range(RAND_AUGMENT_OPS):
            image = apply_op(image, ops[i], tf.constant(RAND_AUGMENT_MAGNITUDE), signs[i],
                             policy)
        return image
    if policy == "trivial":
        return apply_op(image, _ints(op_key, [], count), _ints(bin_key, [], MAGNITUDE_BINS),
                        _ints(sign_key, [], 2) > 0, policy)
    raise ValueError(f"augment must be basic, randaugment or trivial, got {policy!r}")


def erase_box(size: tf.Tensor, key: tf.Tensor, probability: float) -> tf.Tensor:
    """``[y0, x0, h, w]`` (int32) of the rectangle to erase in an S x S image, h = w = 0
    when none is (with probability 1 - ``probability``); see spec.ERASE_*."""
    keys = tf.unstack(tf.random.experimental.stateless_split(tf.cast(key, tf.int64), num=5))
    s = tf.cast(size, tf.float32)
    area = s * s * tf.random.stateless_uniform([], keys[0], ERASE_AREA[0], ERASE_AREA[1])
    ratio = tf.exp(tf.random.stateless_uniform(
        [], keys[1], math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1])))
    h = tf.minimum(tf.floor(tf.sqrt(area * ratio) + 0.5), s)
    w = tf.minimum(tf.floor(tf.sqrt(area / ratio) + 0.5), s)
    y0 = tf.floor(tf.random.stateless_uniform([], keys[2]) * (s - h + 1.0))
    x0 = tf.floor(tf.random.stateless_uniform([], keys[3]) * (s - w + 1.0))
    on = tf.cast(tf.random.stateless_uniform([], keys[4]) < probability, tf.float32)
    return tf.cast(tf.stack([tf.minimum(y0, s - h), tf.minimum(x0, s - w), h * on, w * on]),
                   tf.int32)


def random_erase(image: tf.Tensor, key: tf.Tensor, probability: float) -> tf.Tensor:
    """With ``probability``, one rectangle of ``image`` filled with ERASE_FILL."""
    if probability <= 0:
        return image
    size = tf.shape(image)[0]
    y0, x0, h, w = tf.unstack(erase_box(size, key, probability))
    rows = tf.range(size)
    cols = tf.range(tf.shape(image)[1])
    inside = (((rows >= y0) & (rows < y0 + h))[:, None]
              & ((cols >= x0) & (cols < x0 + w))[None, :])
    fill = tf.broadcast_to(tf.constant(ERASE_FILL, tf.uint8), tf.shape(image))
    return tf.where(inside[..., None], fill, image)
