"""The pure tf.data loader: the fallback when DALI is absent, and the parity reference.

Shape of the pipeline: a dataset of file NAMES (plus labels and epoch positions) in the
order ``order.py`` decided, a parallel map that reads and decodes each file
(``tf.io.read_file`` inside the map, so only names are ever held in bulk and memory stays
bounded whatever the data set size), batch, prefetch. No ``shuffle()``: the epoch order
is already a permutation, shared with DALI and recomputable on resume.

Training decodes only the crop window of a JPEG (``decode_and_crop_jpeg``); the crop, flip,
auto-augmentation and erasing come from stateless random ops keyed by (seed, epoch,
position in the epoch), so a resumed epoch (``skip_batches``) gives every remaining sample
the view it would have had.
Eval decodes the whole file through ``preprocess.eval_image``, the function predict and the
exported SavedModel use.

A file that passed the preflight but fails to decode in training is dropped from the epoch
and NAMED (``decode_failures.py``): added to ``request.skips`` when given (the training loop
reports it), else logged as a warning on the ``fastfood`` logger. To find it, the training
decode map keeps the planned order, so the epoch's order is exact rather than only its set
of images. Eval raises on such a file; ``serve.batches`` finds and names it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from fastfood.loaders import order, preprocess
from fastfood.loaders.decode_failures import batch_naming_failures
from fastfood.loaders.request import LoaderRequest

log = logging.getLogger("fastfood")


def _options(training: bool, num_threads: int, deterministic: bool | None) -> tf.data.Options:
    options = tf.data.Options()
    # Let tf.data tune the map's parallelism and the prefetch depth to the machine (AUTOTUNE
    # below); this is the default, stated because everything else here relies on it.
    options.autotune.enabled = True
    # In order: eval outputs must line up with the input order, and training finds the files
    # that failed to decode as gaps in the planned order (its decode map asks for order
    # whatever this says). Measured: no cost against letting fast images overtake slow ones.
    options.deterministic = True if deterministic is None else deterministic
    # Run independent per-element work in parallel even where we did not ask for it.
    options.experimental_optimization.map_parallelization = True
    # One thread per decode: the parallelism is across images (the map), and this keeps
    # decode ops from also fanning out into TF's shared intra-op pool that the model uses.
    options.threading.max_intra_op_parallelism = 1
    if num_threads > 0:
        # A fixed, private pool for the input pipeline: a user asking for N threads gets N,
        # and the pipeline does not compete with the training step for TF's inter-op pool.
        options.threading.private_threadpool_size = num_threads
    return options


def build(files: Sequence[str], labels: Sequence[int], request: LoaderRequest, *,
          deterministic: bool | None = None) -> tf.data.Dataset:
    """Files already preflighted (see ``fastfood.loaders.build``) to batches.

    ``deterministic``: None for the default (in order). ``request.skips`` (a SkipLog):
    where training records ``(path, reason)`` of each file that fails to decode, once per
    file; without one, each is logged as a warning.
    """
    if request.training and request.epochs > 1:
        first = _build(files, labels, request.but(epochs=1))
        for e in range(request.epoch + 1, request.epoch + request.epochs):
            first = first.concatenate(
                _build(files, labels, request.but(epoch=e, epochs=1, skip_batches=0)))
        return first.with_options(_options(True, request.num_threads, deterministic))
    return _build(files, labels, request).with_options(
        _options(request.training, request.num_threads, deterministic))


def _build(files: Sequence[str], labels: Sequence[int], request: LoaderRequest) -> tf.data.Dataset:
    """One epoch (training) or one pass (eval), without options."""
    training, batch_size, image_size = request.training, request.batch_size, request.image_size
    seed, shard, epoch, skip_batches = (request.seed, request.shard, request.epoch,
                                        request.skip_batches)
    crop = request.crop
    files_arr = np.asarray(files, dtype=object)
    labels_arr = np.asarray(labels, dtype=np.int32)
    parallel = tf.data.AUTOTUNE
    if training:
        indices, positions = order.epoch_indices(
            len(files), seed=seed, epoch=epoch, batch_size=batch_size,
            shard=shard, skip_batches=skip_batches,
        )
        base_key = tf.constant([seed, epoch], dtype=tf.int64)

        names = files_arr[indices].astype(str)

        def train_view(path: tf.Tensor, position: tf.Tensor) -> tf.Tensor:
            key = tf.random.experimental.stateless_fold_in(base_key, position)
            return preprocess.train_image(
                tf.io.read_file(path), key, image_size, crop, augment=request.augment,
                random_erasing=request.random_erasing, exif=request.exif)

        def load_train(path: tf.Tensor, label: tf.Tensor, position: tf.Tensor):
            return train_view(path, position), label, position

        ds = tf.data.Dataset.from_tensor_slices((names, labels_arr[indices], positions))
        ds = ds.map(load_train, num_parallel_calls=parallel, deterministic=True)
        # A file that passed the preflight but fails to decode is dropped rather than ending
        # the run, and named below. Training only: eval must see every file.
        ds = ds.ignore_errors()
        skips = request.skips
        ds = batch_naming_failures(
            ds, names=names.tolist(), first=int(positions[0]) if len(positions) else 0,
            batch_size=batch_size, image_size=image_size,
            redecode=lambda path, position: train_view(tf.constant(path),
                                                       tf.constant(position, tf.int64)),
            report=skips.add if skips is not None else _warn,
        )
    else:
        indices = order.eval_indices(len(files), shard)

        def load_eval(path: tf.Tensor, label: tf.Tensor):
            return preprocess.eval_image(tf.io.read_file(path), image_size,
                                         request.exif), label

        ds = tf.data.Dataset.from_tensor_slices(
            (files_arr[indices].astype(str), labels_arr[indices])
        )
        ds = ds.map(load_eval, num_parallel_calls=parallel)
        ds = ds.batch(batch_size, drop_remainder=False)
    return ds.prefetch(parallel)


def _warn(path: str, reason: str) -> None:
    log.warning("skipping %s: cannot decode (%s)", path, reason)
