"""The odd-jpegs corpus (tests/data/odd-jpegs, see its README.md) and what is known about it.

Tests read the corpus only from inside the repository, so the suite runs on any checkout.
"""

from __future__ import annotations

import io
from pathlib import Path

ODD = Path(__file__).resolve().parents[1] / "data" / "odd-jpegs"

# Not images: the corpus's own documentation, listed by iterdir() with the images.
NOT_IMAGES = {"README.md", "LICENSE-Pillow"}
# Per the corpus README: what TensorFlow cannot decode at all.
UNDECODABLE = {"truncated_jpeg.jpg", "ultrahdr.jpg", "text_named_as.jpg", "empty.jpg"}
# Plain files every path must answer.
PLAIN = {"hopper.jpg", "rgb.jpg", "flower.jpg", "hopper_gray.jpg", "pil_sample_cmyk.jpg",
         "png_named_as.jpg", "hopper_orientation_6.jpg", "icc_profile_big.jpg"}
# Per the README and the loaders' preflight: what every loader refuses up front.
PREFLIGHT_REJECTS = ("empty.jpg", "text_named_as.jpg", "truncated_jpeg.jpg", "ultrahdr.jpg",
                     "junk_jpeg_header.jpg")
# Odd but decodable files (grayscale, CMYK, PNG under a .jpg name, progressive, EXIF, MPO).
DECODABLE = ("hopper_gray.jpg", "pil_sample_cmyk.jpg", "png_named_as.jpg",
             "icc_profile_big.jpg", "hopper_orientation_6.jpg", "hopper_16bit_qtables.jpg")


def corrupt_files(folder: Path) -> dict[str, Path]:
    """Files that pass the loaders' preflight but fail to decode in TensorFlow."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    jpeg = bytearray((ODD / "hopper.jpg").read_bytes())
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 4] = 12  # 12-bit samples: libjpeg as built into TF refuses them
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(out, "PNG")
    png = bytearray(out.getvalue())
    idat = png.find(b"IDAT")
    for k in range(idat + 6, idat + 16):
        png[k] ^= 0x5A  # scramble the deflate stream, keep the chunk layout and IEND
    paths = {"jpeg12": folder / "precision12.jpg", "png": folder / "bad_idat.png"}
    paths["jpeg12"].write_bytes(bytes(jpeg))
    paths["png"].write_bytes(bytes(png))
    return paths


def odd_jpegs_dir() -> Path:
    """The odd-jpegs corpus (odd real files from Pillow's test suite, see its README)."""
    return ODD
