"""Shared pieces for the reliability tests (no tests in here): how to run the CLI, tiny
datasets of noisy JPEGs, the odd-jpegs corpus, and checks on checkpoint folders.

Everything is sized for a 2-core CPU: width 0.125, 32 px images, batches of 4.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from test_predict_support import run_cli

REPO = Path(__file__).resolve().parents[1]


def odd_jpegs_dir() -> Path:
    """The odd-jpegs corpus (odd real files from Pillow's test suite, see its README).

    The one place that knows where it lives: vendored under tests/data, else the team's
    shared copy beside the checkout.
    """
    vendored = REPO / "tests" / "data" / "odd-jpegs"
    return vendored if vendored.is_dir() else REPO.parent / "shared" / "testdata" / "odd-jpegs"


ODD = odd_jpegs_dir()

# Per odd-jpegs/README.md and the loaders' preflight: what every loader refuses up front.
PREFLIGHT_REJECTS = ("empty.jpg", "text_named_as.jpg", "truncated_jpeg.jpg", "ultrahdr.jpg",
                     "junk_jpeg_header.jpg")
# Odd but decodable files (grayscale, CMYK, PNG under a .jpg name, progressive, EXIF, MPO).
DECODABLE = ("hopper_gray.jpg", "pil_sample_cmyk.jpg", "png_named_as.jpg",
             "icc_profile_big.jpg", "hopper_orientation_6.jpg", "hopper_16bit_qtables.jpg")

# A model that builds and steps in well under a second on a CPU.
TINY = ["--weights", "none", "--width", "0.125", "--image-size", "32", "--batch-size", "4",
        "--precision", "fp32", "--no-xla"]


def env(**extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess: quiet TF, no GPU, unbuffered, nothing from ~/."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
            "PYTHONUNBUFFERED": "1", **extra}


def fastfood_argv() -> list[str]:
    """The real console entry point (`fastfood`), or the same main() when it is not installed."""
    script = Path(sys.executable).parent / "fastfood"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from fastfood.cli import main; main()"]


def run_subprocess(argv: list[str], cwd: Path, timeout: float = 300,
                   **extra_env: str) -> subprocess.CompletedProcess[str]:
    """`fastfood ARGV` as its own process: what a user's shell sees."""
    return subprocess.run([*fastfood_argv(), *argv], cwd=cwd, env=env(**extra_env),
                          capture_output=True, text=True, timeout=timeout)


def popen(argv: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    """`fastfood ARGV` in the background; stdout and stderr go to `log` (no pipe to fill)."""
    handle = open(log, "w")
    return subprocess.Popen([*fastfood_argv(), *argv], cwd=cwd, env=env(),
                            stdout=handle, stderr=subprocess.STDOUT, text=True)


# `fastfood ARGV` in this process: (exit code, stdout, stderr). main() turns FastfoodError
# and click usage errors into an exit code; any other exception propagates, which is exactly
# the case where the real command would print a traceback, so the test fails with it.
run_in_process = run_cli


def noise_jpeg(seed: int, size: tuple[int, int] = (40, 48), quality: int = 90) -> bytes:
    """A JPEG of random pixels (real entropy-coded data, unlike a flat colour)."""
    from PIL import Image

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


def write_images(folder: Path, count: int, seed: int, start: int = 0) -> list[Path]:
    """`count` noise JPEGs named 000.jpg, 001.jpg, ... (from `start`) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        path = folder / f"{i:03d}.jpg"
        path.write_bytes(noise_jpeg(seed * 1000 + i))
        paths.append(path)
    return paths


def write_presplit(root: Path, train: dict[str, int], val: dict[str, int]) -> Path:
    """root/train/<class>/NNN.jpg and root/val/<class>/NNN.jpg, noise images."""
    for split, counts in (("train", train), ("val", val)):
        for ci, (name, n) in enumerate(sorted(counts.items())):
            write_images(root / split / name, n, seed=ci + (100 if split == "val" else 0))
    return root


def tiny_model_and_optimizer():
    """A width-0.125 VGG19 at 32 px (2 classes) and a built SGD optimizer, seeded."""
    import keras

    from fastfood.model import vgg19
    from fastfood.train.step import make_optimizer

    keras.utils.set_random_seed(0)
    model = vgg19(2, image_size=32, width=0.125)
    optimizer = make_optimizer(0.01, 0.9, loss_scale=False)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def listed_checkpoints(run_dir: Path) -> list[str]:
    """Prefixes named by ckpt/checkpoint (oldest first): what a resume may pick up."""
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(str(run_dir / "ckpt"))
    return list(state.all_model_checkpoint_paths) if state else []


def read_every_tensor(prefix: str) -> dict[str, Any]:
    """Read every tensor of a checkpoint (raises on a half-written or damaged one)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def checkpoint_step(prefix: str) -> int:
    """The global step a checkpoint holds (the loop's own `step` variable, not its name)."""
    values = read_every_tensor(prefix)
    return int(values["step/.ATTRIBUTES/VARIABLE_VALUE"])
