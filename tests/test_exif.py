"""--exif: phone-style JPEGs stored sideways with an EXIF Orientation tag (1-8) come out
upright, the same, on every path: the graph parser, tf.data and DALI (eval and training),
predict's direct decode, and eval_image (what serve and the exported model run)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

import fastfood.loaders as loaders
from fastfood.config import RunConfig
from fastfood.inference.batches import Batch, decode_batches
from fastfood.loaders import exif
from fastfood.loaders.preprocess import eval_image
from fastfood.rundir import RunInfo
from support.images import photo_array

S = 16
# Pillow's transposes that exif_transpose applies for each tag, and their inverses: a
# photo stored as inverse(upright) with tag o displays as upright.
SHOW = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90}
STORE = {**SHOW, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def _exif_mm(orientation: int) -> bytes:
    """A big-endian ('MM') EXIF block, Orientation as the second IFD0 entry."""
    ifd = struct.pack(">H", 2)
    ifd += struct.pack(">HHI4s", 0x010F, 2, 4, b"abc\0")  # Make
    ifd += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    return b"Exif\0\0" + b"MM\0\x2a" + struct.pack(">I", 8) + ifd + b"\0\0\0\0"


def phone_jpeg(upright: np.ndarray, orientation: int, big_endian: bool = False) -> bytes:
    """JPEG bytes whose stored pixels display as ``upright`` under ``orientation``."""
    image = Image.fromarray(upright)
    if orientation in STORE:
        image = image.transpose(STORE[orientation])
    out = io.BytesIO()
    if big_endian:
        image.save(out, "JPEG", quality=95)
        data = out.getvalue()
        block = _exif_mm(orientation)
        return data[:2] + b"\xff\xe1" + struct.pack(">H", len(block) + 2) + block + data[2:]
    tags = Image.Exif()
    tags[0x0112] = orientation
    image.save(out, "JPEG", quality=95, exif=tags.tobytes())
    return out.getvalue()


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _upright() -> np.ndarray:
    """A tall photo with no symmetry, so every wrong turn shows."""
    return photo_array(40, 28, np.random.default_rng(7))


@pytest.mark.parametrize("big_endian", [False, True])
def test_tag_is_read_from_the_bytes(big_endian: bool) -> None:
    arr = _upright()
    for o in range(1, 9):
        data = phone_jpeg(arr, o, big_endian)
        assert int(exif.orientation(tf.constant(data))) == o
        decoded = tf.io.decode_jpeg(data, dct_method="INTEGER_ACCURATE")
        ours = exif.upright(decoded, exif.orientation(tf.constant(data))).numpy()
        pillow = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
        assert ours.shape == pillow.shape == (40, 28, 3)  # upright: tall again
        assert _diff(ours, pillow) <= 0.5, o  # the same turn, on the same decoded pixels
    plain = io.BytesIO()
    Image.fromarray(arr).save(plain, "JPEG")
    png = io.BytesIO()
    Image.fromarray(arr).save(png, "PNG")
    broken = phone_jpeg(arr, 6)[:30]  # cut inside the EXIF block
    for data in (plain.getvalue(), png.getvalue(), broken, b"", b"\xff\xd8\xff"):
        assert int(exif.orientation(tf.constant(data))) == 1


def _write(tmp_path: Path, arr: np.ndarray) -> tuple[list[str], list[np.ndarray]]:
    """The eight phone JPEGs (little- and big-endian tags), and each one's upright pixels
    as Pillow decodes and turns them."""
    files, upright = [], []
    for o in range(1, 9):
        files.append(str(tmp_path / f"o{o}.jpg"))
        Path(files[-1]).write_bytes(phone_jpeg(arr, o, big_endian=o % 2 == 0))
        upright.append(np.asarray(ImageOps.exif_transpose(Image.open(files[-1]))))
    return files, upright


def _eval_view(arr: np.ndarray) -> np.ndarray:
    png = io.BytesIO()
    Image.fromarray(arr).save(png, "PNG")
    return eval_image(tf.constant(png.getvalue()), S).numpy()


def _eval(kind: str, files: list[str], on: bool) -> np.ndarray:
    ds = loaders.build(kind, files, list(range(len(files))), training=False, batch_size=4,
                       image_size=S, exif=on)
    return np.concatenate([x.numpy()[y.numpy() >= 0] for x, y in ds])


BOUND = 1.0  # DALI against TensorFlow, 0-255 (tests/test_parity.py's bound)


@pytest.mark.dali
def test_every_eval_path_gives_the_upright_pixels(tmp_path: Path) -> None:
    files, upright = _write(tmp_path, _upright())
    want = [_eval_view(u) for u in upright]
    paths = {
        "eval_image": np.stack([eval_image(tf.io.read_file(f), S, exif=True).numpy()
                                for f in files]),
        "tfdata": _eval("tfdata", files, True),
        "dali": _eval("dali", files, True),
        "direct": np.concatenate([item.images.numpy() for item in decode_batches(
            files, image_size=S, batch_size=4, kind="direct", exif=True)
            if isinstance(item, Batch)]),
    }
    for name, got in paths.items():
        assert got.shape == (8, S, S, 3), name
        for o, (image, ref) in enumerate(zip(got, want), start=1):
            assert _diff(image, ref) <= BOUND, (name, o, _diff(image, ref))
    # Teeth: off, the stored pixels come through, and those are turned.
    for kind in ("dali", "tfdata"):
        stored = _eval(kind, files, False)
        assert _diff(stored[0], want[0]) <= BOUND
        assert all(_diff(image, ref) > 10 * BOUND for image, ref in zip(stored[1:], want[1:]))


@pytest.mark.dali
def test_training_views_are_upright_on_both_loaders(tmp_path: Path) -> None:
    # A square photo: the square crop is the whole image, so a view is it or its mirror.
    arr = photo_array(32, 32, np.random.default_rng(8))
    files, upright = _write(tmp_path, arr)
    for kind in ("tfdata", "dali"):
        ds = loaders.build(kind, files, list(range(8)), training=True, batch_size=4,
                           image_size=S, crop="square", exif=True)
        for x, y in ds:
            for image, i in zip(x.numpy(), y.numpy()):
                want = _eval_view(upright[i])
                best = min(_diff(image, want), _diff(image[:, ::-1], want))
                assert best <= BOUND, (kind, int(i) + 1, best)


def test_the_run_config_says_whether_inference_turns_images() -> None:
    info = lambda config: RunInfo(Path("."), config, ("a",), ("a",), "slim")  # noqa: E731
    assert info(RunConfig()).exif is True
    old = RunConfig().to_dict()
    del old["loader"]["exif"]
    assert info(RunConfig.from_dict(old)).exif is False
