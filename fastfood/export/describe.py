"""preprocessing.json: what an export expects as input and gives back, for code without fastfood.

Written beside every export. It describes the eval view predict computes
(`fastfood.loaders.preprocess.eval_image`): decode to RGB, the centre square, an
antialiased bilinear resize to S x S, uint8. The mean subtraction (and the BGR flip of the
Keras weights) is inside the model, so the file only says what it is; the softmax at the
run's temperature is inside too. The SavedModel's `serving_default` does all of it from
the encoded bytes; its `pixels` signature, the TFLite and the ONNX models start from the
uint8 pixels.
"""

from __future__ import annotations

from typing import Any

from fastfood.export.network import INPUT_NAME, OUTPUT_NAME
from fastfood.rundir import RunInfo, relative_checkpoint

PREPROCESSING = "preprocessing.json"
CHECK = "export_check.json"


def preprocessing(info: RunInfo, fmt: str, files: list[str], precision: str) -> dict[str, Any]:
    """The content of preprocessing.json (see the module doc)."""
    from fastfood.model.preprocessing import CONVENTIONS

    size = info.image_size
    bgr, means = CONVENTIONS[info.convention]
    return {
        "format": fmt,
        "files": files,
        "precision": precision,
        "input": {
            "name": INPUT_NAME, "dtype": "uint8", "shape": [None, size, size, 3],
            "layout": "NHWC", "channels": "RGB", "range": [0, 255],
            "savedmodel_bytes_signature": "serving_default takes encoded JPEG/PNG bytes "
                                          "[None] and does all of the steps below itself",
        },
        "decode": "JPEG (libjpeg's accurate integer IDCT) or PNG, told by the bytes; "
                  "grayscale and CMYK to RGB, alpha dropped; EXIF orientation "
                  + ("applied (the image turned upright by its Orientation tag)" if info.exif
                     else "ignored"),
        "exif_orientation": bool(info.exif),
        "crop": {"kind": "centre square", "side": "min(height, width)",
                 "offset": "floor((height - side) / 2), floor((width - side) / 2)"},
        "resize": {"size": [size, size], "method": "bilinear, antialiased (a triangle filter "
                   "widened by the scale when shrinking), half-pixel centres",
                   "same_as": "tf.image.resize(method='bilinear', antialias=True)",
                   "rounding": "round to nearest, clip to [0, 255], uint8"},
        "normalization": {
            "inside_model": True, "convention": info.convention,
            "channel_order_seen_by_network": "BGR" if bgr else "RGB",
            "mean_subtracted": list(means), "scale": 1.0,
        },
        "output": {"name": OUTPUT_NAME, "dtype": "float32",
                   "shape": [None, info.num_classes],
                   "kind": "probabilities: softmax(logits / temperature)",
                   "temperature": info.temperature},
        "classes": list(info.classes),
        "display_names": list(info.display_names),
        "run": {"run_dir": str(info.run_dir),
                "checkpoint": relative_checkpoint(info.run_dir, info.checkpoint_path)
                if info.checkpoint_path else None},
    }


def savedmodel_metadata(info: RunInfo, precision: str) -> dict[str, Any]:
    """Constants of the SavedModel's `metadata` signature."""
    return {"precision": precision, "temperature": float(info.temperature),
            "image_size": int(info.image_size), "convention": info.convention,
            "format_version": 2}
