"""Where do the loaders lose time? Variants of the DALI and tf.data pipelines, same harness.

For digging in when benchmarks/loaders.py shows a loader short of its target. Each variant
changes one thing against the product loader and is timed exactly as loaders.py times
everything (steady-state img/s over whole passes, warm-up excluded), in one process:

- `dali` / `tfdata`: the product loaders, as the reference (include them in `--only`
  to get the `vs product` ratios).
- `dali_alone`: the product DALI pipeline run in a plain loop, no TensorFlow plugin (the
  cost of `DALIDataset` is the difference to `dali`).
- `dali_threads=N`, `tfdata_threads=N`: `num_threads` (DALI workers; tf.data private pool).
- `dali_prefetch=N`: the pipeline's `prefetch_queue_depth` (DALI default 2).
- `dali_eval_fulldecode`: eval decoding the whole image then cropping, instead of
  `fn.decoders.image_slice` (does the windowed decode pay?).
- `tf_eval_fast_idct`: tf.data eval with `dct_method='INTEGER_FAST'` (TF's default, and
  the baseline pipeline's) instead of the accurate IDCT fastfood uses for DALI parity.
- `tf_eval_window`: tf.data eval with `decode_and_crop_jpeg` of the centre square.

    python benchmarks/archive/loader_variants.py --data /tmp/ffbench
    # -> benchmarks/results/loader_variants.json
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from fastfood import machine
from fastfood.benchmark import report
from fastfood.benchmark import loaders as fastfood_loaders
from fastfood.benchmark.timing import batch_sizes

RESULTS = Path(__file__).resolve().parents[1] / "results"
PassFactory = Callable[[], Iterable[int]]


def dali_alone(files: Sequence[str], labels: Sequence[int], *, training: bool, batch_size: int,
               image_size: int, num_threads: int = 0, prefetch: int = 0,
               full_decode_eval: bool = False) -> PassFactory:
    """The product DALI pipeline (or an eval variant) driven by `pipe.run()`, no TF.

    Built afresh for every pass, as the loader builds one per epoch, so no batch that a
    previous pass prefetched is counted; each pass runs as many batches as the loader's
    epoch has.
    """
    from fastfood.loaders import dali_pipeline

    threads = num_threads or os.cpu_count() or 1
    extra = {"prefetch_queue_depth": prefetch} if prefetch else {}
    steps = len(files) // batch_size if training else -(-len(files) // batch_size)

    def build() -> Any:
        if full_decode_eval:
            return _full_decode_eval_pipeline(files, labels, image_size=image_size,
                                              batch_size=batch_size, num_threads=threads,
                                              device_id=None, seed=0, **extra)
        return dali_pipeline.fastfood_pipeline(
            list(files), list(labels), training=training, image_size=image_size, device="cpu",
            batch_size=batch_size, num_threads=threads, device_id=None, seed=0, **extra)

    def make() -> Iterable[int]:
        pipe = build()
        pipe.build()
        try:
            for _ in range(steps):
                images, _ = pipe.run()
                yield len(images)
        finally:
            del pipe

    return make


def _full_decode_eval_pipeline(files: Sequence[str], labels: Sequence[int], *, image_size: int,
                               **pipeline_kwargs: Any) -> Any:
    """Eval as the product does it, but decoding the whole image and then cropping."""
    import nvidia.dali.math as dmath
    from nvidia.dali import fn, pipeline_def, types

    from fastfood.loaders import dali_pipeline

    @pipeline_def
    def pipe():
        encoded, label = fn.readers.file(files=list(files), labels=list(labels),
                                         random_shuffle=False, pad_last_batch=True)
        images = fn.decoders.image(encoded, **dali_pipeline.decoder_args("cpu"))
        shape = images.shape()
        h = fn.cast(shape[0], dtype=types.FLOAT)
        w = fn.cast(shape[1], dtype=types.FLOAT)
        side = dmath.min(h, w)
        images = fn.crop(images, crop_h=side, crop_w=side, crop_pos_x=0.5, crop_pos_y=0.5)
        images = fn.resize(images, resize_x=image_size, resize_y=image_size,
                           interp_type=types.INTERP_LINEAR, antialias=True)  # as the product
        return images, label

    return pipe(**pipeline_kwargs)


def tf_eval_variant(files: Sequence[str], *, batch_size: int, image_size: int,
                    fast_idct: bool = False, window: bool = False) -> PassFactory:
    """tf.data eval with one change to the decode (see the module docstring)."""
    import tensorflow as tf

    from fastfood.loaders import preprocess

    def load(path: tf.Tensor) -> tf.Tensor:
        data = tf.io.read_file(path)
        if window:
            shape = tf.io.extract_jpeg_shape(data)
            h, w = shape[0], shape[1]
            side = tf.minimum(h, w)
            crop = tf.stack([(h - side) // 2, (w - side) // 2, side, side])
            image = tf.io.decode_and_crop_jpeg(data, crop, channels=3,
                                               dct_method="INTEGER_ACCURATE")
        else:
            idct = "INTEGER_FAST" if fast_idct else "INTEGER_ACCURATE"
            image = tf.io.decode_jpeg(data, channels=3, dct_method=idct)
            shape = tf.shape(image)
            h, w = shape[0], shape[1]
            side = tf.minimum(h, w)
            image = tf.image.crop_to_bounding_box(image, (h - side) // 2, (w - side) // 2,
                                                  side, side)
        return preprocess.resize_uint8(image, image_size)

    def make() -> Iterable[int]:
        ds = tf.data.Dataset.from_tensor_slices(list(files))
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
        return batch_sizes(ds.prefetch(tf.data.AUTOTUNE))

    return make


def variants(files: Sequence[str], labels: Sequence[int], cores: int, batch_size: int,
             image_size: int) -> dict[str, dict[str, PassFactory]]:
    """{name: {mode: pass factory}} for every variant (built lazily, one at a time)."""
    common = dict(batch_size=batch_size, image_size=image_size)

    def product(kind: str, **kw: Any) -> dict[str, PassFactory]:
        return {mode: fastfood_loaders.loader_pass(kind, files, labels, training=mode == "train",
                                                   **common, **kw) for mode in ("train", "eval")}

    def alone(**kw: Any) -> dict[str, PassFactory]:
        return {mode: dali_alone(files, labels, training=mode == "train", **common, **kw)
                for mode in ("train", "eval")}

    out: dict[str, dict[str, PassFactory]] = {
        "dali": product("dali"),
        "tfdata": product("tfdata"),
        "dali_alone": alone(),
    }
    for n in sorted({1, cores, cores + 1, 2 * cores}):
        out[f"dali_threads={n}"] = product("dali", num_threads=n)
        out[f"tfdata_threads={n}"] = product("tfdata", num_threads=n)
    for depth in (1, 3, 4):
        out[f"dali_prefetch={depth}"] = alone(prefetch=depth)
    out["dali_eval_fulldecode"] = {"eval": dali_alone(files, labels, training=False,
                                                      full_decode_eval=True, **common)}
    out["tf_eval_fast_idct"] = {"eval": tf_eval_variant(files, fast_idct=True, **common)}
    out["tf_eval_window"] = {"eval": tf_eval_variant(files, window=True, **common)}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--only", default="", help="comma list of variant names (default: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="",
                        help="default: benchmarks/results/loader_variants.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from fastfood import data

    spec = data.load(args.data)
    files = list(spec.train.files) + list(spec.val.files)
    labels = list(spec.train.labels) + list(spec.val.labels)
    info = machine.machine_info(with_gpus=False)
    table = variants(files, labels, info["cores"], args.batch_size, args.image_size)
    only = [v for v in args.only.split(",") if v]
    result: dict[str, Any] = {
        "machine": info, "warnings": [w for w in [machine.busy_warning(info)] if w],
        "settings": {**vars(args), "num_files": len(files)}, "loaders": {},
    }
    start = time.perf_counter()
    # Every variant in turn, pass by pass, so drifting load hits them all alike; a variant
    # the installed DALI/TF rejects is noted and the others go on.
    chosen = {name: modes for name, modes in table.items() if not only or name in only}
    errors: list[str] = []
    rows = fastfood_loaders.measure_rows(
        chosen, warmup=args.warmup, repeats=args.repeats, errors=errors,
        progress=lambda msg: print(f"[variants] {msg}", flush=True))
    for name, row in rows.items():
        product = "tfdata" if name.startswith("tf") else "dali"
        for mode in ("train", "eval"):
            ref = rows.get(product, {}).get(f"{mode}_img_s")
            if ref and f"{mode}_img_s" in row and name != product:
                row[f"{mode}_vs_product"] = round(row[f"{mode}_img_s"] / ref, 3)
    result["loaders"], result["errors"] = rows, errors
    result["wall_s"] = round(time.perf_counter() - start, 1)
    path = report.write_json(result, args.json or RESULTS / "loader_variants.json")
    report.print_report({**result, "labels": {"loaders": "Loader variants (img/s)"}})
    print(f"wrote {path} ({result['wall_s']} s)")


if __name__ == "__main__":
    main()
