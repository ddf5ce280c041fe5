"""Small photo-like image sets for the loader tests, written with PIL into tmp dirs.

"Photo-like" matters for parity tests: flat synthetic colours hide resampling and IDCT
differences, while real photos have smooth gradients, sharp edges and noise. Each image
here has all three, in a variety of sizes (some smaller than the loaders' image_size, so
they are enlarged) and aspect ratios, plus one grayscale JPEG, one CMYK JPEG and one PNG.

Other loader test files import the helpers from this module; its own tests check that the
sets really have the variety the other tests rely on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# (height, width): tall, wide, square, tiny, odd sizes, both sides of a 32-64 px image_size.
SIZES = [
    (48, 64), (64, 48), (40, 40), (23, 37), (97, 61), (120, 200), (200, 90),
    (33, 150), (77, 77), (131, 95), (18, 18), (256, 171), (64, 64), (51, 120),
]

ODD_JPEGS = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "odd-jpegs"


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


def test_photo_set_has_the_variety_the_loader_tests_need(tmp_path: Path) -> None:
    paths = write_photo_set(tmp_path)
    modes, sizes = {}, []
    for p in paths:
        with Image.open(p) as im:
            modes[im.format + "/" + im.mode] = modes.get(im.format + "/" + im.mode, 0) + 1
            sizes.append(im.size)
    assert {"JPEG/L", "JPEG/CMYK", "PNG/RGB"} <= set(modes)
    assert modes["JPEG/RGB"] == len(SIZES)
    ratios = [w / h for w, h in sizes]
    assert min(ratios) < 0.5 and max(ratios) > 2.0
    assert min(min(s) for s in sizes) < 32 < max(max(s) for s in sizes)
    # Photo-like: not flat, with fine detail (noise) as well as large structure.
    arr = np.asarray(Image.open(paths[5]).convert("RGB"), dtype=np.float32)
    assert arr.std() > 30
    assert np.abs(np.diff(arr, axis=1)).mean() > 3
