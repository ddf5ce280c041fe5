"""Input pipelines: file lists in, batches of uint8 RGB images and int32 labels out.

One contract, three implementations (``kind``), so the training loop never asks which it got:

- ``dali``: NVIDIA DALI (``dali_pipeline.py``, wrapped in ``DALIDataset`` by ``dali.py``);
  decodes on the GPU (``device='mixed'``) when TensorFlow sees one, else on the CPU.
- ``tfdata``: pure ``tf.data`` (``tfdata.py``), the fallback, and the reference that the
  exported model's preprocessing (``preprocess.eval_image``) shares.
- ``synthetic``: one fixed random batch repeated (``synthetic.py``): measures compute with no
  input cost.
- ``auto``: ``dali`` when ``nvidia.dali.plugin.tf`` imports, else ``tfdata``.

Every kind returns a ``tf.data.Dataset`` of ``(images, labels)``: images uint8
``[batch, S, S, 3]`` RGB 0-255, labels int32 ``[batch]``. The batch dimension is static in
training mode (remainder dropped). In eval mode tf.data and synthetic keep a last partial
batch (batch dimension ``None``); DALI, whose batches are fixed-size, fills the last batch
up with samples labelled ``PAD_LABEL`` (-1), which the metrics leave out.

A DALI dataset that decodes on the GPU is handed over bare and endless (no tf.data op may
sit on top of it: those run on the host); its consumer counts the steps. Elsewhere the
dataset ends after the requested epochs.

Training mode yields ``epochs`` epochs from ``epoch`` on (one by default): the files in the order
``order.epoch_order(n, seed, epoch)``, the same for every kind, sharded as DALI shards
(shard ``i`` of ``n`` takes the contiguous chunk ``[N*i//n, N*(i+1)//n)`` of the permutation),
``steps_per_epoch`` batches for every shard, starting after ``skip_batches`` batches so a run
resumes exactly mid-epoch. Each image gets a random crop resized to S x S and a random
horizontal flip (50%), then the request's ``augment`` (RandAugment or TrivialAugment-wide;
'basic' adds nothing) and ``random_erasing``: DALI's own operators on the DALI path, the
same ops and magnitude ranges reimplemented in TensorFlow on tf.data (``spec.py``). In tf.data the randomness is keyed by (seed, epoch, position in the
epoch), so a resumed epoch reproduces its crops exactly; DALI's is seeded by (seed, epoch,
shard, skip_batches): repeatable, but not position by position.

Why the 'inception' (random-resized) crop is the fine-tuning default: it is the standard
ImageNet training augmentation that VGG-style fine-tuning recipes assume (area 8-100%, aspect
3/4-4/3), it adds scale augmentation that a fixed-size square lacks, and both loaders can
decode only the crop window (DALI ``fn.decoders.image_random_crop``, TF
``decode_and_crop_jpeg``), which is cheaper than decoding the whole image. 'square' is a
random square of side ``min(h, w) - 20``: almost the whole image, the from-scratch default.

Eval mode: every file once, in input order; the centre square ``side = min(h, w)`` at integer
offsets ``((h-side)//2, (w-side)//2)``; one antialiased bilinear resize (TF
``resize(bilinear, antialias=True)``; on DALI's CPU backend fastfood's native operator, which
computes exactly that, or DALI ``resize(INTERP_LINEAR, antialias=True)`` on the GPU);
JPEGs decoded with the accurate integer IDCT on both. DALI (CPU) and tf.data agree to a
mean absolute difference of a few hundredths of a level on 0-255 (tests/test_parity.py).

EXIF orientation follows the request's ``exif`` (the run's ``--exif``): on, every path
turns a JPEG upright by its Orientation tag before cropping: tf.data and the exported
model through ``exif.py`` (graph ops, since TensorFlow has no EXIF op), DALI through its
decoders' ``adjust_orientation``; off (runs saved before the setting), the stored pixels.
Grayscale and CMYK JPEGs become RGB; PNG works
everywhere (the format is told by magic bytes, not file names).

Bad files: ``build()`` first runs ``validate.check_files`` (a cheap read of each file's
header and end) on every kind but synthetic, drops the files that fail, logs a warning on
the ``fastfood`` logger naming them, and appends ``(path, reason)`` to ``report`` when given
one. This is the policy in both modes: eval reports the files by name and evaluates the
rest. A file that passes the preflight but fails to decode is dropped by tf.data training
and named through ``request.skips`` (a ``skips.SkipLog``: the loop prints it, counts it in
summary.json, and stops under --strict); DALI and tf.data eval raise on such a file, and
the training loop then names it and stops with a checkpoint.

Packed shards (``fastfood pack``; file lists of ``<shard>#<record>`` names): tf.data reads
them with ``TFRecordDataset`` (``records.py``), DALI with ``fn.readers.tfrecord``; no
preflight (the pack checked every image); the epoch order shuffles the shards and the
records inside each (``order.epoch_order`` with groups), from (seed, epoch) as for files.

``steps_per_epoch(num_files, ...)`` counts the files it is given: pass the number of good
files (``len(validate.check_files(files)[0])``) when a data set may contain bad ones.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastfood.data import shards
from fastfood.errors import FastfoodError
from fastfood.loaders import order, validate
from fastfood.loaders.request import LoaderRequest
from fastfood.config import MAX_PIXELS

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["build", "build_request", "LoaderRequest", "PAD_LABEL", "steps_per_epoch",
           "resolve_kind", "dali_available"]

log = logging.getLogger("fastfood")

_MAX_NAMED = 20  # bad files named in one log line; the report gets all of them

# The label of a padding sample: eval batches of a fixed size are filled up with samples
# carrying it, and the metrics leave them out.
PAD_LABEL = -1


def steps_per_epoch(num_files: int, batch_size: int, shard: tuple[int, int] = (0, 1)) -> int:
    """Full batches per training epoch on every shard (the smallest shard's; remainder dropped)."""
    return order.steps_per_epoch(num_files, batch_size, shard)


def full_batches(num_files: int, batch_size: int, shards: int) -> int:
    """`steps_per_epoch` over `shards` shards; a FastfoodError naming --batch-size when the
    files make no full batch per shard (the one check of it, for the loaders and the loop)."""
    steps = order.steps_per_epoch(num_files, batch_size, (0, shards))
    if steps == 0:
        raise FastfoodError(
            f"{num_files} usable images make no full batch of {batch_size} per input pipeline "
            f"({shards} pipelines): lower --batch-size")
    return steps


@functools.lru_cache(maxsize=1)
def dali_available() -> bool:
    """Whether DALI's TensorFlow plugin imports here (it is built against the installed TF)."""
    try:
        import nvidia.dali.plugin.tf  # noqa: F401
    except Exception:  # ImportError, or a plugin built against another TF (OSError, ...)
        return False
    return True


def resolve_kind(kind: str) -> str:
    """'auto' -> 'dali' or 'tfdata'; 'dali' where its plugin does not import is an error."""
    if kind == "auto":
        return "dali" if dali_available() else "tfdata"
    if kind == "dali" and not dali_available():
        raise FastfoodError(
            "--loader dali: the DALI TensorFlow plugin (nvidia.dali.plugin.tf) does not import; "
            "rerun scripts/setup.sh or use --loader tfdata"
        )
    return kind


def preflight(files: Sequence[str], max_pixels: int = MAX_PIXELS
              ) -> tuple[tuple[int, ...], tuple[tuple[str, str], ...]]:
    """(indices of the usable files, (path, reason) of the others), remembered per list.
    Packed records were checked when they were packed: all of them are usable."""
    if shards.are_refs(files):
        return tuple(range(len(files))), ()
    return _preflight(tuple(str(f) for f in files), max_pixels)


@functools.lru_cache(maxsize=4)
def _preflight(files: tuple[str, ...], max_pixels: int
               ) -> tuple[tuple[int, ...], tuple[tuple[str, str], ...]]:
    """check_files, remembered: the loop builds a dataset per epoch over the same list."""
    good, bad = validate.check_files(files, max_pixels)
    if bad:
        named = "; ".join(f"{p} ({r})" for p, r in bad[:_MAX_NAMED])
        more = f"; and {len(bad) - _MAX_NAMED} more" if len(bad) > _MAX_NAMED else ""
        log.warning("skipping %d of %d image files that cannot be read: %s%s",
                    len(bad), len(files), named, more)
    return tuple(good), tuple(bad)


def build(
    kind: str,
    files: Sequence[str],
    labels: Sequence[int],
    *,
    report: list[tuple[str, str]] | None = None,
    **request: Any,
) -> "tf.data.Dataset":
    """A dataset of ``(images uint8 [B,S,S,3], labels int32 [B])``; see the module docstring.

    ``request``: the fields of ``LoaderRequest`` (training, batch_size, image_size, seed,
    shard, epoch, epochs, skip_batches, crop, num_threads, device, skips, max_pixels,
    augment, random_erasing, exif).
    ``report``: when given, ``(path, reason)`` of every file skipped by the preflight is
    appended to it.
    """
    return build_request(LoaderRequest(kind=kind, **request), files, labels, report=report)


def build_request(request: LoaderRequest, files: Sequence[str], labels: Sequence[int], *,
                  report: list[tuple[str, str]] | None = None) -> "tf.data.Dataset":
    """``build`` for a request already made (the training loop keeps one per pipeline)."""
    files = [str(f) for f in files]
    labels = [int(x) for x in labels]
    if len(files) != len(labels):
        raise ValueError(f"{len(files)} files but {len(labels)} labels")
    request = request.but(kind=resolve_kind(request.kind))
    if not files:
        raise FastfoodError("no image files to load (empty file list)")

    packed = shards.are_refs(files)
    if request.kind != "synthetic" and not packed:
        good, bad = _preflight(tuple(files), request.max_pixels)
        if report is not None:
            report.extend(bad)
        if not good:
            path, reason = bad[0]
            raise FastfoodError(f"none of the {len(files)} image files can be read (first: {path}: {reason})")
        if bad:
            files = [files[i] for i in good]
            labels = [labels[i] for i in good]
    if request.training:
        full_batches(len(files), request.batch_size, request.shard[1])

    if request.kind == "synthetic":
        from fastfood.loaders import synthetic

        return synthetic.build(len(files), labels, request)
    if request.kind == "dali":
        from fastfood.loaders import dali

        return dali.build(files, labels, request)
    if packed:
        from fastfood.loaders import records

        return records.build(files, labels, request)
    from fastfood.loaders import tfdata

    return tfdata.build(files, labels, request)
