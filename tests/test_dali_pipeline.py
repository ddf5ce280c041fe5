"""The DALI pipeline on its own: no TensorFlow, standalone benchmark, DALI's own sharding,
flip rate and reproducibility (CPU backend here)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("nvidia.dali")

from fastfood.loaders import order  # noqa: E402
from fastfood.loaders.dali_pipeline import make_pipeline as _make_pipeline  # noqa: E402
from fastfood.loaders.request import LoaderRequest  # noqa: E402
from support.images import write_photo_set, write_tiny_set  # noqa: E402


pytestmark = pytest.mark.dali
REPO = Path(__file__).resolve().parents[1]


def make_pipeline(files, labels, **request):
    """The loader's pipeline for a request given as keywords (CPU backend)."""
    return _make_pipeline(files, labels, LoaderRequest(kind="dali", **request))


def _run(pipe, batches: int) -> tuple[list[np.ndarray], list[int]]:
    pipe.build()
    images, labels = [], []
    for _ in range(batches):
        x, y = pipe.run()
        images += [np.array(x[i]) for i in range(len(x))]
        labels += [int(np.array(y[i])) for i in range(len(y))]
    return images, labels


def test_pipeline_module_does_not_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "import fastfood.loaders.dali_pipeline as p\n"
        "import fastfood.benchmark.dali_alone as b\n"
        "bad = sorted(m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.'))\n"
        "print(len(bad), bad[:3])\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_standalone_benchmark_prints_json(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    write_tiny_set(root / "a", 5)
    write_tiny_set(root / "b", 5, seed=1)
    (root / "b" / "broken.jpg").write_bytes(b"")
    for mode in ("train", "eval"):
        proc = subprocess.run(
            [sys.executable, "-m", "fastfood.benchmark.dali_alone", "throughput",
             "--files-from", str(root),
             "--batch-size", "4", "--image-size", "32", "--device", "cpu", "--mode", mode,
             "--iters", "3", "--warmup", "1", "--num-threads", "1"],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["img_per_s"] > 0 and result["mode"] == mode
        assert result["files"] == 10 and result["skipped_files"] == 1
    # A list file of "path label" lines works too.
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p} {i}\n" for i, p in enumerate(sorted((root / "a").iterdir()))))
    proc = subprocess.run(
        [sys.executable, "-m", "fastfood.benchmark.dali_alone", "throughput",
         "--files-from", str(listing),
         "--batch-size", "2", "--image-size", "16", "--device", "cpu", "--iters", "2",
         "--warmup", "0", "--num-threads", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["files"] == 5


@pytest.mark.parametrize("n,count", [(10, 3), (29, 4), (7, 2)])
def test_eval_pipeline_reads_its_padded_shard_in_order_pass_after_pass(
        tmp_path: Path, n: int, count: int) -> None:
    # Each replica's eval pipeline gets its shard (order.shard_bounds) padded to the
    # largest shard's whole batches; padding comes out labelled -1, and a second pass
    # (the next validation) reads the same again.
    files = write_tiny_set(tmp_path, n, size=(8, 8))
    for i in range(count):
        start, end = order.shard_bounds(n, (i, count))
        idx, valid = order.padded_eval_indices(n, 2, (i, count))
        labels = [int(j) if ok else -1 for j, ok in zip(idx, valid)]
        pipe = make_pipeline([files[j] for j in idx], labels, training=False, batch_size=2,
                             image_size=8, num_threads=1)
        _, got = _run(pipe, len(idx) // 2)
        _, again = _run(pipe, len(idx) // 2)
        assert got == again == list(range(start, end)) + [-1] * (len(idx) - (end - start))


def _png(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(arr).save(out, "PNG")
    return out.getvalue()


def test_flip_rate_is_about_half(tmp_path: Path) -> None:
    # 8x8 images: the 'square' crop keeps the whole (small) image and the resize to 8 is the
    # identity, so every output is the image or its mirror.
    rng = np.random.default_rng(0)
    arrays, files = [], []
    for i in range(20):
        arr = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        (tmp_path / f"{i}.png").write_bytes(_png(arr))
        arrays.append(arr)
        files.append(str(tmp_path / f"{i}.png"))
    pipe = make_pipeline(files, list(range(20)), training=True, batch_size=20, image_size=8,
                         crop="square", seed=3, num_threads=1)
    images, labels = _run(pipe, 20)  # 400 samples, 20 passes over the files
    flipped = [np.array_equal(x, arrays[y][:, ::-1]) for x, y in zip(images, labels)]
    same = [np.array_equal(x, arrays[y]) for x, y in zip(images, labels)]
    assert all(f or s for f, s in zip(flipped, same))
    assert abs(sum(flipped) - 200) < 35  # Binomial(400, 0.5), 3.5 sigma


def test_same_seed_same_pixels_other_seed_other_crops(tmp_path: Path) -> None:
    files = write_photo_set(tmp_path)
    kw = dict(training=True, batch_size=len(files), image_size=32, num_threads=1)
    a, la = _run(make_pipeline(files, list(range(len(files))), seed=11, **kw), 1)
    b, lb = _run(make_pipeline(files, list(range(len(files))), seed=11, **kw), 1)
    c, lc = _run(make_pipeline(files, list(range(len(files))), seed=12, **kw), 1)
    assert la == lb == lc == list(range(len(files)))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert sum(np.array_equal(x, y) for x, y in zip(a, c)) < 3


def test_inception_crops_vary_in_scale(tmp_path: Path) -> None:
    # A flat image with one thin black frame line: how much of the frame survives the crop
    # tells the crop's position and scale; random-resized crops must vary it a lot.
    arr = np.full((96, 96, 3), 255, np.uint8)
    arr[47:49, :] = 0
    (tmp_path / "x.png").write_bytes(_png(arr))
    pipe = make_pipeline([str(tmp_path / "x.png")], [0], training=True, batch_size=64,
                         image_size=32, seed=1, num_threads=1)
    images, _ = _run(pipe, 1)
    dark = np.array([(x < 128).mean() for x in images])
    # Zoomed-in crops make the line thick, zoomed-out ones thin, off-centre ones drop it.
    assert dark.max() > 2 * np.median(dark[dark > 0])
    assert (dark == 0).any() or dark.min() < 0.5 * np.median(dark)


def test_gpu_decoder_arguments_exist_in_this_dali() -> None:
    # The mixed (GPU) pipeline cannot be built without CUDA; at least check that every
    # argument it passes is one the installed DALI's decoders accept.
    from nvidia.dali import backend

    from fastfood.loaders.dali_pipeline import decoder_args

    gpu_args = set(decoder_args("gpu")) - {"device"}
    assert {"hw_decoder_load", "preallocate_width_hint", "preallocate_height_hint",
            "device_memory_padding", "host_memory_padding", "adjust_orientation"} <= gpu_args
    for op in ("decoders__Image", "decoders__ImageRandomCrop", "decoders__ImageSlice",
               "decoders__ImageCrop"):
        accepted = set(backend.GetSchema(op).GetArgumentNames())
        assert gpu_args <= accepted, (op, gpu_args - accepted)
    assert decoder_args("gpu")["device"] == "mixed" and decoder_args("cpu")["device"] == "cpu"
    assert decoder_args("cpu")["adjust_orientation"] is False
