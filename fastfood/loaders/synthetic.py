"""One fixed random batch, repeated: the model's speed with no input cost.

As NVIDIA's ``fake_image_set``: the batch is made once (seeded uint8 noise, labels cycling
through the classes present in ``labels``), and the dataset repeats that same tensor, so a
step's time is compute plus the host-to-device copy of one batch. Training yields the same
number of steps as a real epoch over the same files; eval covers the same number of files
(last partial batch kept). No file is read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from fastfood.loaders import order
from fastfood.loaders.request import LoaderRequest


def build(num_files: int, labels: Sequence[int], request: LoaderRequest) -> tf.data.Dataset:
    """``(images, labels)`` batches with the shapes the real loaders give for these files."""
    batch_size, image_size, shard = request.batch_size, request.image_size, request.shard
    num_classes = max(max(labels, default=0) + 1, 1)
    rng = np.random.default_rng(request.seed)
    images = rng.integers(0, 256, (batch_size, image_size, image_size, 3), dtype=np.uint8)
    batch_labels = (np.arange(batch_size) % num_classes).astype(np.int32)
    if request.training:
        spe = order.steps_per_epoch(num_files, batch_size, shard)
        steps = max(spe * request.epochs - request.skip_batches, 0)
        return tf.data.Dataset.from_tensors((images, batch_labels)).repeat(steps)
    start, end = order.shard_bounds(num_files, shard)
    full, rest = divmod(end - start, batch_size)
    ds = tf.data.Dataset.from_tensors((images, batch_labels)).repeat(full)
    # The partial last batch (none when ``rest`` is 0: ``take(0)``). Concatenating batches of
    # two sizes also leaves the batch dimension unknown, as the other loaders have in eval.
    tail = tf.data.Dataset.from_tensors((images[:rest], batch_labels[:rest]))
    return ds.concatenate(tail if rest else tail.take(0))
