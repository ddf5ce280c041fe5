"""Cheap preflight of image files, applied by every loader before anything is decoded.

Why a preflight: a DALI pipeline stops with an exception on the first file it cannot decode,
which would end a training run hours in; tf.data can skip failing elements but only after the
fact and without saying which file it was. Reading a few bytes at each end of every file
catches what real datasets actually contain (empty files, text or HTML saved as .jpg,
downloads cut off mid-file, formats we do not decode) before the epoch starts, names them,
and gives every loader the same list of good files, so their orders stay identical.

What it checks, per file: it can be opened; it is not empty; it starts with the JPEG
(``FF D8 FF``) or PNG signature; a JPEG ends with the end-of-image marker ``FF D9`` (trailing
zero or whitespace padding tolerated) and its header is a clean chain of marker segments up
to the first start-of-scan, with a sane frame header (non-zero size; 1, 3 or 4 colour
components); a PNG ends with its ``IEND`` chunk.

The header walk is there for DALI: libjpeg (TensorFlow) decodes a JPEG with junk bytes
between header segments after a warning, but DALI's parser (nvImageCodec) stops the whole
pipeline on it ("Invalid marker"). Such files are rare (4 of the 27 files of
tests/data/odd-jpegs) and skipping them on every loader keeps the file list, and so
the epoch order, identical for DALI and tf.data. Only headers are read (segments are
skipped by seeking), so the check stays cheap next to decoding.

Pixel cap: a JPEG of a few hundred bytes can declare a 10000 x 10000 frame, which decodes
to 300 MB per parallel decode. The preflight reads the frame size from the JPEG frame header
(SOF) or the PNG IHDR chunk and refuses images of more than ``MAX_PIXELS`` pixels, Pillow's
own ``Image.MAX_IMAGE_PIXELS`` (89,478,485, about 268 MB once decoded to RGB). It is a
training setting (``--max-pixels``, ``LoaderConfig.max_pixels``, 0 turns it off) since it
decides which files train; predict and evaluate use the run's own value.

A file that passes can still be corrupt inside the compressed data; the loaders name such a
file when they meet it (see ``skips.py``). No TensorFlow here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import BinaryIO

from fastfood.config import MAX_PIXELS
from fastfood.data import filecache

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"IEND\xaeB`\x82"
_TAIL = 64  # bytes read from the end: EOI or IEND plus a little padding
_PADDING = b"\x00 \t\r\n"

# Signatures of formats we recognise but do not decode, to give a clearer reason.
_OTHER_FORMATS = (
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"RIFF", "RIFF/WebP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
)


def check_file(path: str, pixel_cap: int = MAX_PIXELS) -> str | None:
    """Why ``path`` cannot be used as an image, or None when it passes the preflight.

    ``pixel_cap``: the most pixels an image may declare (0: no cap).
    """
    cap = pixel_cap
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "empty file"
        with open(path, "rb") as f:
            head = f.read(24)  # a PNG's signature and IHDR width and height
            f.seek(max(0, size - _TAIL))
            tail = f.read(_TAIL)
            header_problem = (_jpeg_header_problem(f, size, cap) if head.startswith(JPEG_MAGIC)
                              else None)
    except FileNotFoundError:
        return "file not found"
    except IsADirectoryError:
        return "is a directory"
    except OSError as e:
        return f"cannot read: {e.strerror or e}"
    if head.startswith(JPEG_MAGIC):
        if not tail.rstrip(_PADDING).endswith(b"\xff\xd9"):
            return "JPEG has no end-of-image marker (truncated or not a plain JPEG)"
        return header_problem
    if head.startswith(PNG_MAGIC):
        if PNG_IEND not in tail:
            return "PNG has no IEND chunk (truncated)"
        if len(head) < 24 or head[12:16] != b"IHDR":
            return "corrupt PNG header: no IHDR chunk first"
        width = int.from_bytes(head[16:20], "big")
        height = int.from_bytes(head[20:24], "big")
        if height == 0 or width == 0:
            return f"corrupt PNG header: image size {width}x{height}"
        return _too_many_pixels(width, height, cap)
    return _not_an_image(head)


def _too_many_pixels(width: int, height: int, cap: int) -> str | None:
    if cap and width * height > cap:
        return (f"image declares {width}x{height} = {width * height:,} pixels, over the "
                f"{cap:,}-pixel cap (--max-pixels changes it)")
    return None


def _not_an_image(head: bytes) -> str:
    """The reason for bytes that are neither JPEG nor PNG."""
    for magic, name in _OTHER_FORMATS:
        if head.startswith(magic):
            return f"{name} is not supported (JPEG and PNG only)"
    return "not a JPEG or PNG file"


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # not DHT, JPG, DAC


def _jpeg_header_problem(f: BinaryIO, size: int, cap: int) -> str | None:
    """Walk the marker segments from SOI to the first SOS; say what is wrong, if anything.

    Also checks the frame header (SOF): a zero height or width, or a component count other
    than 1 (gray), 3 (YCbCr/RGB) or 4 (CMYK/YCCK), fails in every decoder; more than ``cap``
    pixels (when ``cap`` is not 0) is refused before any decoder allocates them.
    """
    pos = 2  # after SOI
    seen_frame = False
    while True:
        f.seek(pos)
        head = f.read(4)
        if len(head) < 2:
            return "JPEG ends before its first scan"
        if head[0] != 0xFF:
            return f"corrupt JPEG header: junk bytes instead of a marker at offset {pos}"
        # Any number of 0xFF fill bytes may precede a marker code.
        while head[1] == 0xFF:
            pos += 1
            f.seek(pos)
            head = f.read(4)
            if len(head) < 2:
                return "JPEG ends before its first scan"
        marker = head[1]
        if marker == 0xDA:  # start of scan: the header is done
            return None if seen_frame else "corrupt JPEG header: no frame header before the scan"
        if marker == 0xD9:
            return "JPEG has no image data (end-of-image before the first scan)"
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker == 0x00 or len(head) < 4:
            return f"corrupt JPEG header: invalid marker at offset {pos}"
        length = int.from_bytes(head[2:4], "big")
        if length < 2 or pos + 2 + length > size:
            return f"corrupt JPEG header: bad segment length at offset {pos}"
        if marker in _SOF_MARKERS:
            frame = f.read(6)  # precision, height, width, components
            height = int.from_bytes(frame[1:3], "big")
            width = int.from_bytes(frame[3:5], "big")
            components = frame[5] if len(frame) == 6 else 0
            if height == 0 or width == 0:
                return f"corrupt JPEG header: image size {width}x{height}"
            if components not in (1, 3, 4) or length != 8 + 3 * components:
                return f"corrupt JPEG header: {components} colour components"
            if not seen_frame and (too_big := _too_many_pixels(width, height, cap)):
                return too_big
            seen_frame = True
        pos += 2 + length


def check_files(files: Sequence[str], pixel_cap: int = MAX_PIXELS
                ) -> tuple[list[int], list[tuple[str, str]]]:
    """``(good_indices, bad)``: indices into ``files`` that pass, and ``(path, reason)`` of the rest.

    Each file's answer is kept in the file-facts cache (``fastfood.data.filecache``), so a
    second start over the same unchanged files reads none of them again.
    """
    reasons = filecache.facts(f"preflight:{int(pixel_cap)}", [str(f) for f in files],
                              lambda paths: [check_file(p, pixel_cap) for p in paths])
    good: list[int] = []
    bad: list[tuple[str, str]] = []
    for i, (path, reason) in enumerate(zip(files, reasons)):
        if reason is None:
            good.append(i)
        else:
            bad.append((str(path), reason))
    return good, bad
