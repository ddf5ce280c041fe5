"""TensorFlow image ops shared by the tf.data loader, predict and the exported SavedModel.

One implementation of decode, crop and resize, so that evaluation, prediction and the
exported graph cannot drift apart, and so that DALI's pipeline has one thing to match:

- Decode: JPEG through ``decode_jpeg(dct_method='INTEGER_ACCURATE')`` (libjpeg's accurate
  integer IDCT, the one DALI's CPU decoder uses; TF's default IDCT alone made DALI and
  TF differ by up to 12.7/255 on some images), PNG through ``decode_png``. ``channels=3``
  turns grayscale and CMYK/YCCK into RGB and drops alpha. The format is told by the magic
  bytes (``tf.io.is_jpeg``), never by the file name. With ``exif`` on, a JPEG is turned
  upright by its EXIF Orientation tag (``exif.py``, graph ops, so the exported model does
  it too) before anything else; off, as stored (runs saved before the setting).
- Eval crop: the centre square ``side = min(h, w)``, offsets ``(h-side)//2, (w-side)//2``
  (integer floor, the same arithmetic the DALI pipeline does).
- Resize: ``tf.image.resize(method='bilinear', antialias=True)``, i.e. a triangle filter
  widened by the scale factor when shrinking and plain bilinear when enlarging, with
  half-pixel centres, which is what DALI's ``fn.resize(interp_type=INTERP_LINEAR,
  antialias=True)`` computes. Rounded to nearest and saturated to uint8.
- Training crops: :func:`crop_window` (random-resized or random-square) from stateless
  random numbers keyed by the caller, so a resumed epoch reproduces its crops; then the
  flip, the auto-augmentation and random erasing (``autoaugment.py``), keyed the same way.

Everything here is graph-safe: no py_function, string tensors in, uint8 tensors out.
"""

from __future__ import annotations

import math

import tensorflow as tf

from fastfood.loaders import autoaugment, exif as exif_ops
from fastfood.loaders.spec import AREA_RANGE, ASPECT_RANGE, CROP_ATTEMPTS, SQUARE_MARGIN


def is_jpeg(contents: tf.Tensor) -> tf.Tensor:
    """Scalar bool: do these bytes start like a JPEG (otherwise we treat them as PNG)."""
    return tf.io.is_jpeg(contents)


def decode_rgb(contents: tf.Tensor) -> tf.Tensor:
    """Decode JPEG or PNG bytes to uint8 ``[h, w, 3]`` RGB (gray/CMYK converted, alpha dropped)."""
    image = tf.cond(
        is_jpeg(contents),
        lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_png(contents, channels=3, dtype=tf.uint8),
    )
    image.set_shape([None, None, 3])
    return image


def centre_square_window(height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """``[y0, x0, side, side]`` of the centre square (floor offsets, the eval crop)."""
    side = tf.minimum(height, width)
    return tf.stack([(height - side) // 2, (width - side) // 2, side, side])


def resize_uint8(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """Antialiased bilinear resize to ``[S, S, 3]``, rounded to nearest, saturated to uint8."""
    resized = tf.image.resize(
        image, [image_size, image_size], method="bilinear", antialias=True
    )
    out = tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)
    out.set_shape([image_size, image_size, 3])
    return out


def decode_upright(contents: tf.Tensor, exif: bool) -> tf.Tensor:
    """``decode_rgb``, turned by the EXIF Orientation tag when ``exif``."""
    image = decode_rgb(contents)
    return exif_ops.upright(image, exif_ops.orientation(contents)) if exif else image


def eval_image(encoded_bytes: tf.Tensor, image_size: int, exif: bool = True) -> tf.Tensor:
    """JPEG/PNG bytes (scalar string) to the eval view: uint8 ``[S, S, 3]`` RGB.

    ``exif``: turn the image upright by its EXIF Orientation tag first. Callers that hold
    a run pass its setting (``RunInfo.exif``: off for runs saved before it); the default
    is what new runs do, so a caller that passes nothing (the exported model's serving
    function) matches the runs trained today.

    Decodes the whole image and then slices the centre square (rather than
    ``decode_and_crop_jpeg``): decoding only a window changes the chroma upsampling at its
    edges, which would break pixel parity with the full decode DALI does in eval mode.
    """
    image = decode_upright(encoded_bytes, exif)
    shape = tf.shape(image)
    window = centre_square_window(shape[0], shape[1])
    image = tf.slice(image, [window[0], window[1], 0], [window[2], window[3], 3])
    return resize_uint8(image, image_size)


def crop_window(
    height: tf.Tensor,
    width: tf.Tensor,
    key: tf.Tensor,
    crop: str = "inception",
    *,
    area_range: tuple[float, float] = AREA_RANGE,
    aspect_range: tuple[float, float] = ASPECT_RANGE,
    attempts: int = CROP_ATTEMPTS,
    margin: int = SQUARE_MARGIN,
) -> tf.Tensor:
    """Random training crop ``[y0, x0, h, w]`` (int32) for an image of ``height x width``.

    ``key`` is a stateless-RNG seed (shape [2] int); the same key gives the same window.

    'inception' (random-resized crop): up to ``attempts`` draws of an area fraction uniform in
    ``area_range`` and an aspect ratio (w/h) log-uniform in ``aspect_range``; the first draw
    that fits is placed uniformly at random. If none fits, the fallback is the largest centred
    crop whose aspect ratio is clamped into ``aspect_range`` (the whole image when its own
    ratio is in range), as torchvision does.

    'square': a square of side ``min(h, w) - 2*margin`` placed uniformly at random; images whose
    short side is at most ``4*margin`` use the whole short side.
    """
    h = tf.cast(height, tf.int32)
    w = tf.cast(width, tf.int32)
    keys = tf.random.experimental.stateless_split(tf.cast(key, tf.int64), num=4)
    if crop == "square":
        short = tf.minimum(h, w)
        side = tf.where(short > 4 * margin, short - 2 * margin, short)
        y0 = _uniform_int(keys[0], h - side + 1)
        x0 = _uniform_int(keys[1], w - side + 1)
        return tf.stack([y0, x0, side, side])
    if crop != "inception":
        raise ValueError(f"crop must be 'inception' or 'square', got {crop!r}")

    hf = tf.cast(h, tf.float32)
    wf = tf.cast(w, tf.float32)
    area = hf * wf * tf.random.stateless_uniform(
        [attempts], keys[0], minval=area_range[0], maxval=area_range[1]
    )
    log_ratio = tf.random.stateless_uniform(
        [attempts], keys[1], minval=math.log(aspect_range[0]), maxval=math.log(aspect_range[1])
    )
    ratio = tf.exp(log_ratio)
    cw = tf.cast(tf.round(tf.sqrt(area * ratio)), tf.int32)
    ch = tf.cast(tf.round(tf.sqrt(area / ratio)), tf.int32)
    fits = (cw >= 1) & (ch >= 1) & (cw <= w) & (ch <= h)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)

    # Fallback: clamp the image's own aspect ratio into range, centred.
    own = wf / hf
    fb_w = tf.where(
        own > aspect_range[1],
        tf.minimum(tf.cast(tf.round(hf * aspect_range[1]), tf.int32), w),
        w,
    )
    fb_h = tf.where(
        own < aspect_range[0],
        tf.minimum(tf.cast(tf.round(wf / aspect_range[0]), tf.int32), h),
        h,
    )
    found = tf.reduce_any(fits)
    crop_h = tf.where(found, ch[first], fb_h)
    crop_w = tf.where(found, cw[first], fb_w)
    y0 = tf.where(found, _uniform_int(keys[2], h - crop_h + 1), (h - crop_h) // 2)
    x0 = tf.where(found, _uniform_int(keys[3], w - crop_w + 1), (w - crop_w) // 2)
    return tf.stack([y0, x0, crop_h, crop_w])


def _uniform_int(key: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
    """Stateless integer uniform in ``[0, count)`` (count >= 1), as int32."""
    u = tf.random.stateless_uniform([], key, dtype=tf.float32)
    return tf.minimum(tf.cast(tf.floor(u * tf.cast(count, tf.float32)), tf.int32), count - 1)


def train_image(
    contents: tf.Tensor, key: tf.Tensor, image_size: int, crop: str = "inception", *,
    augment: str = "basic", random_erasing: float = 0.0, exif: bool = False,
) -> tf.Tensor:
    """Training view of JPEG/PNG bytes: random crop, resize to ``S``, random flip (50%),
    then ``augment`` ('basic': nothing more) and random erasing with probability
    ``random_erasing``.

    JPEGs are decoded only inside the crop window (``decode_and_crop_jpeg``), which is most
    of the decode cost saved for small random-resized crops. With ``exif`` on, a JPEG whose
    Orientation tag is not 1 is decoded whole, turned upright, and cropped there. ``key``
    seeds everything; the crop and flip draw what they drew before the other options
    existed, so 'basic' runs resume as they were.
    """
    crop_key, flip_key = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(key, tf.int64), num=2)
    )
    aug_key, erase_key = tf.unstack(tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(tf.cast(key, tf.int64), 1), num=2))

    def jpeg() -> tf.Tensor:
        hw = tf.io.extract_jpeg_shape(contents)  # from the header, no decode
        window = crop_window(hw[0], hw[1], crop_key, crop)
        return tf.io.decode_and_crop_jpeg(
            contents, window, channels=3, dct_method="INTEGER_ACCURATE"
        )

    def crop_of(full: tf.Tensor) -> tf.Tensor:
        hw = tf.shape(full)
        window = crop_window(hw[0], hw[1], crop_key, crop)
        return tf.slice(full, [window[0], window[1], 0], [window[2], window[3], 3])

    def png() -> tf.Tensor:
        return crop_of(tf.io.decode_png(contents, channels=3, dtype=tf.uint8))

    if exif:
        turned = tf.not_equal(exif_ops.orientation(contents), 1)
        image = tf.cond(turned, lambda: crop_of(decode_upright(contents, True)),
                        lambda: tf.cond(is_jpeg(contents), jpeg, png))
    else:
        image = tf.cond(is_jpeg(contents), jpeg, png)
    image.set_shape([None, None, 3])
    image = resize_uint8(image, image_size)
    flip = tf.random.stateless_uniform([], flip_key) < 0.5
    image = tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)
    image = autoaugment.auto_augment(image, aug_key, augment)
    return autoaugment.random_erase(image, erase_key, random_erasing)
