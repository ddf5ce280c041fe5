"""The order in which a training epoch visits the files, shared by every loader.

The order is computed here, in numpy, rather than by a loader's own shuffle, so that it is
(a) identical for DALI and tf.data, (b) a pure function of ``(seed, epoch)`` that a resumed
run recomputes exactly, and (c) sliceable: resuming mid-epoch is "start at position
``skip_batches * batch_size``", with no data read and thrown away.

Sharding follows DALI's readers: with ``num_shards=n`` shard ``i`` reads the contiguous chunk
``[N*i//n, N*(i+1)//n)`` of its input list. Applied to the epoch permutation, the shards are
disjoint and together cover every file once. Chunks can differ in length by one file, so every
shard yields the batch count of the smallest chunk (:func:`steps_per_epoch`) and replicas stay
in step; the few files past that point are left out of this epoch (a different few each epoch).

numpy only: the DALI pipeline, which must not import TensorFlow, uses it too.
"""

from __future__ import annotations

import numpy as np

Shard = tuple[int, int]


def check_shard(shard: Shard) -> Shard:
    """Validate ``(index, count)`` and return it as plain ints."""
    index, count = int(shard[0]), int(shard[1])
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must be (index, count) with 0 <= index < count, got {shard!r}")
    return index, count


Groups = tuple[int, ...]  # sizes of consecutive runs of items read together (shards)


def epoch_order(n: int, seed: int, epoch: int, groups: Groups | None = None) -> np.ndarray:
    """Permutation of ``range(n)`` for this (seed, epoch): int64 array of file indices.

    PCG64 seeded through a SeedSequence of ``(seed, epoch)``: independent streams per epoch,
    and the same numbers on every platform and numpy version that keeps PCG64's stream
    (numpy's documented stability policy for ``Generator.permutation``).

    ``groups`` (packed shards: the item counts of consecutive shards, summing to ``n``):
    the permutation visits the shards in a random order and each shard's items in a random
    order of their own, so a reader streams one shard at a time; the shards were packed
    in a random order of the files, so each holds a random mix of the classes.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(epoch)])))
    if groups is None:
        return rng.permutation(n).astype(np.int64)
    if sum(groups) != n:
        raise ValueError(f"groups sum to {sum(groups)}, not {n}")
    starts = np.concatenate([[0], np.cumsum(groups)[:-1]]).astype(np.int64)
    parts = [starts[g] + rng.permutation(groups[g]) for g in rng.permutation(len(groups))]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def shard_bounds(n: int, shard: Shard) -> tuple[int, int]:
    """``[start, end)`` of shard ``i`` of ``n`` items, exactly as DALI's readers split them."""
    index, count = check_shard(shard)
    return n * index // count, n * (index + 1) // count


def steps_per_epoch(num_files: int, batch_size: int, shard: Shard = (0, 1)) -> int:
    """Full batches every shard yields per epoch: the smallest shard's count (remainder dropped).

    The same for every shard index, so replicas that each build their own dataset stay in step.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    _, count = check_shard(shard)
    smallest = min(e - s for s, e in (shard_bounds(num_files, (i, count)) for i in range(count)))
    return smallest // batch_size


def epoch_positions(
    n: int, *, batch_size: int, shard: Shard = (0, 1), skip_batches: int = 0
) -> np.ndarray:
    """Positions in the epoch permutation that this shard reads, after ``skip_batches``.

    Positions (not file indices) are what the tf.data loader keys its stateless augmentation
    randomness on, so a sample gets the same crop and flip whether or not the epoch was resumed.
    """
    if skip_batches < 0:
        raise ValueError(f"skip_batches must be >= 0, got {skip_batches}")
    start, _ = shard_bounds(n, shard)
    steps = steps_per_epoch(n, batch_size, shard)
    first = start + min(skip_batches, steps) * batch_size
    return np.arange(first, start + steps * batch_size, dtype=np.int64)


def epoch_indices(
    n: int,
    *,
    seed: int,
    epoch: int,
    batch_size: int,
    shard: Shard = (0, 1),
    skip_batches: int = 0,
    groups: Groups | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(file_indices, positions)`` this shard reads in this epoch, in reading order."""
    positions = epoch_positions(n, batch_size=batch_size, shard=shard, skip_batches=skip_batches)
    return epoch_order(n, seed, epoch, groups)[positions], positions


def eval_indices(n: int, shard: Shard = (0, 1)) -> np.ndarray:
    """Eval mode: this shard's contiguous chunk of the input order (all of it for one shard)."""
    start, end = shard_bounds(n, shard)
    return np.arange(start, end, dtype=np.int64)


def run_indices(
    n: int,
    *,
    seed: int,
    epoch: int,
    epochs: int,
    batch_size: int,
    shard: Shard = (0, 1),
    skip_batches: int = 0,
    groups: Groups | None = None,
) -> np.ndarray:
    """File indices this shard reads over epochs ``[epoch, epoch + epochs)``, back to back.

    What a pipeline that lives for the whole run is handed: every epoch's slice of its own
    permutation, the first one starting after ``skip_batches`` batches, so a resumed run
    reads exactly what the interrupted one would have read next.
    """
    parts = [
        epoch_indices(n, seed=seed, epoch=e, batch_size=batch_size, shard=shard,
                      skip_batches=skip_batches if e == epoch else 0, groups=groups)[0]
        for e in range(epoch, epoch + epochs)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def padded_eval_indices(n: int, batch_size: int, shard: Shard = (0, 1)) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, valid)`` for a fixed-batch eval pass over this shard, padded.

    Every shard gets the same number of full batches (that of the largest shard), so
    replicas that evaluate in step run the same number of steps; the slots past a shard's
    own files repeat a file and are marked invalid. An empty shard (fewer files than
    shards) is all padding. ``n`` must be at least 1.
    """
    if n < 1:
        raise ValueError("an eval pass needs at least one file")
    _, count = check_shard(shard)
    largest = max(e - s for s, e in (shard_bounds(n, (i, count)) for i in range(count)))
    slots = max(1, -(-largest // batch_size)) * batch_size
    own = eval_indices(n, shard)
    filler = own[-1] if len(own) else 0
    indices = np.full(slots, filler, dtype=np.int64)
    indices[: len(own)] = own
    valid = np.zeros(slots, dtype=bool)
    valid[: len(own)] = True
    return indices, valid
