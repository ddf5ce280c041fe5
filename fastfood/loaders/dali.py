"""The DALI loader: ``dali_pipeline.fastfood_pipeline`` wrapped in a ``DALIDataset``.

Placement: with a GPU the pipeline decodes with ``device='mixed'`` (nvJPEG) and the
dataset is made under ``tf.device('/gpu:N')`` with ``device_id=N``, so batches arrive in
that GPU's memory. N comes from the request (``device='gpu:N'``), else from the caller's
``tf.device`` scope (how ``tf.distribute`` places a per-replica pipeline with
``experimental_place_dataset_on_device``, as DALI's tf.distribute guide does), else 0.
Without a GPU it runs DALI's CPU backend with ``device_id=None`` under ``/cpu:0``.

A GPU-placed dataset is returned bare: TensorFlow registers ``take``, ``concatenate`` and
the other dataset ops for the host only, so any of them on top would copy every batch
GPU -> host -> GPU, or fail on the device mismatch. It never ends (the reader wraps
around); the consumer counts its steps, and must make its iterator under the same
``tf.device`` (``gpu_of`` names the GPU). On the host the dataset ends after the request's batches,
unless the request is ``endless`` (the training loop's long-lived pipelines).

Lifetime: one pipeline serves a whole run. Training hands the reader every remaining
epoch's order back to back (``order.run_indices``); eval pads the shard to whole batches
with ``PAD_LABEL`` samples (``order.padded_eval_indices``), so each validation pass reads
exactly one reader epoch and the next pass starts at the first file again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from fastfood.data import shards
from fastfood.loaders import order
from fastfood.loaders.budget import budget
from fastfood.loaders.dali_pipeline import make_pipeline
from fastfood.loaders.request import LoaderRequest


def _dali_seed(*parts: int) -> int:
    """A DALI pipeline seed (non-negative int32) from several ints."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def _scoped_gpu() -> int:
    """Index of the GPU the caller's ``tf.device`` scope names; 0 when it names none."""
    probe = tf.zeros([])  # placed by the enclosing device scope, like any op
    spec = tf.DeviceSpec.from_string(probe.device or "")
    if spec.device_type == "GPU" and spec.device_index is not None:
        return int(spec.device_index)
    return 0


def gpu_of(request: LoaderRequest) -> int | None:
    """The GPU this request's pipeline decodes on, or None for DALI's CPU backend.

    A GPU is used when the request names one, or when it is ``endless`` (a consumer that
    counts its steps, like the training loop) and TensorFlow sees one. A plain request
    (predict, evaluate, a test) gets the host pipeline, whose dataset ends by itself.
    """
    if request.device == "cpu":
        return None
    if request.gpu_index is not None:
        return request.gpu_index
    if not request.endless:
        return None
    return _scoped_gpu() if tf.config.list_physical_devices("GPU") else None


def steps(num_files: int, request: LoaderRequest) -> int:
    """Batches the dataset yields: the run's remaining training batches, or one eval pass."""
    if request.training:
        spe = order.steps_per_epoch(num_files, request.batch_size, request.shard)
        return max(spe * request.epochs - request.skip_batches, 0)
    indices, _ = order.padded_eval_indices(num_files, request.batch_size, request.shard)
    return len(indices) // request.batch_size


def build(files: Sequence[str], labels: Sequence[int], request: LoaderRequest) -> tf.data.Dataset:
    """Files already preflighted (see ``fastfood.loaders.build``) to batches.

    ``request.pipelines`` (how many DALI pipelines this process runs side by side, one per
    local replica) splits the cores between them (``budget.budget``).
    """
    gpu = gpu_of(request)
    n, batch, size = len(files), request.batch_size, request.image_size
    packed = shards.are_refs(files)
    if request.training:
        indices = order.run_indices(
            n, seed=request.seed, epoch=request.epoch, epochs=request.epochs,
            batch_size=batch, shard=request.shard, skip_batches=request.skip_batches,
            groups=shards.group_sizes(files) if packed else None)
        if len(indices) == 0:  # resumed at the very end of the run
            return _empty(size, batch)
        read_labels = [labels[i] for i in indices]
        read_files = [files[i] for i in indices]
        seed = _dali_seed(request.seed, request.epoch, request.shard[0], request.skip_batches)
    else:
        indices, valid = order.padded_eval_indices(n, batch, request.shard)
        read_labels = [labels[i] if ok else -1 for i, ok in zip(indices, valid)]
        read_files = [files[i] if ok else "" for i, ok in zip(indices, valid)]
        if packed:  # padding slots read the pad record, labelled -1
            pad = shards.ref(shards.pad_shard(files), 0)
            read_files = [f or pad for f in read_files]
        else:
            read_files = [f or files[i] for f, i in zip(read_files, indices)]
        seed = request.seed
    share = budget(pipelines=request.pipelines, requested_threads=request.num_threads)
    pipe = make_pipeline(
        read_files, read_labels, request.but(seed=seed),
        device="cpu" if gpu is None else "gpu", device_id=gpu, share=share,
        records=run_indexes(read_files) if packed else None,
    )
    dataset = wrap(pipe, gpu, batch, size, share.num_threads)
    if gpu is not None or request.endless:
        return dataset
    return dataset.take(steps(n, request))


_INDEX_DIRS: list[str] = []


def run_indexes(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(shard paths, index paths) for DALI's TFRecord reader to read these records in
    this order: one index per run of records of one shard, listing their (offset, size)
    in reading order (the reader follows its index entry by entry, seeking as needed).

    The indexes go to a temporary folder removed when the process ends: DALI reads them
    when the pipeline starts, and a run holds one pipeline for its whole length.
    """
    import atexit
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="fastfood-dali-index-")
    if not _INDEX_DIRS:
        atexit.register(lambda: [shutil.rmtree(d, ignore_errors=True) for d in _INDEX_DIRS])
    _INDEX_DIRS.append(folder)
    paths, indexes = [], []
    for k, (shard, records) in enumerate(shards.runs(names)):
        table = shards.read_index(shard)[records]
        index = os.path.join(folder, f"{k:06d}.idx")
        with open(index, "w") as f:
            f.write("".join(f"{o} {s}\n" for o, s in table.tolist()))
        paths.append(shard)
        indexes.append(index)
    return paths, indexes


def wrap(pipe, gpu: int | None, batch: int, image_size: int, num_threads: int) -> tf.data.Dataset:
    """The pipeline as a ``DALIDataset`` made under its device: ``/gpu:N``, or the host.

    Returned as it is, with nothing on top (see the module docstring).
    """
    import nvidia.dali.plugin.tf as dali_tf

    with tf.device("/cpu:0" if gpu is None else f"/gpu:{gpu}"):
        return dali_tf.DALIDataset(
            pipeline=pipe,
            batch_size=batch,
            num_threads=num_threads,
            device_id=gpu,
            output_shapes=((batch, image_size, image_size, 3), (batch,)),
            output_dtypes=(tf.uint8, tf.int32),
        )


def _empty(image_size: int, batch_size: int) -> tf.data.Dataset:
    """A zero-step dataset with the training element spec."""
    images = np.zeros((0, batch_size, image_size, image_size, 3), np.uint8)
    labels = np.zeros((0, batch_size), np.int32)
    return tf.data.Dataset.from_tensor_slices((images, labels))
