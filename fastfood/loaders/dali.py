"""The DALI loader: ``dali_pipeline.fastfood_pipeline`` wrapped in a ``DALIDataset``.

Placement: with a GPU visible to TensorFlow the pipeline decodes with ``device='mixed'``
and the dataset lives on ``/gpu:N`` with ``device_id=N``, so batches arrive in GPU memory
without a host copy. N is the GPU named by the caller's ``tf.device`` scope (how
``tf.distribute`` places a per-replica pipeline with ``experimental_place_dataset_on_device``,
as DALI's tf.distribute guide does), else 0. Without a GPU it runs DALI's CPU backend with
``device_id=None`` under ``/cpu:0``.

Epochs: ``DALIDataset`` never ends (its reader wraps around), so training takes exactly
``steps_per_epoch - skip_batches`` batches from a pipeline whose reader holds exactly those
files, in the epoch's order. Eval needs every file once with the last partial batch kept,
and DALI batches are fixed-size, so eval concatenates two pipelines: the full batches, then
one pipeline whose batch size is the remainder. Nothing is padded or trimmed, so no
TensorFlow op ever touches the (possibly GPU-resident) images; ``take`` and ``concatenate``
only pass them through.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from fastfood.loaders import order
from fastfood.loaders.dali_pipeline import make_pipeline


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


def _num_threads(num_threads: int) -> int:
    import os

    return num_threads if num_threads > 0 else (os.cpu_count() or 1)


def _dataset(
    files: Sequence[str],
    labels: Sequence[int],
    *,
    training: bool,
    batch_size: int,
    image_size: int,
    crop: str,
    seed: int,
    num_threads: int,
    gpu: bool,
    static_batch: bool,
) -> tf.data.Dataset:
    threads = _num_threads(num_threads)
    device_id = _scoped_gpu() if gpu else None
    pipe = make_pipeline(
        files, labels, training=training, batch_size=batch_size, image_size=image_size,
        device="gpu" if gpu else "cpu", crop=crop, seed=seed, num_threads=threads,
        device_id=device_id,
    )
    batch = batch_size if static_batch else None
    import nvidia.dali.plugin.tf as dali_tf

    with tf.device(f"/gpu:{device_id}" if gpu else "/cpu:0"):
        return dali_tf.DALIDataset(
            pipeline=pipe,
            batch_size=batch_size,
            num_threads=threads,
            device_id=device_id,
            output_shapes=((batch, image_size, image_size, 3), (batch,)),
            output_dtypes=(tf.uint8, tf.int32),
        )


def build(
    files: Sequence[str],
    labels: Sequence[int],
    *,
    training: bool,
    batch_size: int,
    image_size: int,
    seed: int = 0,
    shard: tuple[int, int] = (0, 1),
    epoch: int = 0,
    skip_batches: int = 0,
    crop: str = "inception",
    num_threads: int = 0,
) -> tf.data.Dataset:
    """Files already preflighted (see ``fastfood.loaders.build``) to batches."""
    gpu = bool(tf.config.list_physical_devices("GPU"))
    common = dict(image_size=image_size, crop=crop, num_threads=num_threads, gpu=gpu)
    if training:
        indices, _ = order.epoch_indices(
            len(files), seed=seed, epoch=epoch, batch_size=batch_size,
            shard=shard, skip_batches=skip_batches,
        )
        steps = len(indices) // batch_size
        if steps == 0:  # resumed at the very end of the epoch
            return _empty(image_size, batch_size)
        ds = _dataset(
            [files[i] for i in indices], [labels[i] for i in indices], training=True,
            batch_size=batch_size, seed=_dali_seed(seed, epoch, shard[0], skip_batches),
            static_batch=True, **common,
        )
        return ds.take(steps)

    indices = order.eval_indices(len(files), shard)
    full, rest = divmod(len(indices), batch_size)
    parts = []
    if full:
        head = indices[: full * batch_size]
        parts.append(
            _dataset([files[i] for i in head], [labels[i] for i in head], training=False,
                     batch_size=batch_size, seed=seed, static_batch=False, **common).take(full)
        )
    if rest:
        tail = indices[full * batch_size:]
        parts.append(
            _dataset([files[i] for i in tail], [labels[i] for i in tail], training=False,
                     batch_size=rest, seed=seed, static_batch=False, **common).take(1)
        )
    ds = parts[0]
    for part in parts[1:]:
        ds = ds.concatenate(part)
    return ds


def _empty(image_size: int, batch_size: int) -> tf.data.Dataset:
    """A zero-step epoch with the training element spec."""
    images = np.zeros((0, batch_size, image_size, image_size, 3), np.uint8)
    labels = np.zeros((0, batch_size), np.int32)
    return tf.data.Dataset.from_tensor_slices((images, labels))
