"""Generate a deterministic benchmark dataset of photo-like JPEGs in a class-folder layout.

Why not the built-in sample: loader speed is dominated by JPEG decoding, and decode cost
depends on pixel count and on how many DCT coefficients survive quantisation. Flat colours
decode unrealistically fast and pure noise unrealistically slowly, so these images mix
what photos have: smooth colour gradients and blobs, soft-edged shapes, 1/f ("pink")
texture, a little sensor noise, all slightly blurred. At quality ~90 that gives files of
roughly 30-100 KB at Food-101's sizes (<= 512 px on the long side), like the real thing.

Each image depends only on (seed, index), so the output is identical whatever the number
of worker processes, and re-running with the same arguments rewrites the same bytes.

    python benchmarks/make_dataset.py OUT --n 1200 --seed 0
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = (
    "apple_pie", "bibimbap", "caesar_salad", "donuts", "falafel",
    "guacamole", "hamburger", "pizza", "ramen", "sushi",
)  # fmt: skip

# (width, height, weight): Food-101 is mostly 512x384 / 384x512 / 512x512.
SIZES = ((512, 384, 0.45), (384, 512, 0.2), (512, 512, 0.2))
OTHER_SIZE_WEIGHT = 0.15  # any other shape with a 512 px long side (>= 256 px short side)


def image_size(rng: np.random.Generator) -> tuple[int, int]:
    """A (width, height) drawn from Food-101-like proportions."""
    weights = [w for _, _, w in SIZES] + [OTHER_SIZE_WEIGHT]
    pick = rng.choice(len(weights), p=np.asarray(weights) / sum(weights))
    if pick < len(SIZES):
        return SIZES[pick][0], SIZES[pick][1]
    short = int(rng.integers(256, 512))
    return (512, short) if rng.random() < 0.6 else (short, 512)


def pink_noise(rng: np.random.Generator, h: int, w: int, beta: float) -> np.ndarray:
    """Zero-mean, unit-std noise with an amplitude spectrum ~ 1/f**beta (photos: beta ~ 1)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    shape = (h, w // 2 + 1)
    spectrum = rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(
        shape, dtype=np.float32
    )
    spectrum /= (f**beta).astype(np.float32)
    spectrum[0, 0] = 0.0
    out = np.fft.irfft2(spectrum, s=(h, w))
    return (out / (out.std() + 1e-8)).astype(np.float32)


def class_palette(label: int) -> np.ndarray:
    """Three base colours per class, so classes differ a little on average (not a task)."""
    prng = np.random.default_rng(1000 + label)
    return prng.uniform(30, 225, size=(3, 3)).astype(np.float32)


def render(seed: int, index: int, label: int) -> Image.Image:
    """One photo-like RGB image; a pure function of (seed, index, label)."""
    rng = np.random.default_rng([seed, index])
    w, h = image_size(rng)
    palette = class_palette(label) + rng.normal(0, 20, size=(3, 3)).astype(np.float32)

    # Smooth content is built at 1/4 resolution and upsampled: it has no fine detail
    # to lose, and it is most of the arithmetic.
    lh, lw = h // 4, w // 4
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.cos(angle) * xx / lw + np.sin(angle) * yy / lh
    t = (t - t.min()) / (np.ptp(t) + 1e-6)
    low = palette[0] * (1 - t[..., None]) + palette[1] * t[..., None]
    # Large soft colour blobs (plates, sauces, lighting).
    for _ in range(int(rng.integers(3, 7))):
        cy, cx = rng.uniform(0, lh), rng.uniform(0, lw)
        sy, sx = rng.uniform(0.08, 0.35) * lh, rng.uniform(0.08, 0.35) * lw
        g = np.exp(-(((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2) / 2)[..., None]
        colour = palette[int(rng.integers(0, 3))] + rng.normal(0, 25, 3)
        low = low * (1 - 0.8 * g) + colour * 0.8 * g
    # Chroma texture: weaker, coarser per-channel 1/f noise (cameras subsample chroma too).
    amp = rng.uniform(16, 26)
    for c in range(3):
        low[..., c] += 0.35 * amp * pink_noise(rng, lh, lw, beta=1.0)
    smooth = Image.fromarray(np.clip(low, 0, 255).astype(np.uint8)).resize(
        (w, h), Image.BICUBIC
    )

    # Luminance texture at full resolution: this is what fills the DCT blocks.
    img = np.asarray(smooth, dtype=np.float32)
    img = img + (amp * pink_noise(rng, h, w, beta=rng.uniform(0.9, 1.2)))[..., None]
    canvas = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))

    # Soft-edged shapes: ellipses, rectangles and polygons (food items, cutlery, edges).
    overlay = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(int(rng.integers(6, 16))):
        rgb = np.clip(palette[int(rng.integers(0, 3))] + rng.normal(0, 40, 3), 0, 255)
        fill = tuple(int(v) for v in rgb) + (int(rng.integers(120, 230)),)
        x0, y0 = rng.uniform(-0.1 * w, w), rng.uniform(-0.1 * h, h)
        x1, y1 = x0 + rng.uniform(0.03, 0.35) * w, y0 + rng.uniform(0.03, 0.35) * h
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif kind == 1:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            pts = [(float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))) for _ in range(5)]
            draw.polygon(pts, fill=fill)
    canvas = Image.alpha_composite(canvas.convert("RGBA"), overlay).convert("RGB")

    # Lens softness (also softens the shapes' edges), then a little sensor noise on top.
    canvas = canvas.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.6, 1.1))))
    arr = np.asarray(canvas, dtype=np.float32)
    sigma = np.float32(rng.uniform(1.0, 2.5))
    arr = arr + sigma * rng.standard_normal(arr.shape, dtype=np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _write_one(job: tuple[str, int, int, int, int]) -> int:
    path, seed, index, label, quality = job
    img = render(seed, index, label)
    tmp = path + ".tmp"
    img.save(tmp, format="JPEG", quality=quality)
    os.replace(tmp, path)
    return os.path.getsize(path)


def jobs(out: Path, n: int, seed: int, num_classes: int) -> list[tuple[str, int, int, int, int]]:
    """(path, seed, index, label, quality) for every image, round-robin over classes."""
    rng = np.random.default_rng([seed, 0xDA7A])
    qualities = rng.integers(85, 96, size=n)  # real datasets mix encoder settings a little
    out_jobs = []
    for i in range(n):
        label = i % num_classes
        path = out / CLASSES[label] / f"{i:06d}.jpg"
        out_jobs.append((str(path), seed, i, label, int(qualities[i])))
    return out_jobs


def make_dataset(
    out: str | Path, n: int = 1200, seed: int = 0, num_classes: int = 10, workers: int = 0
) -> list[int]:
    """Write `n` JPEGs under `out/<class>/`; returns their sizes in bytes, in index order.

    `workers` processes (0: all cores) share the work; the bytes do not depend on it.
    """
    if not 1 <= num_classes <= len(CLASSES):
        raise ValueError(f"num_classes must be 1..{len(CLASSES)}, got {num_classes}")
    out = Path(out)
    for name in CLASSES[:num_classes]:
        (out / name).mkdir(parents=True, exist_ok=True)
    todo = jobs(out, n, seed, num_classes)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or n < 8:
        return [_write_one(j) for j in todo]
    # numpy's FFT is single-threaded: processes are what uses the cores.
    with multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork").Pool(
        workers
    ) as pool:
        return pool.map(_write_one, todo, chunksize=8)


def describe_sizes(sizes: list[int]) -> str:
    """One line with the file-size distribution in KB."""
    kb = sorted(s / 1024 for s in sizes)
    q = statistics.quantiles(kb, n=20) if len(kb) > 1 else kb * 19
    return (
        f"{len(kb)} files, {sum(kb) / 1024:.1f} MB: KB min {kb[0]:.1f} p5 {q[0]:.1f} "
        f"median {statistics.median(kb):.1f} p95 {q[-1]:.1f} max {kb[-1]:.1f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output folder (class sub-folders are made)")
    parser.add_argument("--n", type=int, default=1200, help="number of images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", type=int, default=10, help=f"1..{len(CLASSES)}")
    parser.add_argument("--workers", type=int, default=0, help="processes (0: all cores)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sizes = make_dataset(args.out, args.n, args.seed, args.classes, args.workers)
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")
    print(describe_sizes(sizes))


if __name__ == "__main__":
    main()
