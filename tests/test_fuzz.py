"""Fuzzed image bytes through the preflight and the decode paths: a clean error or an image,
never a crash.

Inputs are real files (the decodable part of tests/data/odd-jpegs, plus small JPEGs and
PNGs made here) mutated the ways files get damaged: bit flips, overwritten bytes, truncation,
inserted and deleted runs, a marker code changed, a segment length changed, the frame size
changed (PNG with a valid CRC), the scan data hit, a Huffman table made impossible.

- `validate.check_file` (the loaders' preflight, plain Python) is fuzzed in this process: it
  must return None or a reason for any bytes, never raise.
- `preprocess.eval_image` (predict, tf.data eval, the exported model) and
  `preprocess.train_image` (tf.data training) run in a separate worker process, so a
  segfault or abort in a decoder shows up as a failing example instead of killing pytest:
  each input must decode to the right shape or raise a tf.errors.OpError/FastfoodError.
- DALI (the default loader when installed) gets a seeded batch of mutated files that pass
  the preflight, each alone in eval and training mode, in a subprocess: DALI raising a
  Python exception is allowed (the loaders document it), a crash is not.

Hypothesis runs derandomized with a fixed example budget, so CI time is bounded (about 30 s
on two cores) and a failure reproduces; the input that crashed the worker is kept on disk.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.cli import env
from support.corpus import ODD


S = 32  # output size for the decode paths

CORPUS = ("hopper.jpg", "hopper_gray.jpg", "hopper_16bit_qtables.jpg", "orientation_rectangle.jpg",
          "icc-after-SOF.jpg", "pil_sample_cmyk.jpg", "png_named_as.jpg", "rgb.jpg",
          "truncated_app14.jpg", "broken_exif_dpi.jpg", "flower.jpg")
DIMS = (0, 1, 2, 3, 17, 255, 256, 1000, 4096, 65535)
OPS = ("flip", "byte", "truncate", "insert", "delete", "marker", "length", "dims", "scan",
       "huffman")


def _generated() -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(7)
    out = []
    for mode, fmt, kwargs in (("RGB", "JPEG", {}), ("RGB", "JPEG", {"progressive": True}),
                              ("L", "JPEG", {}), ("RGB", "JPEG", {"subsampling": 0}),
                              ("RGBA", "PNG", {}), ("L", "PNG", {}), ("P", "PNG", {}),
                              ("I;16", "PNG", {})):
        if mode == "I;16":
            image = Image.fromarray(rng.integers(0, 65535, (20, 24), np.uint16))
        else:
            bands = len(Image.new(mode, (1, 1)).getbands())
            pixels = rng.integers(0, 256, (20, 24, bands), np.uint8)
            image = Image.fromarray(pixels[..., 0] if bands == 1 else pixels,
                                    "RGBA" if bands == 4 else None)
            image = image.convert(mode)
        buf = io.BytesIO()
        image.save(buf, format=fmt, **kwargs)
        out.append(buf.getvalue())
    return out


SEEDS: list[bytes] = [(ODD / name).read_bytes() for name in CORPUS] + _generated()


# --- mutations ----------------------------------------------------------------------------------


def _markers(data: bytearray) -> list[int]:
    return [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] not in (0, 0xFF)]


def _segments(data: bytearray) -> list[int]:
    """Offsets of JPEG header segments that carry a length (SOI..SOS)."""
    out, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xD8, 0xD9, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        out.append(pos)
        if marker == 0xDA:
            break
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return out


def _set_png_size(data: bytearray, width: int, height: int) -> None:
    at = data.find(b"IHDR")
    if at < 0 or at + 17 > len(data):
        return
    data[at + 4:at + 8] = width.to_bytes(4, "big")
    data[at + 8:at + 12] = height.to_bytes(4, "big")
    data[at + 13:at + 17] = zlib.crc32(bytes(data[at:at + 13])).to_bytes(4, "big")


def mutate(seed: bytes, ops: Sequence[tuple[str, int, int]]) -> bytes:
    """Apply (kind, a, b) mutations in order; a and b are read modulo whatever they index."""
    data = bytearray(seed)
    for kind, a, b in ops:
        n = len(data)
        if n == 0:
            data += bytes([b & 0xFF])
            continue
        if kind == "flip":
            data[a % n] ^= 1 << (b % 8)
        elif kind == "byte":
            data[a % n] = b & 0xFF
        elif kind == "truncate":
            del data[a % (n + 1):]
        elif kind == "insert":
            at = a % (n + 1)
            data[at:at] = bytes([b & 0xFF]) * (1 + (b >> 8) % 16)
        elif kind == "delete":
            del data[a % n:a % n + 1 + b % 64]
        elif kind == "marker" and (marks := _markers(data)):
            data[marks[a % len(marks)] + 1] = b & 0xFF
        elif kind == "length" and (segs := _segments(data)):
            at = segs[a % len(segs)]
            data[at + 2:at + 4] = (b & 0xFFFF).to_bytes(2, "big")
        elif kind == "dims":
            height, width = DIMS[a % len(DIMS)], DIMS[b % len(DIMS)]
            sof = next((i for i in _markers(data) if data[i + 1] in (0xC0, 0xC1, 0xC2)), None)
            if sof is not None and sof + 9 <= n:
                data[sof + 5:sof + 7] = height.to_bytes(2, "big")
                data[sof + 7:sof + 9] = width.to_bytes(2, "big")
            else:
                _set_png_size(data, width, height)
        elif kind == "scan":
            sos = data.find(b"\xff\xda")
            if sos >= 0 and sos + 16 < n - 2:
                data[sos + 16 + a % (n - 2 - sos - 16)] = b & 0xFF
        elif kind == "huffman":
            dht = data.find(b"\xff\xc4")
            if dht >= 0 and dht + 21 <= n:
                data[dht + 5 + a % 16] = b & 0xFF
    return bytes(data)


_op = st.tuples(st.sampled_from(OPS), st.integers(0, 1 << 20), st.integers(0, 1 << 20))
mutated = st.builds(mutate, st.sampled_from(SEEDS), st.lists(_op, min_size=1, max_size=4))


def random_mutation(rng: random.Random) -> bytes:
    ops = [(rng.choice(OPS), rng.randrange(1 << 20), rng.randrange(1 << 20))
           for _ in range(rng.randint(1, 4))]
    return mutate(rng.choice(SEEDS), ops)


# --- the preflight, in this process ---------------------------------------------------------


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(data=st.one_of(mutated, st.binary(max_size=64)))
def test_preflight_returns_a_reason_or_none_for_any_bytes(data: bytes, tmp_path_factory) -> None:
    from fastfood.loaders import validate

    path = tmp_path_factory.getbasetemp() / "preflight.bin"
    path.write_bytes(data)
    reason = validate.check_file(str(path))
    assert reason is None or (isinstance(reason, str) and reason.strip() and "\n" not in reason)
    good, bad = validate.check_files([str(path)])
    assert (good == [0]) == (reason is None) and len(good) + len(bad) == 1


def test_mutations_reach_both_sides_of_the_preflight() -> None:
    """The fuzz inputs are not all thrown out by the preflight (or all let through)."""
    import tempfile

    from fastfood.loaders import validate

    rng = random.Random(3)
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(200):
            path = Path(tmp) / f"{i}.bin"
            path.write_bytes(random_mutation(rng))
            verdicts.append(validate.check_file(str(path)) is None)
    assert 20 < sum(verdicts) < 180, sum(verdicts)


# --- TensorFlow decode paths, in a worker process -------------------------------------------

WORKER = r"""
import json, sys
import tensorflow as tf
from fastfood.errors import FastfoodError
from fastfood.loaders import preprocess
S = int(sys.argv[1])

def attempt(fn):
    try:
        out = fn()
    except (tf.errors.OpError, FastfoodError) as err:
        return "error:" + type(err).__name__
    except Exception as err:  # not a clean error: the test fails on it
        first = (str(err).splitlines() or [""])[0][:200]
        return "UNEXPECTED:" + type(err).__name__ + ": " + first
    if tuple(out.shape) != (S, S, 3) or out.dtype != tf.uint8:
        return "UNEXPECTED: shape " + str(out.shape) + " " + str(out.dtype)
    return "ok"

print("ready", flush=True)
for line in sys.stdin:
    contents = tf.io.read_file(line.strip())
    eval_ = attempt(lambda: preprocess.eval_image(contents, S))
    train = attempt(lambda: preprocess.train_image(contents, tf.constant([1, 2], tf.int64), S))
    print(json.dumps({"eval": eval_, "train": train}), flush=True)
"""


class DecodeWorker:
    """A python process that decodes the files it is sent; restarted after it dies."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen | None = None
        self.crashes: list[tuple[int, Path]] = []

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(S)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env())
        assert self.proc.stdout.readline().strip() == "ready"

    def ask(self, data: bytes) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        path = self.folder / "input.bin"
        path.write_bytes(data)
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:  # the decoder took the process down with it
            code = self.proc.wait()
            kept = self.folder / f"crash{len(self.crashes)}.bin"
            kept.write_bytes(data)
            self.crashes.append((code, kept))
            return {"crash": code, "input": str(kept)}
        return json.loads(line)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory):
    w = DecodeWorker(tmp_path_factory.mktemp("fuzz"))
    yield w
    w.close()


def test_worker_decodes_the_unmutated_seeds(worker: DecodeWorker) -> None:
    for seed in SEEDS:
        assert worker.ask(seed) == {"eval": "ok", "train": "ok"}


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated)
def test_decode_paths_fail_cleanly_on_damaged_bytes(data: bytes, worker: DecodeWorker) -> None:
    answer = worker.ask(data)
    assert "crash" not in answer, f"decoder process died ({answer}); input kept there"
    for path, outcome in answer.items():
        assert outcome == "ok" or outcome.startswith("error:"), (path, outcome)


# --- DALI, in a subprocess --------------------------------------------------------------------

# Prints {"<file> eval|train": outcome}, classified as the TF worker above does: a clean
# failure is TensorFlow's OpError (how DALI's error reaches TF through the plugin) or a
# FastfoodError; any other exception, or a batch of the wrong shape, is "UNEXPECTED" and
# fails the test.
DALI_RUN = r"""
import json, sys
import tensorflow as tf
from fastfood import loaders
from fastfood.errors import FastfoodError
results = {}
for path in sys.argv[1:]:
    for training in (False, True):
        print("start", path, training, file=sys.stderr, flush=True)
        shapes = []
        try:
            ds = loaders.build("dali", [path], [0], training=training, batch_size=1, image_size=32)
            shapes = [tuple(images.shape) for images, _ in ds]
            outcome = "ok"
        except (tf.errors.OpError, FastfoodError) as err:
            outcome = "error:" + type(err).__name__
        except Exception as err:
            first = (str(err).splitlines() or [""])[0][:200]
            outcome = "UNEXPECTED:" + type(err).__name__ + ": " + first
        if any(shape != (1, 32, 32, 3) for shape in shapes):
            outcome = "UNEXPECTED: shapes " + str(shapes)
        results[path + (" train" if training else " eval")] = outcome
print(json.dumps(results))
"""


@pytest.mark.dali
def test_dali_survives_damaged_files_that_pass_the_preflight(tmp_path: Path) -> None:
    from fastfood.loaders import validate

    rng = random.Random(11)
    files: list[str] = []
    while len(files) < 12:
        path = tmp_path / f"m{len(files)}_{rng.randrange(1 << 30)}.jpg"
        path.write_bytes(random_mutation(rng))
        if validate.check_file(str(path)) is None and path.read_bytes() not in SEEDS:
            files.append(str(path))
    proc = subprocess.run([sys.executable, "-c", DALI_RUN, *files], capture_output=True,
                          encoding="utf-8", errors="replace", env=env(), timeout=600)
    started = [line for line in proc.stderr.splitlines() if line.startswith("start ")]
    assert proc.returncode == 0, (f"DALI process died (rc {proc.returncode}) at "
                                  f"{started[-1] if started else '?'}")
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == 2 * len(files)
    bad = {k: v for k, v in results.items() if not (v == "ok" or v.startswith("error:"))}
    assert not bad, bad
