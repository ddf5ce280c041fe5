"""The input pipelines fastfood's loaders are compared with, each as a user would write it.

- `seed`: the baseline, a plain hand-written tf.data pipeline (float32 from the decode on,
  AREA resize, a random square crop), the kind fastfood's loaders replace. As first
  written, its eval centre crop took the width offset from the height; the offsets here
  are the correct ones so no file fails, and the cost is the same.
- `keras`: `keras.utils.image_dataset_from_directory(..., crop_to_aspect_ratio=True)`
  plus the `.prefetch(AUTOTUNE)` its tutorial adds.
- `pil`: plain Python, PIL decode + crop + resize in a thread pool (PIL drops the GIL).
- `limit`: PIL full decode of every file on every core, nothing else: no crop, no
  resize, no batching. No loader that decodes whole JPEGs on the CPU can beat it by
  much, so it is the yardstick for "as fast as this machine decodes".

Each `make_*` returns a factory of one pass over the files, yielding images per batch,
for `fastfood.benchmark.timing.time_passes`.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from fastfood.benchmark.timing import batch_sizes
from fastfood.loaders.spec import SQUARE_MARGIN

PassFactory = Callable[[], Iterable[int]]
SEED_TRAIN_MARGIN = 2 * SQUARE_MARGIN  # the baseline's random square: side = min(h, w) - this


def make_seed(
    files: Sequence[str], *, training: bool, batch_size: int, image_size: int, seed: int = 0
) -> PassFactory:
    """The baseline tf.data pipeline (float32, AREA resize)."""
    import tensorflow as tf

    def load(path: tf.Tensor) -> tf.Tensor:
        image = tf.image.decode_jpeg(tf.io.read_file(path), channels=3)
        image = tf.image.convert_image_dtype(image, tf.float32)
        shape = tf.shape(image)
        h, w = shape[0], shape[1]
        side = tf.minimum(h, w)
        if training:
            side = tf.maximum(side - SEED_TRAIN_MARGIN, 1)
            image = tf.image.random_crop(image, tf.stack([side, side, 3]))
            image = tf.image.random_flip_left_right(image)
        else:
            image = tf.image.crop_to_bounding_box(image, (h - side) // 2, (w - side) // 2,
                                                  side, side)
        return tf.image.resize(image, [image_size, image_size], method=tf.image.ResizeMethod.AREA)

    def make() -> Iterator[int]:
        ds = tf.data.Dataset.from_tensor_slices(list(files))
        if training:
            ds = ds.shuffle(len(files), seed=seed)
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
        return batch_sizes(ds)

    return make


def make_keras(
    root: str, *, training: bool, batch_size: int, image_size: int, seed: int = 0
) -> PassFactory:
    """`image_dataset_from_directory` on a class-folder root (Food-101: its images/)."""
    import keras
    import tensorflow as tf

    ds = keras.utils.image_dataset_from_directory(
        root, image_size=(image_size, image_size), crop_to_aspect_ratio=True,
        batch_size=batch_size, shuffle=training, seed=seed, verbose=False,
    ).prefetch(tf.data.AUTOTUNE)
    return lambda: batch_sizes(ds)


def _pil_crop_resize(path: str, training: bool, image_size: int, rng: np.random.Generator
                     ) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    w, h = img.size
    side = min(w, h)
    if training:
        side = max(side - SEED_TRAIN_MARGIN, 1)
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    else:
        x, y = (w - side) // 2, (h - side) // 2
    img = img.resize((image_size, image_size), Image.BILINEAR, box=(x, y, x + side, y + side))
    if training and rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(img)


def make_pil(
    files: Sequence[str], *, training: bool, batch_size: int, image_size: int, seed: int = 0,
    threads: int = 0,
) -> PassFactory:
    """PIL in a thread pool, batches stacked with numpy: the do-it-yourself loader."""
    threads = threads or os.cpu_count() or 1
    passes = iter(range(1 << 30))

    def make() -> Iterator[int]:
        rng = np.random.default_rng([seed, next(passes)])
        order = rng.permutation(len(files)) if training else np.arange(len(files))
        stop = len(files) - len(files) % batch_size if training else len(files)
        seeds = rng.integers(0, 2**31, size=len(files))
        def work(i: int) -> np.ndarray:
            rng_i = np.random.default_rng(seeds[i])
            return _pil_crop_resize(files[order[i]], training, image_size, rng_i)

        with ThreadPoolExecutor(threads) as pool:
            # Keep two batches in flight ahead of the consumer, like a prefetch.
            pending: collections.deque = collections.deque()
            batch: list[np.ndarray] = []
            for i in range(stop):
                pending.append(pool.submit(work, i))
                if len(pending) > 2 * batch_size:
                    batch.append(pending.popleft().result())
                if len(batch) == batch_size:
                    yield len(np.stack(batch))
                    batch = []
            while pending:
                batch.append(pending.popleft().result())
                if len(batch) == batch_size:
                    yield len(np.stack(batch))
                    batch = []
            if batch:
                yield len(np.stack(batch))

    return make


def _decode_only(paths: Sequence[str]) -> int:
    for path in paths:
        np.asarray(Image.open(path).convert("RGB"))
    return len(paths)


class DecodeLimit:
    """Full PIL decode on a pool of one process per core; use as a context manager.

    The pool lives across passes so process start-up is not counted; files go out in
    small chunks so the first result is not a large share of the pass. Spawned, not
    forked: the parent may hold TensorFlow's threads.
    """

    def __init__(self, files: Sequence[str], processes: int = 0, chunk: int = 8):
        self.files = list(files)
        self.processes = processes or os.cpu_count() or 1
        self.chunk = chunk
        self.pool: multiprocessing.pool.Pool | None = None

    def __enter__(self) -> "DecodeLimit":
        self.pool = multiprocessing.get_context("spawn").Pool(self.processes)
        # Let every worker import PIL and numpy and decode once before anything is timed.
        self.pool.map(_decode_only, [self.files[:1]] * self.processes, chunksize=1)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.pool is not None
        self.pool.terminate()
        self.pool.join()

    def __call__(self) -> Iterator[int]:
        assert self.pool is not None, "use DecodeLimit as a context manager"
        chunks = [self.files[i : i + self.chunk] for i in range(0, len(self.files), self.chunk)]
        # Unordered: results come as chunks finish, so a slow first chunk cannot hold back
        # (and then release at once) the ones finished behind it.
        return self.pool.imap_unordered(_decode_only, chunks)
