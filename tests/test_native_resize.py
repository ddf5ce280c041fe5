"""fastfood's DALI CPU resize operator (fastfood/loaders/native): built here, bit-identical
to tf.image.resize(bilinear, antialias=True) rounded as preprocess.resize_uint8 rounds, used
by the CPU pipeline, and switched off or failing to build without taking the loader down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("nvidia.dali")

from nvidia.dali import fn, pipeline_def  # noqa: E402

from fastfood.loaders import native  # noqa: E402

from support.images import write_photo_set  # noqa: E402


pytestmark = pytest.mark.dali
REPO = Path(__file__).resolve().parents[1]


def _native(images: list[np.ndarray], height: int, width: int,
            mirror: list[int] | None = None) -> list[np.ndarray]:
    assert native.resize_available(), "the native resize operator did not build or load"

    @pipeline_def(batch_size=len(images), num_threads=2, device_id=None)
    def pipe():
        x = fn.external_source(source=lambda: images, batch=True, layout="HWC")
        if mirror is None:
            return fn.fastfood_resize(x, height=height, width=width)
        flags = fn.external_source(source=lambda: [np.int32(m) for m in mirror], batch=True)
        return fn.fastfood_resize(x, height=height, width=width, mirror=flags)

    p = pipe()
    p.build()
    (out,) = p.run()
    return [np.array(out[i]) for i in range(len(images))]


def _tf_resize(image: np.ndarray, height: int, width: int, antialias: bool = True) -> np.ndarray:
    """What preprocess.resize_uint8 computes, for any output shape and channel count."""
    import tensorflow as tf

    r = tf.image.resize(image, [height, width], method="bilinear", antialias=antialias)
    return tf.cast(tf.round(tf.clip_by_value(r, 0.0, 255.0)), tf.uint8).numpy()


CASES = [
    ((384, 512, 3), 224, 224),  # Food-101's usual shape, shrink
    ((512, 512, 3), 224, 224),
    ((100, 80, 3), 224, 224),  # enlarge
    ((224, 224, 3), 224, 224),  # identity
    ((1, 1, 3), 7, 5),
    ((7, 300, 3), 64, 32),  # shrink one way, enlarge the other
    ((3000, 4, 3), 16, 16),  # a vertical span of hundreds of taps
    ((300, 5, 1), 10, 200),  # gray
    ((480, 640, 4), 224, 224),  # RGBA
    ((50, 900, 2), 33, 17),
]


@pytest.mark.parametrize("shape,height,width", CASES)
def test_bit_identical_to_tensorflow(shape: tuple[int, int, int], height: int, width: int) -> None:
    rng = np.random.default_rng(sum(shape) + height)
    noise = rng.integers(0, 256, size=shape, dtype=np.uint8)
    (got,) = _native([noise], height, width)
    want = _tf_resize(noise, height, width)
    assert got.shape == want.shape == (height, width, shape[2])
    assert np.array_equal(got, want), np.abs(got.astype(int) - want).max()


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 96), w=st.integers(1, 96), oh=st.integers(1, 64), ow=st.integers(1, 64),
       seed=st.integers(0, 2**16))
def test_bit_identical_on_random_shapes(h: int, w: int, oh: int, ow: int, seed: int) -> None:
    image = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    (got,) = _native([image], oh, ow)
    assert np.array_equal(got, _tf_resize(image, oh, ow))


def test_a_batch_of_mixed_sizes_matches_image_by_image() -> None:
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
              for h, w in [(512, 384), (200, 300), (64, 64), (1000, 250), (224, 225)]]
    for image, got in zip(images, _native(images, 96, 96)):
        assert np.array_equal(got, _tf_resize(image, 96, 96))


def test_mirror_flips_exactly_the_samples_asked() -> None:
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
              for h, w in [(384, 512), (90, 70), (300, 301)]]
    got = _native(images, 64, 63, mirror=[1, 0, 1])
    for image, out, flipped in zip(images, got, [True, False, True]):
        want = _tf_resize(image, 64, 63)
        assert np.array_equal(out, want[:, ::-1] if flipped else want)


def test_the_comparison_has_teeth() -> None:
    image = np.random.default_rng(4).integers(0, 256, size=(384, 512, 3), dtype=np.uint8)
    (got,) = _native([image], 224, 224)
    plain = _tf_resize(image, 224, 224, antialias=False)
    assert np.abs(got.astype(int) - plain).mean() > 5  # antialiasing really is applied


def _pipeline_images(tmp_path: Path, name: str, **env: str) -> tuple[np.ndarray, str, str]:
    """Eval images of the CPU pipeline, made in a fresh process with ``env`` added."""
    files = write_photo_set(tmp_path)
    out = tmp_path / f"images-{name}.npy"
    code = (
        "import sys, numpy as np\n"
        "from fastfood.loaders import native\n"
        "from fastfood.loaders.dali_pipeline import make_pipeline\n"
        "from fastfood.loaders.request import LoaderRequest\n"
        "files = sys.argv[2:]\n"
        "req = LoaderRequest(kind='dali', training=False, batch_size=len(files), image_size=64,\n"
        "                    num_threads=2)\n"
        "p = make_pipeline(files, [0] * len(files), req, device='cpu')\n"
        "p.build()\n"
        "x, _ = p.run()\n"
        "np.save(sys.argv[1], np.stack([np.array(x[i]) for i in range(len(files))]))\n"
        "print('native' if native.resize_available() else 'dali')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(out), *files], cwd=REPO,
                          env={**os.environ, **env}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.load(out), proc.stdout.strip(), proc.stderr


def _close(a: np.ndarray, b: np.ndarray) -> None:
    diff = np.abs(a.astype(np.int16) - b).reshape(len(a), -1).mean(axis=1)
    assert a.shape == b.shape
    assert diff.max() < 0.1, diff  # the same filter; only float rounding differs


def test_switching_it_off_uses_dali_resize_with_the_same_images(tmp_path: Path) -> None:
    ours, used, _ = _pipeline_images(tmp_path, "native")
    assert used == "native"
    dalis, used, err = _pipeline_images(tmp_path, "off", FASTFOOD_NATIVE="0")
    assert used == "dali" and "unavailable" not in err  # off on purpose: no warning
    _close(ours, dalis)


def test_a_failed_build_warns_once_and_the_pipeline_still_runs(tmp_path: Path) -> None:
    ours, _, _ = _pipeline_images(tmp_path, "native")
    fallback, used, err = _pipeline_images(tmp_path, "nocompiler", CXX="no-such-compiler-xyz",
                                           FASTFOOD_NATIVE_CACHE=str(tmp_path / "empty-cache"))
    assert used == "dali"
    warnings = [ln for ln in err.splitlines() if "native DALI resize unavailable" in ln]
    assert len(warnings) == 1 and "no C++ compiler (no-such-compiler-xyz)" in warnings[0], err
    _close(ours, fallback)


def test_missing_compiler_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTFOOD_NATIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    with pytest.raises(native.NativeBuildError, match="no C\\+\\+ compiler \\(no-such-compiler-xyz\\)"):
        native.build()
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.so"))


def test_failed_build_leaves_no_partial_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTFOOD_NATIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CXX", "false")  # a "compiler" that always fails
    with pytest.raises(native.NativeBuildError, match="compiling resize_op.cc failed"):
        native.build()
    assert not list((tmp_path / "cache").rglob("*.so"))


def test_build_command_prints_the_library() -> None:
    proc = subprocess.run([sys.executable, "-m", "fastfood.loaders.native"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path.is_file() and path.name == native.LIBRARY_NAME


def test_describe_says_so_without_dali(tmp_path: Path) -> None:
    code = ("import sys\n"
            "sys.modules['nvidia.dali'] = None  # as if DALI were not installed\n"
            "from fastfood.loaders import native\n"
            "print(native.describe())\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "FASTFOOD_NATIVE_CACHE": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "fn.resize (native unavailable: DALI is not installed)"
