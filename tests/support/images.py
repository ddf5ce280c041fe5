"""Image files the tests write into tmp dirs: photo-like sets and noise JPEGs.

"Photo-like" matters for parity tests: flat synthetic colours hide resampling and IDCT
differences, while real photos have smooth gradients, sharp edges and noise. Each image of
a photo set has all three, in a variety of sizes (some smaller than the loaders' image_size,
so they are enlarged) and aspect ratios, plus one grayscale JPEG, one CMYK JPEG and one PNG.
tests/test_loader_images.py checks that the sets have the variety the other tests rely on.

Noise JPEGs are random pixels: real entropy-coded data, unlike a flat colour.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# (height, width): tall, wide, square, tiny, odd sizes, both sides of a 32-64 px image_size.
SIZES = [
    (48, 64), (64, 48), (40, 40), (23, 37), (97, 61), (120, 200), (200, 90),
    (33, 150), (77, 77), (131, 95), (18, 18), (256, 171), (64, 64), (51, 120),
]

def photo_array(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [h, w, 3]: smooth colour gradients, a few filled shapes, mild noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack(
        [
            127 + 100 * np.sin(x / max(w, 1) * rng.uniform(1, 4) + rng.uniform(0, 6)),
            127 + 100 * np.cos(y / max(h, 1) * rng.uniform(1, 4) + rng.uniform(0, 6)),
            127 + 80 * np.sin((x + y) / max(h + w, 1) * rng.uniform(2, 6)),
        ],
        axis=-1,
    )
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, x1 = sorted(rng.integers(0, w, 2).tolist())
        y0, y1 = sorted(rng.integers(0, h, 2).tolist())
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x1 + 1, y1 + 1], fill=colour)
        else:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
    arr = np.asarray(img).astype(np.int16) + rng.normal(0, 6, (h, w, 3)).astype(np.int16)
    return np.clip(arr, 0, 255).astype(np.uint8)


def write_photo_set(root: Path, seed: int = 0, sizes=SIZES) -> list[str]:
    """Write RGB JPEGs of ``sizes`` plus a gray JPEG, a CMYK JPEG and a PNG; return the paths."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (h, w) in enumerate(sizes):
        p = root / f"img{i:03d}_{h}x{w}.jpg"
        Image.fromarray(photo_array(h, w, rng)).save(p, quality=int(rng.integers(75, 96)))
        paths.append(str(p))
    extras = [
        ("gray_70x90.jpg", Image.fromarray(photo_array(70, 90, rng)).convert("L"), {"quality": 90}),
        ("cmyk_80x60.jpg", Image.fromarray(photo_array(80, 60, rng)).convert("CMYK"), {"quality": 90}),
        ("png_66x45.png", Image.fromarray(photo_array(66, 45, rng)), {}),
    ]
    for name, img, kw in extras:
        p = root / name
        img.save(p, **kw)
        paths.append(str(p))
    return paths


def write_tiny_set(root: Path, n: int, seed: int = 0, size: tuple[int, int] = (24, 32)) -> list[str]:
    """``n`` small RGB JPEGs (fast to decode), for order/shard/statistics tests."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = root / f"t{i:04d}.jpg"
        Image.fromarray(photo_array(size[0], size[1], rng)).save(p, quality=90)
        paths.append(str(p))
    return paths


def noise_jpeg(seed: int, size: tuple[int, int] = (40, 48), quality: int = 90) -> bytes:
    """A JPEG of random pixels (real entropy-coded data, unlike a flat colour)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def body_corrupt_jpeg(seed: int = 1) -> bytes:
    """A JPEG that passes the loaders' preflight (a clean chain of header segments, EOI at
    the end) but that TensorFlow cannot decode, whatever window of it is asked for: its
    first Huffman table claims more codes than can exist ("Bogus Huffman table")."""
    data = bytearray(noise_jpeg(seed))
    dht = data.find(b"\xff\xc4")
    data[dht + 5:dht + 21] = b"\xff" * 16  # the 16 code-length counts after Tc/Th
    return bytes(data)


def write_images(folder: Path, count: int, seed: int, start: int = 0) -> list[Path]:
    """`count` noise JPEGs named 000.jpg, 001.jpg, ... (from `start`) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        path = folder / f"{i:03d}.jpg"
        path.write_bytes(noise_jpeg(seed * 1000 + i))
        paths.append(path)
    return paths


def write_noise_presplit(root: Path, train: dict[str, int], val: dict[str, int]) -> Path:
    """root/train/<class>/NNN.jpg and root/val/<class>/NNN.jpg, noise images."""
    for split, counts in (("train", train), ("val", val)):
        for ci, (name, n) in enumerate(sorted(counts.items())):
            write_images(root / split / name, n, seed=ci + (100 if split == "val" else 0))
    return root


def twelve_bit_jpeg() -> bytes:
    """A baseline JPEG whose frame header declares 12-bit samples (the precision byte after
    the SOF0 marker patched from 8 to 12): passes the preflight, and every 8-bit decoder
    (libjpeg in TensorFlow, DALI's) refuses it with its own native error report."""
    data = bytearray(noise_jpeg(7))
    sof = data.find(b"\xff\xc0")
    assert sof > 0 and data[sof + 4] == 8, "not a baseline 8-bit JPEG"
    data[sof + 4] = 12
    return bytes(data)


def truncated_jpeg() -> bytes:
    """The first half of a real JPEG: cut off mid-scan, no end-of-image marker."""
    data = noise_jpeg(8)
    return data[:len(data) // 2]


def huge_frame_jpeg(width: int = 10_000, height: int = 10_000) -> bytes:
    """A tiny (about 600-byte) JPEG whose frame header declares width x height: a
    decompression bomb in miniature (10000 x 10000 decodes to 300 MB of RGB)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 120, 150)).save(out, format="JPEG")
    data = bytearray(out.getvalue())
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 7] = height.to_bytes(2, "big")
    data[sof + 7:sof + 9] = width.to_bytes(2, "big")
    return bytes(data)


def huge_frame_png(width: int = 10_000, height: int = 10_000) -> bytes:
    """A tiny PNG whose IHDR declares width x height (its CRC no longer matches)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 120, 150)).save(out, format="PNG")
    data = bytearray(out.getvalue())
    data[16:20] = width.to_bytes(4, "big")  # 8-byte signature, 4 length, 4 'IHDR'
    data[20:24] = height.to_bytes(4, "big")
    return bytes(data)
