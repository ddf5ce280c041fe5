"""Preflight of uploaded bytes before any decoding: the loaders' file checks, plus a pixel cap.

The checks are `fastfood.loaders.validate`'s (signature, JPEG end marker and header chain,
PNG end chunk, a named reason for GIF/BMP/WebP/TIFF), applied to bytes in memory instead of
a path, so an upload is refused for exactly the reasons a file on disk would be skipped.

The pixel cap is the server's own: decoding a JPEG of 20000 x 20000 takes 1.2 GB, and a
request of a few kilobytes can declare that. The frame size is read from the header (PNG
IHDR, JPEG start-of-frame), never by decoding.
"""

from __future__ import annotations

import io

from fastfood.loaders import validate


class UploadError(ValueError):
    """An upload the server refuses, with the HTTP status that says why."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def check_bytes(data: bytes, max_pixels: int) -> None:
    """Raise UploadError when `data` is not a usable JPEG/PNG or has more than max_pixels."""
    reason = preflight(data)
    if reason is not None:
        raise UploadError(reason)
    size = frame_size(data)
    if size is None:
        raise UploadError("cannot read the image size from its header")
    width, height = size
    if width * height > max_pixels:
        raise UploadError(f"image is {width}x{height} = {width * height / 1e6:.1f} MP, over "
                          f"the {max_pixels / 1e6:g} MP limit", status=413)


def preflight(data: bytes) -> str | None:
    """`validate.check_file`'s verdict for bytes in memory: why not, or None when they pass."""
    if not data:
        return "empty (0 bytes)"
    head, tail = data[:16], data[-validate._TAIL:]
    if head.startswith(validate.JPEG_MAGIC):
        if not tail.rstrip(validate._PADDING).endswith(b"\xff\xd9"):
            return "JPEG has no end-of-image marker (truncated or not a plain JPEG)"
        # cap 0: the server applies its own --max-pixels (check_bytes), not the loaders'
        return validate._jpeg_header_problem(io.BytesIO(data), len(data), 0)
    if head.startswith(validate.PNG_MAGIC):
        return None if validate.PNG_IEND in tail else "PNG has no IEND chunk (truncated)"
    for magic, name in validate._OTHER_FORMATS:
        if head.startswith(magic):
            return f"{name} is not supported (JPEG and PNG only)"
    return "not a JPEG or PNG file"


def frame_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's start-of-frame; None if not found.

    Call after `preflight` passed: the JPEG marker chain is then known to be well formed.
    """
    if data.startswith(validate.PNG_MAGIC):
        if data[12:16] != b"IHDR" or len(data) < 24:
            return None
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xDA, 0xD9):
            return None
        if marker in validate._SOF_MARKERS:
            if pos + 9 > len(data):
                return None
            height = int.from_bytes(data[pos + 5:pos + 7], "big")
            width = int.from_bytes(data[pos + 7:pos + 9], "big")
            return width, height
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return None
