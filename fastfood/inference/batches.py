"""Files to batches of eval-view images for predict and evaluate, surviving bad files.

Three layers of defence, so one bad file never costs the others their answer:

1. The loaders' preflight (`validate.check_files`, run by `fastfood.loaders.build`) names
   the files that are obviously not images (empty, text, truncated) before decoding.
2. Everything else goes through the eval-mode loader in batches (`loaders.build(...,
   training=False)`: tf.data or DALI, decoding in parallel ahead of the model).
3. A file that passes the preflight but fails inside the pipeline (corrupt entropy data,
   say) stops that dataset. Eval order is the input order and the batch size is fixed, so
   the batch that failed is known exactly: its files are decoded one by one with
   `preprocess.eval_image` to find the culprit(s), and a fresh dataset continues after them.

A handful of files (`DIRECT_MAX`) with `kind='auto'` skips the pipeline and decodes each file
eagerly with the same `eval_image`: building a tf.data pipeline (or importing DALI, over a
second) costs more than decoding a few images, and a cold `predict one.jpg` should not pay it.

Output: `Batch(indices, images)` with uint8 [n, S, S, 3] images of `files[i] for i in indices`,
and `Failure(index, reason)`, in no promised order between the two (callers key on index).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastfood.config import MAX_PIXELS

# With --loader auto, up to this many files are decoded one by one without a pipeline.
DIRECT_MAX = 8


@dataclass(frozen=True)
class Batch:
    """Decoded images (uint8 [n, S, S, 3], a tf.Tensor) of files[i] for i in `indices`."""

    indices: tuple[int, ...]
    images: Any


@dataclass(frozen=True)
class Failure:
    """files[index] could not be used, and why (one line)."""

    index: int
    reason: str


def choose_kind(kind: str, num_files: int) -> str:
    """'direct' for a handful of files under 'auto', else the loader kind asked for."""
    if kind == "auto" and num_files <= DIRECT_MAX:
        return "direct"
    return kind


def decode_batches(
    files: Sequence[str],
    *,
    image_size: int,
    batch_size: int,
    kind: str = "auto",
    num_threads: int = 0,
    max_pixels: int = MAX_PIXELS,
    exif: bool = False,
) -> Iterator[Batch | Failure]:
    """Every file exactly once: in a Batch (decoded) or as a Failure (see the module doc).
    `max_pixels`: the preflight's pixel cap (the run's own setting, 0: none); `exif`: turn
    JPEGs upright by their EXIF tag (the run's own setting, `RunInfo.exif`)."""
    files = [str(f) for f in files]
    if not files:
        return
    from fastfood.data.shards import are_refs

    kind = kind if are_refs(files) else choose_kind(kind, len(files))  # records: a pipeline
    if kind == "direct":
        yield from _direct(files, range(len(files)), image_size, batch_size, max_pixels, exif)
        return
    yield from _pipelined(files, image_size, batch_size, kind, num_threads, max_pixels, exif)


def _pipelined(
    files: list[str], image_size: int, batch_size: int, kind: str, num_threads: int,
    max_pixels: int, exif: bool,
) -> Iterator[Batch | Failure]:
    from fastfood import loaders
    from fastfood.errors import FastfoodError

    todo = list(range(len(files)))  # indices into files not yet answered, in order
    while todo:
        names = [files[i] for i in todo]
        report: list[tuple[str, str]] = []
        try:
            with _quiet_preflight():
                dataset = loaders.build(
                    kind, names, [0] * len(names), training=False, batch_size=batch_size,
                    image_size=image_size, num_threads=num_threads, report=report,
                    max_pixels=max_pixels, exif=exif,
                )
        except FastfoodError:
            if not report:  # not "none of the files can be read": a real usage error
                raise
            dataset = None
        # The preflight reports bad files in input order: match them to indices in order
        # (a path listed twice is reported twice).
        good: list[int] = []
        pending = iter(report)
        bad = next(pending, None)
        for i in todo:
            if bad is not None and files[i] == bad[0]:
                yield Failure(i, bad[1])
                bad = next(pending, None)
            else:
                good.append(i)
        done = 0
        if dataset is not None:
            try:
                for images, labels in dataset:
                    # DALI fills its last eval batch up with PAD_LABEL samples, at the end.
                    n = int((labels.numpy() != loaders.PAD_LABEL).sum())
                    yield Batch(tuple(good[done:done + n]), images[:n])
                    done += n
            except Exception:  # noqa: BLE001 - a decode error inside the pipeline, see doc
                failed = good[done:done + batch_size]
                yield from _direct(files, failed, image_size, batch_size, max_pixels, exif)
                done += len(failed)
        todo = good[done:]


@contextmanager
def _quiet_preflight() -> Iterator[None]:
    """Mute the loaders' "skipping N files" warning: every skipped file becomes a Failure
    here, which the caller reports by name, so the log line would only say it twice."""
    log = logging.getLogger("fastfood")
    previous = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(previous)


def _direct(
    files: list[str], indices: Sequence[int], image_size: int, batch_size: int,
    max_pixels: int = MAX_PIXELS, exif: bool = False,
) -> Iterator[Batch | Failure]:
    """Decode files[i] one at a time (eagerly) with eval_image; batch what decodes."""
    import tensorflow as tf

    from fastfood.errors import one_line
    from fastfood.loaders import validate
    from fastfood.loaders.preprocess import eval_image

    done: list[int] = []
    images: list[Any] = []
    for i in indices:
        reason = validate.check_file(files[i], max_pixels)
        if reason is None:
            try:
                images.append(eval_image(tf.io.read_file(files[i]), image_size, exif))
                done.append(i)
            except (tf.errors.OpError, ValueError) as err:
                reason = one_line(err)
        if reason is not None:
            yield Failure(i, reason)
        if len(done) == batch_size:
            yield Batch(tuple(done), tf.stack(images))
            done, images = [], []
    if done:
        yield Batch(tuple(done), tf.stack(images))

