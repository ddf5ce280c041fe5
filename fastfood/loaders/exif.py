"""EXIF orientation as TensorFlow graph ops: read the tag from the JPEG bytes, then turn.

Phone cameras store the sensor's pixels as they came and write the way up into the EXIF
Orientation tag (1-8); viewers turn the picture, ``tf.io.decode_jpeg`` does not. TensorFlow
has no EXIF op, and the exported SavedModel must stay pure graph (no py_function), so
the tag is parsed here with string and gather ops: walk the JPEG's marker segments to
the APP1 ``Exif`` one, read the TIFF header's byte order and IFD0, and take entry 0x0112.
Anything missing or malformed reads as 1 (as stored), as viewers do; PNGs read as 1.
The eight values map to the transposes Pillow's ``ImageOps.exif_transpose`` applies, which
DALI's decoders apply with ``adjust_orientation=True`` (tests/test_exif.py checks all
three agree).
"""

from __future__ import annotations

import tensorflow as tf

#: Bytes of the file searched for the tag: EXIF lives in APP1, which comes before the image
#: data and is at most 64 KiB; room for an APP0 and an ICC profile before it.
HEAD_BYTES = 1 << 18
_MAX_SEGMENTS = 32  # marker segments walked before giving up
_MAX_ENTRIES = 64  # IFD0 entries looked at (Orientation is among the first few)
_ORIENTATION_TAG = 0x0112
_EXIF = (0x45, 0x78, 0x69, 0x66, 0x00, 0x00)  # b"Exif\0\0"


def orientation(contents: tf.Tensor) -> tf.Tensor:
    """The EXIF orientation (int32 scalar, 1-8) of JPEG bytes; 1 when there is none."""
    head = tf.strings.substr(contents, 0, HEAD_BYTES)
    data = tf.concat([tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int32),
                      tf.zeros([16], tf.int32)], 0)  # padded so every read below is in range
    n = tf.size(data) - 16

    def at(i: tf.Tensor) -> tf.Tensor:
        return tf.gather(data, tf.clip_by_value(i, 0, n + 15))

    def walk(pos, tiff, steps):
        marker = at(pos + 1)
        length = at(pos + 2) * 256 + at(pos + 3)
        exif = tf.reduce_all(tf.equal(at(pos + 4 + tf.range(6)), tf.constant(_EXIF)))
        found = tf.equal(marker, 0xE1) & exif
        step = tf.where(tf.equal(marker, 0xFF), 1, 2 + length)  # 0xFF: a fill byte
        return pos + step, tf.where(found, pos + 10, tiff), steps + 1

    def going(pos, tiff, steps):
        marker = at(pos + 1)
        return ((steps < _MAX_SEGMENTS) & (tiff < 0) & (pos + 4 <= n)
                & tf.equal(at(pos), 0xFF) & tf.not_equal(marker, 0xDA)
                & tf.not_equal(marker, 0xD9))

    is_jpeg = tf.equal(at(0), 0xFF) & tf.equal(at(1), 0xD8)
    _, tiff, _ = tf.while_loop(going, walk, (tf.constant(2), tf.where(is_jpeg, -1, -2),
                                             tf.constant(0)))
    little = tf.equal(at(tiff), 0x49)  # "II": Intel byte order, else "MM"

    def u16(i: tf.Tensor) -> tf.Tensor:
        lo_first = at(i) + at(i + 1) * 256
        return tf.where(little, lo_first, at(i) * 256 + at(i + 1))

    def u32(i: tf.Tensor) -> tf.Tensor:
        return tf.where(little, u16(i) + u16(i + 2) * 65536, u16(i) * 65536 + u16(i + 2))

    ifd = tiff + tf.clip_by_value(u32(tiff + 4), 0, HEAD_BYTES)
    count = u16(ifd)
    entry = ifd + 2 + 12 * tf.range(_MAX_ENTRIES)
    match = ((tf.range(_MAX_ENTRIES) < count) & (entry + 12 <= n)
             & tf.equal(u16(entry), _ORIENTATION_TAG))
    value = tf.reduce_sum(tf.where(match & tf.equal(tf.cumsum(tf.cast(match, tf.int32)), 1),
                                   u16(entry + 8), 0))
    ok = (tiff >= 0) & (value >= 1) & (value <= 8)
    return tf.where(ok, value, 1)


def upright(image: tf.Tensor, value: tf.Tensor) -> tf.Tensor:
    """``image`` (HWC) as displayed for EXIF orientation ``value`` (1-8; 1 unchanged)."""
    def transpose() -> tf.Tensor:
        return tf.transpose(image, [1, 0, 2])

    branches = [
        lambda: image,                                  # 1: as stored
        lambda: tf.reverse(image, [1]),                 # 2: mirrored left-right
        lambda: tf.reverse(image, [0, 1]),              # 3: turned 180
        lambda: tf.reverse(image, [0]),                 # 4: mirrored top-bottom
        transpose,                                      # 5: transposed
        lambda: tf.reverse(transpose(), [1]),           # 6: turned 90 clockwise to view
        lambda: tf.reverse(transpose(), [0, 1]),        # 7: transversed
        lambda: tf.reverse(transpose(), [0]),           # 8: turned 90 counter-clockwise
    ]
    out = tf.switch_case(tf.clip_by_value(tf.cast(value, tf.int32), 1, 8) - 1, branches)
    out.set_shape([None, None, image.shape[-1]])
    return out
