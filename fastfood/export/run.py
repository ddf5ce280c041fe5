"""`export_run(request)`: build the calibrated model, write the format, check it, publish it.

Steps, each its own module: the model (`network`), the format's writer (`savedmodel`,
`tflite`, `onnx`) into a staging folder (`staging`), the check on val images (`check`),
preprocessing.json and export_check.json (`describe`); then the staging folder becomes
`--out`, or, when an artifact is under its tolerance, is removed and the export fails
with the figures (`ExportCheckFailed`, exit 2).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fastfood.errors import FastfoodError
from fastfood.export import describe, extras
from fastfood.export.artifact import Artifact
from fastfood.export.check import CheckBatch, CheckResult, run_check
from fastfood.export.request import ExportRequest
from fastfood.export.staging import check_out, staged
from fastfood.phases import PhaseTimer


class ExportCheckFailed(FastfoodError):
    """An artifact disagreed with the run more than its tolerance; nothing was published."""

    def __init__(self, out: Path, result: CheckResult) -> None:
        self.result = result
        super().__init__(f"export check failed, nothing written to {out}: "
                         + "; ".join(result.failures()))


def export_run(request: ExportRequest, timer: PhaseTimer | None = None) -> CheckResult:
    """Write `request.format` of the run to `request.out`, checked (see the module doc)."""
    from fastfood.evaluate import split_files
    from fastfood.export.network import serving_model
    from fastfood.inference.runs import resolve_run_dir

    check_out(request.out, request.force)
    extras.require(request.format)
    run_dir = resolve_run_dir(request.run_dir)
    built = serving_model(run_dir, request.precision, timer)
    base, served, info = built.reference, built.served, built.info
    _, val_files, _ = split_files(info, request.data, "val")
    files, sample = choose(val_files, request.check_images, "val")
    max_pixels = info.config.loader.max_pixels
    representative = None
    if request.format == "tflite" and request.int8_images:
        _, train_files, _ = split_files(info, request.data, "train")
        chosen, _ = choose(train_files, request.int8_images, "train")
        representative = representative_dataset(chosen, info.image_size, max_pixels,
                                                info.exif)

    from fastfood.inference.forward import Forward

    forward = Forward(base, info.image_size, info.temperature)
    with staged(request.out, request.force) as stage:
        artifacts = write(request, served, info, stage, representative, built.precision)
        skipped: list[tuple[str, str]] = []
        batches = check_batches(files, info.image_size, request.batch_size, max_pixels,
                                skipped, with_bytes=any(a.top1_of_bytes for a in artifacts),
                                exif=info.exif)
        result = run_check(artifacts, forward, batches, sample=sample,
                           batch_size=request.batch_size, skipped=skipped)
        result.precision = built.precision
        if result.reference.n == 0:
            raise FastfoodError(f"none of the {len(files)} check images could be read "
                                f"(first: {skipped[0][0]}: {skipped[0][1]})" if skipped else
                                "no check images")
        names = [a.file for a in artifacts]
        meta = describe.preprocessing(info, request.format, names, built.precision)
        (stage / describe.PREPROCESSING).write_text(json.dumps(meta, indent=2) + "\n")
        (stage / describe.CHECK).write_text(json.dumps(result.to_json(), indent=2) + "\n")
        if not result.passed:
            raise ExportCheckFailed(request.out, result)
    return result


def write(request: ExportRequest, served: Any, info: Any, stage: Path,
          representative: Any, precision: str = "fp32") -> list[Artifact]:
    """The format's writer, into `stage`; each file comes back loaded from disk."""
    if request.format == "savedmodel":
        from fastfood.export import savedmodel

        return savedmodel.write(served, info, stage, request,
                                describe.savedmodel_metadata(info, precision))
    if request.format == "tflite":
        from fastfood.export import tflite

        return tflite.write(served, stage, request, representative)
    from fastfood.export import onnx

    return onnx.write(served, stage, request)


def choose(files: Sequence[str], n: int | None, split: str) -> tuple[list[str], str]:
    """All of `files`, or `n` evenly spaced over them (deterministic, every class's share),
    with the sentence that says which."""
    files = list(files)
    if n is None or n >= len(files):
        return files, f"all {len(files)} {split} images"
    picked = [files[i * len(files) // n] for i in range(n)]
    return picked, f"{n} of {len(files)} {split} images, evenly spaced"


def check_batches(files: Sequence[str], image_size: int, batch_size: int, max_pixels: int,
                  skipped: list[tuple[str, str]], *, with_bytes: bool,
                  exif: bool = False) -> Iterator[CheckBatch]:
    """The eval view of `files` as predict decodes it (tf.data, `eval_image`, the run's
    EXIF setting), in batches; files that cannot be decoded go to `skipped`."""
    from fastfood.inference.batches import Batch, decode_batches

    for item in decode_batches(files, image_size=image_size, batch_size=batch_size,
                               kind="tfdata", max_pixels=max_pixels, exif=exif):
        if isinstance(item, Batch):
            contents = ([Path(files[i]).read_bytes() for i in item.indices]
                        if with_bytes else None)
            yield CheckBatch(np.asarray(item.images), contents)
        else:
            skipped.append((files[item.index], item.reason))


def representative_dataset(files: Sequence[str], image_size: int, max_pixels: int,
                           exif: bool = False) -> Any:
    """The int8 converter's calibration input: each training image's eval view, one by one."""
    images = [pixels for batch in check_batches(files, image_size, 32, max_pixels, [],
                                                with_bytes=False, exif=exif)
              for pixels in batch.pixels]
    if not images:
        raise FastfoodError(f"--int8-images: none of the {len(files)} training images "
                            "could be read")

    def generate() -> Iterator[list[np.ndarray]]:
        for pixels in images:
            yield [pixels[None]]

    return generate
