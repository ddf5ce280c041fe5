"""What each image op costs on one core: decode, windowed decode, resize, in PIL, TF and DALI
(with fastfood's native DALI resize operator beside DALI's fn.resize).

The loader targets compare whole pipelines with a decode-only limit; this says where the
gap comes from. Everything runs single-threaded (TF intra/inter-op 1, DALI num_threads=1)
on the same files, interleaved over `--repeats` rounds, and reports milliseconds per image
(min and median over rounds). A pipeline that decodes then resizes cannot be faster than
the sum of its two rows, so when `resize` is comparable to `decode`, a target of "0.95x
the decode-only limit" is out of reach without a cheaper resize or a cheaper decode.

    python benchmarks/archive/op_costs.py --data /tmp/ffbench --n 200
    # -> benchmarks/results/op_costs.json
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fastfood import machine
from fastfood.benchmark import report

RESULTS = Path(__file__).resolve().parents[1] / "results"


def pil_ops(datas: list[bytes], size: int) -> dict[str, Callable[[], None]]:
    from PIL import Image

    def decode() -> None:
        for d in datas:
            np.asarray(Image.open(io.BytesIO(d)).convert("RGB"))

    def decode_resize() -> None:
        for d in datas:
            im = Image.open(io.BytesIO(d)).convert("RGB")
            w, h = im.size
            s = min(w, h)
            x, y = (w - s) // 2, (h - s) // 2
            np.asarray(im.resize((size, size), Image.BILINEAR, box=(x, y, x + s, y + s)))

    return {"pil/decode": decode, "pil/decode+centre+resize_aa": decode_resize}


def tf_ops(datas: list[bytes], size: int) -> dict[str, Callable[[], None]]:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TF already running in this process: its pools stay as they are
        pass
    tensors = [tf.constant(d) for d in datas]
    spec = [tf.TensorSpec([], tf.string)]
    img_spec = [tf.TensorSpec([None, None, 3], tf.uint8)]

    @tf.function(input_signature=spec)
    def decode(d):
        return tf.io.decode_jpeg(d, channels=3, dct_method="INTEGER_ACCURATE")

    @tf.function(input_signature=spec)
    def decode_fast(d):
        return tf.io.decode_jpeg(d, channels=3)

    @tf.function(input_signature=spec)
    def decode_window(d):
        shape = tf.io.extract_jpeg_shape(d)
        side = tf.minimum(shape[0], shape[1])
        window = tf.stack([(shape[0] - side) // 2, (shape[1] - side) // 2, side, side])
        return tf.io.decode_and_crop_jpeg(d, window, channels=3, dct_method="INTEGER_ACCURATE")

    def centre(img):
        shape = tf.shape(img)
        side = tf.minimum(shape[0], shape[1])
        return tf.image.crop_to_bounding_box(img, (shape[0] - side) // 2,
                                             (shape[1] - side) // 2, side, side)

    @tf.function(input_signature=img_spec)
    def resize_aa(img):  # fastfood's preprocess.resize_uint8
        out = tf.image.resize(centre(img), [size, size], method="bilinear", antialias=True)
        return tf.cast(tf.round(tf.clip_by_value(out, 0.0, 255.0)), tf.uint8)

    @tf.function(input_signature=img_spec)
    def resize_bilinear(img):
        return tf.cast(tf.image.resize(centre(img), [size, size], method="bilinear"), tf.uint8)

    @tf.function(input_signature=img_spec)
    def resize_area(img):  # the baseline pipeline's: float32 image, AREA
        img = tf.image.convert_image_dtype(centre(img), tf.float32)
        return tf.image.resize(img, [size, size], method="area")

    images = [decode(t) for t in tensors]

    def over(fn: Callable, xs: list) -> Callable[[], None]:
        return lambda: [fn(x) for x in xs] and None

    return {
        "tf/decode (accurate IDCT)": over(decode, tensors),
        "tf/decode (default IDCT)": over(decode_fast, tensors),
        "tf/decode centre window": over(decode_window, tensors),
        "tf/resize centre antialiased bilinear": over(resize_aa, images),
        "tf/resize centre bilinear": over(resize_bilinear, images),
        "tf/resize centre area float32 (seed)": over(resize_area, images),
    }


def dali_ops(files: list[str], size: int, batch: int = 32) -> dict[str, Callable[[], None]]:
    import nvidia.dali.math as dmath
    from nvidia.dali import fn, pipeline_def, types

    dec = {"device": "cpu", "output_type": types.RGB, "adjust_orientation": False}

    def resize(images, antialias: bool):
        return fn.resize(images, resize_x=size, resize_y=size, interp_type=types.INTERP_LINEAR,
                         antialias=antialias)

    def centre(encoded):
        shape = fn.peek_image_shape(encoded, adjust_orientation=False)
        h, w = shape[0], shape[1]
        side = dmath.min(h, w)
        return fn.stack((h - side) // 2, (w - side) // 2), fn.stack(side, side)

    @pipeline_def
    def pipe(kind: str):
        encoded, _ = fn.readers.file(files=files, random_shuffle=False, pad_last_batch=True)
        if kind == "decode":
            return fn.decoders.image(encoded, **dec)
        if kind == "slice":
            anchor, shape = centre(encoded)
            return fn.decoders.image_slice(encoded, anchor, shape, axis_names="HW", **dec)
        if kind == "slice+resize_aa":  # fastfood's eval
            anchor, shape = centre(encoded)
            return resize(fn.decoders.image_slice(encoded, anchor, shape, axis_names="HW",
                                                  **dec), True)
        if kind == "slice+resize":
            anchor, shape = centre(encoded)
            return resize(fn.decoders.image_slice(encoded, anchor, shape, axis_names="HW",
                                                  **dec), False)
        if kind == "slice+fastfood_resize":  # fastfood's eval with its native operator
            anchor, shape = centre(encoded)
            return fn.fastfood_resize(fn.decoders.image_slice(
                encoded, anchor, shape, axis_names="HW", **dec), height=size, width=size)
        if kind == "random_crop+resize_aa":  # fastfood's train ('inception') before the operator
            return resize(fn.decoders.image_random_crop(
                encoded, random_area=[0.08, 1.0], random_aspect_ratio=[0.75, 4 / 3], **dec), True)
        if kind == "random_crop+fastfood_resize":  # fastfood's train ('inception')
            return fn.fastfood_resize(fn.decoders.image_random_crop(
                encoded, random_area=[0.08, 1.0], random_aspect_ratio=[0.75, 4 / 3], **dec),
                height=size, width=size)
        raise ValueError(kind)

    steps = -(-len(files) // batch)
    out = {}
    from fastfood.loaders import native

    kinds = ["decode", "slice", "slice+resize_aa", "slice+resize", "random_crop+resize_aa"]
    if native.resize_available():  # fastfood's native resize operator (fastfood/loaders/native)
        kinds += ["slice+fastfood_resize", "random_crop+fastfood_resize"]
    for kind in kinds:
        p = pipe(kind, batch_size=batch, num_threads=1, device_id=None, prefetch_queue_depth=1,
                 seed=0)
        p.build()
        out[f"dali/{kind}"] = (lambda p=p: [p.run() for _ in range(steps)] and None)
    return out


def measure(ops: dict[str, Callable[[], None]], n: int, repeats: int) -> dict[str, Any]:
    """ms per image for every op, interleaved so drifting load hits them all alike."""
    for op in ops.values():
        op()  # warm-up: tracing, page cache, DALI buffers
    times: dict[str, list[float]] = {name: [] for name in ops}
    for _ in range(repeats):
        for name, op in ops.items():
            start = time.perf_counter()
            op()
            times[name].append((time.perf_counter() - start) / n * 1000)
    return {name: {"ms_per_image_min": round(min(t), 3),
                   "ms_per_image_median": round(statistics.median(t), 3)}
            for name, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--n", type=int, default=200, help="images (DALI rounds up to 32s)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="", help="default: benchmarks/results/op_costs.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from fastfood import data

    spec = data.load(args.data)
    files = sorted(f for f in list(spec.train.files) + list(spec.val.files)
                   if f.lower().endswith((".jpg", ".jpeg")))[: args.n - args.n % 32 or 32]
    datas = [Path(f).read_bytes() for f in files]
    info = machine.machine_info(with_gpus=False)
    ops = {**pil_ops(datas, args.image_size), **tf_ops(datas, args.image_size)}
    try:
        ops.update(dali_ops(files, args.image_size))
    except ImportError:
        pass
    costs = measure(ops, len(files), args.repeats)
    result = {"machine": info, "warnings": [w for w in [machine.busy_warning(info)] if w],
              "settings": {**vars(args), "num_files": len(files)}, "ops": costs}
    path = report.write_json(result, args.json or RESULTS / "op_costs.json")
    width = max(map(len, costs))
    for name, c in costs.items():
        print(f"{name:{width}s}  {c['ms_per_image_min']:7.2f} ms/img (median "
              f"{c['ms_per_image_median']:.2f})")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
