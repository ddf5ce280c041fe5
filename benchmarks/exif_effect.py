"""What --exif does for a trained run's answers on phone-style photos: the run's val images
re-saved the way phones store them (pixels turned, EXIF Orientation 3, 6 or 8 saying how
to turn them back), predicted with the EXIF tag honoured and ignored.

    python benchmarks/exif_effect.py RUN_DIR OUT_FOLDER

Prints JSON: val top-1 per orientation, exif on and off. OUT_FOLDER receives the JPEGs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image

# How a phone stores an upright picture for each tag (the inverse of the turn to show it).
STORE = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
         8: Image.Transpose.ROTATE_270}


def main() -> None:
    from fastfood.evaluate import split_files
    from fastfood.predict import Predictor
    from fastfood.rundir import read_info

    run, out = Path(sys.argv[1]), Path(sys.argv[2])
    info = read_info(run)
    _, files, labels = split_files(info, None, "val")
    sets: dict[int, list[str]] = {}
    for o, turn in STORE.items():
        (out / str(o)).mkdir(parents=True, exist_ok=True)
        sets[o] = []
        for f in files:
            image = Image.open(f).convert("RGB")
            if turn is not None:
                image = image.transpose(turn)
            tags = Image.Exif()
            tags[0x0112] = o
            path = out / str(o) / Path(f).name
            image.save(path, quality=92, exif=tags.tobytes())
            sets[o].append(str(path))
    result: dict[str, dict[int, float]] = {}
    predictor = Predictor.load(run)
    for exif in (True, False):
        predictor.exif = exif
        top1 = {}
        for o, paths in sets.items():
            hits = sum(p.top_k[0].index == y for p, y in
                       zip(predictor.predict_files(paths, top_k=1, loader="tfdata"), labels))
            top1[o] = round(hits / len(paths), 3)
        result["on" if exif else "off"] = top1
    print(json.dumps({"run": str(run), "images": len(files), "val_top1": result}))


if __name__ == "__main__":
    main()
