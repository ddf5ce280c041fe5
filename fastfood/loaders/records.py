"""tf.data from packed shards (`fastfood pack`): TFRecordDataset, then the files path's views.

The epoch order is `order.epoch_order` with the shards as groups: a permutation of the
shards, and inside each a permutation of its records, both from (seed, epoch). It is cut
into replicas and resumed exactly as the files' order is (`order.epoch_indices`), so a
resumed run reads the records the interrupted one would have read next, and every sample
gets the crop and flip of its position in the epoch, keyed as in `tfdata.py`: the same
images give the same training views from shards as from files in the same order.

Reading: for each run of records of one shard in that order, `TFRecordDataset` reads the
shard front to back (one sequential read: what a network file system or a bucket does
best; the records' CRCs are checked on the way) and the run's records are gathered from
it. A shard is held in memory while its records are handed on (the `--shard-mb` of the
pack, 256 MB by default), so memory stays bounded whatever the dataset's size.

The pack checked every image (the preflight and a full decode), so nothing is skipped
here: a record that still fails to decode stops the run with the decoder's error (the
record is not named: the error carries no position).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from fastfood.data import shards
from fastfood.loaders import order, preprocess
from fastfood.loaders.request import LoaderRequest
from fastfood.loaders.tfdata import _options

_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
}


def read_records(names: Sequence[str]) -> tf.data.Dataset:
    """(encoded bytes, int32 label) of the named records, in this order."""
    groups = shards.runs(names)
    biggest = max(len(shards.read_index(shard)) for shard, _ in groups)
    bounds = np.cumsum([0] + [len(records) for _, records in groups]).astype(np.int64)
    wanted = tf.constant(np.concatenate([records for _, records in groups]))

    def one_run(path: tf.Tensor, start: tf.Tensor, end: tf.Tensor) -> tf.data.Dataset:
        whole = tf.data.TFRecordDataset(path).batch(biggest)  # the shard as one element
        return whole.map(lambda recs: tf.gather(recs, wanted[start:end])).unbatch()

    runs = tf.data.Dataset.from_tensor_slices(
        ([shard for shard, _ in groups], bounds[:-1], bounds[1:]))
    return runs.flat_map(one_run).map(_parse, num_parallel_calls=tf.data.AUTOTUNE)


def _parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    example = tf.io.parse_single_example(record, _FEATURES)
    return example["image/encoded"], tf.cast(example["image/class/label"], tf.int32)


def build(names: Sequence[str], labels: Sequence[int], request: LoaderRequest
          ) -> tf.data.Dataset:
    """Batches of ``(images, labels)`` from the named records (see the module docstring);
    `labels` are the manifest's, for the shapes only: each label is read from its record."""
    if request.training and request.epochs > 1:
        first = _build(names, request.but(epochs=1))
        for e in range(request.epoch + 1, request.epoch + request.epochs):
            first = first.concatenate(_build(names, request.but(epoch=e, epochs=1,
                                                                skip_batches=0)))
        return first.with_options(_options(True, request.num_threads, None))
    return _build(names, request).with_options(
        _options(request.training, request.num_threads, None))


def _build(names: Sequence[str], request: LoaderRequest) -> tf.data.Dataset:
    size, batch = request.image_size, request.batch_size
    if request.training:
        indices, positions = order.epoch_indices(
            len(names), seed=request.seed, epoch=request.epoch, batch_size=batch,
            shard=request.shard, skip_batches=request.skip_batches,
            groups=shards.group_sizes(names))
        if len(indices) == 0:
            return _empty(size, batch)
        base_key = tf.constant([request.seed, request.epoch], dtype=tf.int64)
        crop = request.crop

        def view(encoded: tf.Tensor, label: tf.Tensor, position: tf.Tensor):
            key = tf.random.experimental.stateless_fold_in(base_key, position)
            return preprocess.train_image(encoded, key, size, crop), label

        records = read_records([names[i] for i in indices])
        ds = tf.data.Dataset.zip((records, tf.data.Dataset.from_tensor_slices(positions)))
        ds = ds.map(lambda pair, position: view(*pair, position),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(batch, drop_remainder=True)
    else:
        indices = order.eval_indices(len(names), request.shard)
        if len(indices) == 0:
            return _empty(size, batch)
        ds = read_records([names[i] for i in indices]).map(
            lambda encoded, label: (preprocess.eval_image(encoded, size), label),
            num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(batch, drop_remainder=False)
    return ds.prefetch(tf.data.AUTOTUNE)


def _empty(image_size: int, batch_size: int) -> tf.data.Dataset:
    images = np.zeros((0, batch_size, image_size, image_size, 3), np.uint8)
    return tf.data.Dataset.from_tensor_slices((images, np.zeros((0, batch_size), np.int32)))
