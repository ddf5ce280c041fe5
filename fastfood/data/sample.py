"""The built-in sample: a small synthetic dataset in Food-101 layout that a tiny CNN
learns in a couple of minutes on a laptop CPU.

Eight classes, each a texture (stripes, checkers, dots, ...) in a class hue. Every
image jitters hue, saturation, scale, phase, rotation and lighting and adds pixel noise,
and sides range from 48 to 400 px, so decoding, cropping and resizing are exercised as
with real photos. It is generated (in a few seconds) rather than shipped, and the bytes
are a pure function of the seed (for given numpy, Pillow and libjpeg builds).
"""

from __future__ import annotations

import colorsys
import io
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from fastfood.errors import FastfoodError
from fastfood.paths import cache_dir

VERSION = 1
MARKER = "fastfood-sample.json"
TRAIN_PER_CLASS = 60
TEST_PER_CLASS = 15
MIN_SIDE, MAX_SIDE = 48, 400

Mask = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]


def _soft(t: np.ndarray, sharpness: float = 2.5) -> np.ndarray:
    """A sine or distance turned into a 0..1 mask with slightly soft edges."""
    return np.clip(0.5 + sharpness * t, 0.0, 1.0)


def _wave(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.sin(2 * np.pi * (t + rng.random()))


def _stripes(u, v, rng):
    return _soft(_wave(v, rng))


def _bars(u, v, rng):
    return _soft(_wave(u, rng))


def _checkers(u, v, rng):
    return _soft(2 * _wave(u, rng) * _wave(v, rng))


def _diamonds(u, v, rng):
    return _checkers((u + v) / math.sqrt(2), (u - v) / math.sqrt(2), rng)


def _dots(u, v, rng):
    du = (u + rng.random()) % 1.0 - 0.5
    dv = (v + rng.random()) % 1.0 - 0.5
    return _soft(8 * (rng.uniform(0.2, 0.32) - np.sqrt(du * du + dv * dv)))


def _rings(u, v, rng):
    cu, cv = rng.uniform(-2, 2, size=2)
    return _soft(_wave(np.sqrt((u - cu) ** 2 + (v - cv) ** 2), rng))


def _waves(u, v, rng):
    bend = rng.uniform(0.25, 0.5) * np.sin(2 * np.pi * (u * rng.uniform(0.25, 0.45) + rng.random()))
    return _soft(_wave(v + bend, rng))


def _grid(u, v, rng):
    width = rng.uniform(0.1, 0.16)

    def lines(t):
        return _soft(8 * (np.abs((t + rng.random()) % 1.0 - 0.5) - (0.5 - width)))

    return np.maximum(lines(u), lines(v))


# (class name, display name, hue in 0..1, texture). Hues are 45 degrees apart and every
# texture looks the same after a horizontal flip, so training augmentation keeps labels.
CLASSES: tuple[tuple[str, str, float, Mask], ...] = (
    ("tomato_stripes", "Tomato stripes", 0.000, _stripes),
    ("mango_checkers", "Mango checkers", 0.125, _checkers),
    ("lime_dots", "Lime dots", 0.250, _dots),
    ("basil_waves", "Basil waves", 0.375, _waves),
    ("mint_rings", "Mint rings", 0.500, _rings),
    ("blueberry_bars", "Blueberry bars", 0.625, _bars),
    ("plum_grid", "Plum grid", 0.750, _grid),
    ("beet_diamonds", "Beet diamonds", 0.875, _diamonds),
)


def _side(rng: np.random.Generator) -> int:
    """Log-uniform in [MIN_SIDE, MAX_SIDE]: ~14% under 64 px, ~27% over 224 px."""
    return int(round(math.exp(rng.uniform(math.log(MIN_SIDE), math.log(MAX_SIDE)))))


def _rgb(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255.0


def render(class_index: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 HxWx3 image of class `class_index`, all randomness from `rng`."""
    _, _, hue, mask_fn = CLASSES[class_index]
    h, w = _side(rng), _side(rng)
    short = min(h, w)
    cycles = rng.uniform(3.0, 6.0)  # pattern periods across the short side
    angle = rng.uniform(-0.17, 0.17)  # about +-10 degrees
    y = ((np.arange(h, dtype=np.float32) - h / 2) * (cycles / short))[:, None]
    x = ((np.arange(w, dtype=np.float32) - w / 2) * (cycles / short))[None, :]
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = cos * x - sin * y, sin * x + cos * y
    mask = mask_fn(u, v, rng).astype(np.float32, copy=False)[..., None]

    fg = _rgb(hue + rng.uniform(-0.025, 0.025), rng.uniform(0.65, 0.95), rng.uniform(0.75, 1.0))
    bg = _rgb(hue + rng.uniform(-0.05, 0.05), rng.uniform(0.1, 0.4), rng.uniform(0.1, 0.35))
    image = mask * (fg - bg)
    image += bg
    # Uneven lighting: a linear ramp across the image in a random direction.
    theta = rng.uniform(0, 2 * np.pi)
    strength = rng.uniform(0.0, 0.35) / cycles
    image *= (1.0 + strength * (math.cos(theta) * x + math.sin(theta) * y))[..., None]
    noise = rng.standard_normal((h, w, 3), dtype=np.float32)
    noise *= rng.uniform(4.0, 14.0)
    image += noise
    return np.clip(image, 0, 255, out=image).astype(np.uint8)


def _jpeg(image: np.ndarray, rng: np.random.Generator) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=int(rng.integers(85, 91)))
    return out.getvalue()


def sample_info(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker of a complete sample in `directory` (seed, counts), else None.

    The marker is written last, so a folder with one holds a whole sample.
    """
    try:
        info = json.loads((Path(directory) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("version") != VERSION:
        return None
    return info


def _generate(root: Path, seed: int) -> dict[str, Any]:
    """Write the whole sample under `root` (an empty folder) and return its marker."""
    meta = root / "meta"
    meta.mkdir(parents=True)
    train_lines, test_lines = [], []
    for ci, (name, *_rest) in enumerate(CLASSES):
        folder = root / "images" / name
        folder.mkdir(parents=True)
        for i in range(TRAIN_PER_CLASS + TEST_PER_CLASS):
            rng = np.random.default_rng([VERSION, seed, ci, i])
            image_id = f"{i:04d}"
            (folder / f"{image_id}.jpg").write_bytes(_jpeg(render(ci, rng), rng))
            (train_lines if i < TRAIN_PER_CLASS else test_lines).append(f"{name}/{image_id}")
    (meta / "classes.txt").write_text("".join(f"{c[0]}\n" for c in CLASSES))
    (meta / "labels.txt").write_text("".join(f"{c[1]}\n" for c in CLASSES))
    (meta / "train.txt").write_text("".join(f"{line}\n" for line in train_lines))
    (meta / "test.txt").write_text("".join(f"{line}\n" for line in test_lines))
    info = {
        "format": "fastfood-sample",
        "version": VERSION,
        "seed": seed,
        "classes": len(CLASSES),
        "train": len(train_lines),
        "test": len(test_lines),
    }
    (root / MARKER).write_text(json.dumps(info, indent=2) + "\n")
    return info


def _merge(src: Path, dest: Path) -> None:
    """Move every file of src into dest (replacing same-named ones), marker last."""
    files = sorted(p for p in src.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name == MARKER)
    for path in files:
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)


def write_sample(directory: str | os.PathLike[str], seed: int = 0, *, force: bool = False) -> Path:
    """Write the sample into `directory` and return its absolute path.

    A folder that already holds the sample with this seed is left as it is. Any other
    non-empty folder is refused unless `force`, which writes the sample's files over
    it (deleting nothing else). The sample is built in a hidden sibling folder and
    renamed into place, so an interrupted run leaves no partial sample behind.
    """
    target = Path(os.path.expanduser(os.fspath(directory))).absolute()
    seed = int(seed)
    info = sample_info(target)
    if info is not None and info.get("seed") == seed and not force:
        return target
    if target.exists() and not target.is_dir():
        raise FastfoodError(f"cannot write the sample to {target}: it is a file, not a folder")
    nonempty = target.is_dir() and any(target.iterdir())
    if nonempty and not force:
        what = f"holds the sample with seed {info['seed']}" if info else "is not empty"
        raise FastfoodError(f"{target} {what}; use --force to write the sample over it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as err:
        blocker = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker else err.strerror or str(err)
        raise FastfoodError(f"cannot create {target}: {why}") from None
    try:
        _generate(tmp, seed)
        if nonempty:
            _merge(tmp, target)
        else:
            if target.is_dir():
                target.rmdir()
            try:
                os.rename(tmp, target)
            except OSError:
                if (sample_info(target) or {}).get("seed") != seed:
                    raise  # not a concurrent writer finishing first: a real failure
    except OSError as err:
        raise FastfoodError(f"cannot write the sample to {target}: {err.strerror or err}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def default_sample() -> Path:
    """The sample (seed 0) in the cache folder, generated once on first use."""
    target = cache_dir() / f"sample-v{VERSION}"
    info = sample_info(target)
    if info is not None and info.get("seed") == 0:
        return target
    if target.exists():  # left over from an older or interrupted version: replace it
        stale = target.with_name(f".{target.name}.stale-{os.getpid()}")
        os.rename(target, stale)
        shutil.rmtree(stale, ignore_errors=True)
    return write_sample(target, seed=0)
