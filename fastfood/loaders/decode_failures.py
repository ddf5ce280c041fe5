"""tf.data training: name every file that fails to decode instead of dropping it silently.

A file can pass the preflight and still fail inside its compressed data. Ending the epoch on
it would cost a run hours in; dropping it without a word (``ignore_errors`` alone) hides it.
Here the drop is kept but each dropped file is found and named, cheaply:

- the decode map runs in order and every element carries its position in the epoch; the
  positions of an epoch are one contiguous run (``order.epoch_positions``), so a dropped
  file is a gap in the positions that come out;
- an end marker (position = one past the last) follows the last element, so a gap at the
  very end, in what would be the dropped partial batch, is seen too;
- a ``scan`` over the batches keeps the last position seen (its state lives in the
  iterator, so every pass over the dataset counts afresh) and computes each batch's gaps
  in the graph; only a batch with a gap calls into Python (``tf.py_function``), which
  decodes just those files again, eagerly, to learn the decoder's reason, and reports them;
- the batch holding the end marker, and any batch short of ``batch_size``, is dropped, so
  the batches are those ``batch(drop_remainder=True)`` would give.

Cost against ``ignore_errors`` alone: within the noise of a 2-core machine (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from fastfood.errors import one_line

# Called with (path, reason) for each file that failed to decode.
Report = Callable[[str, str], object]


def batch_naming_failures(
    ds: tf.data.Dataset,
    *,
    names: Sequence[str],
    first: int,
    batch_size: int,
    image_size: int,
    redecode: Callable[[str, int], object],
    report: Report,
) -> tf.data.Dataset:
    """Batches ``(images, labels)`` of ``ds``, reporting every file dropped from it.

    ``ds``: ``(image, label, position)`` in position order, after ``ignore_errors``, where
    ``names[i]`` was planned at position ``first + i``. ``redecode(path, position)`` repeats
    the failed decode eagerly (its exception gives the reason). ``report(path, reason)`` is
    called once per dropped file, from a tf.data thread; ``reason`` is the decoder's own
    words, one line (for "cannot decode (reason)").
    """
    names = list(names)
    end = first + len(names)

    def name_them(missing: tf.Tensor) -> int:
        for position in missing.numpy().tolist():
            path = names[position - first]
            report(path, _reason(redecode, path, position))
        return len(missing)

    def gaps(last: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor, tf.Tensor]):
        images, labels, positions = batch
        top = positions[-1]
        expected = tf.range(last + 1, top + 1, dtype=tf.int64)
        seen = tf.reduce_any(tf.equal(expected[:, None], positions[None, :]), axis=1)
        missing = tf.boolean_mask(expected, tf.logical_not(seen))
        named = tf.cond(
            tf.size(missing) > 0,
            lambda: tf.py_function(name_them, [missing], tf.int64),
            lambda: tf.constant(0, tf.int64),
        )
        with tf.control_dependencies([named]):
            full = tf.logical_and(tf.equal(tf.shape(positions)[0], batch_size), top < end)
        return top, (images, labels, full)

    marker = tf.data.Dataset.from_tensors((
        tf.zeros([image_size, image_size, 3], tf.uint8),
        tf.constant(0, tf.int32),
        tf.constant(end, tf.int64),
    ))
    ds = ds.concatenate(marker).batch(batch_size)
    ds = ds.scan(tf.constant(first - 1, tf.int64), gaps)
    ds = ds.filter(lambda images, labels, full: full)
    return ds.map(lambda images, labels, full: (
        tf.ensure_shape(images, [batch_size, image_size, image_size, 3]),
        tf.ensure_shape(labels, [batch_size]),
    ))


def _reason(redecode: Callable[[str, int], object], path: str, position: int) -> str:
    """The decoder's own complaint about ``path``, as one line."""
    try:
        redecode(path, position)
    except (tf.errors.OpError, ValueError) as err:
        return one_line(err, prefix="")  # the reader says "cannot decode (...)" itself
    # Decodes now: the failure was in reading it (the file changed or vanished meanwhile).
    return "failed while training, decodes now (was the file being written?)"
