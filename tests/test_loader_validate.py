"""The preflight: which files every loader skips, and why (no TensorFlow)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from fastfood.loaders.validate import check_file, check_files

from support.corpus import NOT_IMAGES, ODD, UNDECODABLE


# What DALI (nvImageCodec) cannot parse beyond what TF cannot decode: junk or a stray FF00
# between header segments (libjpeg only warns about those).
DALI_CANNOT_PARSE = {"jpeg_ff00_header.jpg", "junk_jpeg_header.jpg",
                     "photoshop-200dpi-broken.jpg", "truncated_app14.jpg"}


def test_odd_jpegs_corpus_split_exactly() -> None:
    files = sorted(str(p) for p in ODD.iterdir())
    good, bad = check_files(files)
    names = {Path(p).name: reason for p, reason in bad}
    assert set(names) == UNDECODABLE | DALI_CANNOT_PARSE | NOT_IMAGES
    assert names["empty.jpg"] == "empty file"
    assert "end-of-image" in names["truncated_jpeg.jpg"]
    assert "end-of-image" in names["ultrahdr.jpg"]
    assert "not a JPEG or PNG" in names["text_named_as.jpg"]
    for n in DALI_CANNOT_PARSE:
        assert "corrupt JPEG header" in names[n]
    # Everything else passes, including the PNG named .jpg, the MPO, CMYK, gray, progressive.
    good_names = {Path(files[i]).name for i in good}
    assert {"png_named_as.jpg", "sugarshack.mpo", "pil_sample_cmyk.jpg", "hopper_gray.jpg",
            "icc_profile_big.jpg", "hopper_orientation_6.jpg"} <= good_names
    assert len(good) + len(bad) == len(files)
    assert good == sorted(good)


def _jpeg(size=(20, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, "JPEG")
    return out.getvalue()


def _png(size=(20, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


def _with_frame(data: bytes, offset: int, value: bytes) -> bytes:
    """``data`` with bytes changed at ``offset`` past the SOF0 marker."""
    i = data.index(b"\xff\xc0") + offset
    return data[:i] + value + data[i + len(value):]


def test_crafted_failures_and_passes(tmp_path: Path) -> None:
    cases = {
        "ok.jpg": _jpeg(),
        "ok_padded.jpg": _jpeg() + b"\x00\x00\n",  # trailing padding after EOI is tolerated
        "ok.png": _png(),
        "cut.jpg": _jpeg()[:-40],
        "cut.png": _png()[:-20],
        "anim.gif": b"GIF89a" + b"\x00" * 40,
        "page.jpg": b"<html>404 not found</html>",
        "eoi_first.jpg": b"\xff\xd8\xff\xd9",
        "zero_width.jpg": _with_frame(_jpeg(), 7, b"\x00\x00"),
        "nine_components.jpg": _with_frame(_jpeg(), 9, b"\x09"),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "folder.jpg").mkdir()
    paths = {name: str(tmp_path / name) for name in [*cases, "folder.jpg", "missing.jpg"]}
    assert check_file(paths["ok.jpg"]) is None
    assert check_file(paths["ok_padded.jpg"]) is None
    assert check_file(paths["ok.png"]) is None
    assert "end-of-image" in check_file(paths["cut.jpg"])
    assert "IEND" in check_file(paths["cut.png"])
    assert "GIF" in check_file(paths["anim.gif"])
    assert "not a JPEG or PNG" in check_file(paths["page.jpg"])
    assert "end-of-image before the first scan" in check_file(paths["eoi_first.jpg"])
    assert "image size 0x10" in check_file(paths["zero_width.jpg"])
    assert "9 colour components" in check_file(paths["nine_components.jpg"])
    assert check_file(paths["folder.jpg"]) == "is a directory"
    assert check_file(paths["missing.jpg"]) == "file not found"
    good, bad = check_files(list(paths.values()))
    assert [list(paths)[i] for i in good] == ["ok.jpg", "ok_padded.jpg", "ok.png"]
    assert [p for p, _ in bad] == [paths[n] for n in paths if n not in ("ok.jpg", "ok_padded.jpg", "ok.png")]
