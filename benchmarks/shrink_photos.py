"""Copy a class-folder photo set with every image shrunk to SIDE px on its short side
(bicubic, JPEG quality 90), so measurements at small image sizes are not decode-bound.

    python benchmarks/shrink_photos.py SRC DST [--side 80]

Pixels are copied as stored (no EXIF turn, and the copy carries no tag). Prints how many
source images carry each EXIF Orientation value.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--side", type=int, default=80)
    args = parser.parse_args()
    src, dst = Path(args.src), Path(args.dst)
    tags: dict[int, int] = {}
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        (dst / folder.name).mkdir(parents=True, exist_ok=True)
        for f in sorted(folder.glob("*.jpg")):
            image = Image.open(f)
            o = image.getexif().get(0x0112, 1)
            tags[o] = tags.get(o, 0) + 1
            image = image.convert("RGB")
            w, h = image.size
            s = args.side / min(w, h)
            size = (max(args.side, round(w * s)), max(args.side, round(h * s)))
            image.resize(size, Image.BICUBIC).save(dst / folder.name / f.name, quality=90)
    print("EXIF Orientation values in the source:", dict(sorted(tags.items())))


if __name__ == "__main__":
    main()
