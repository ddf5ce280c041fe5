"""Epoch order, sharding and resume arithmetic (numpy only, no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastfood.loaders import order, steps_per_epoch


def test_epoch_order_is_a_deterministic_permutation_that_changes_per_epoch() -> None:
    a = order.epoch_order(1000, seed=3, epoch=0)
    assert sorted(a.tolist()) == list(range(1000))
    assert np.array_equal(a, order.epoch_order(1000, seed=3, epoch=0))
    b = order.epoch_order(1000, seed=3, epoch=1)
    c = order.epoch_order(1000, seed=4, epoch=0)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    # Not merely rotated or slightly perturbed: few fixed points between epochs.
    assert (a == b).sum() < 20


def test_epoch_order_pinned_values() -> None:
    # Pin the generator: a numpy or code change that alters the order would silently break
    # resuming runs started before it.
    assert order.epoch_order(10, seed=0, epoch=0).tolist() == [4, 6, 2, 7, 3, 5, 9, 0, 8, 1]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 500), count=st.integers(1, 9), batch=st.integers(1, 16),
       seed=st.integers(0, 2**31), epoch=st.integers(0, 50))
def test_shards_are_disjoint_complete_and_in_step(n, count, batch, seed, epoch) -> None:
    perm = order.epoch_order(n, seed, epoch)
    bounds = [order.shard_bounds(n, (i, count)) for i in range(count)]
    # Contiguous chunks covering everything once, as DALI's readers split a list.
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(bounds[i][1] == bounds[i + 1][0] for i in range(count - 1))
    chunks = [perm[s:e] for s, e in bounds]
    assert sorted(np.concatenate(chunks).tolist()) == list(range(n))
    steps = steps_per_epoch(n, batch, (0, count))
    read = []
    for i in range(count):
        idx, pos = order.epoch_indices(n, seed=seed, epoch=epoch, batch_size=batch, shard=(i, count))
        assert len(idx) == steps * batch  # every shard the same number of full batches
        assert steps_per_epoch(n, batch, (i, count)) == steps
        s, e = bounds[i]
        assert np.array_equal(idx, perm[s:s + steps * batch])
        assert np.array_equal(perm[pos], idx)
        read.append(set(idx.tolist()))
    for i in range(count):
        for j in range(i + 1, count):
            assert not read[i] & read[j]
    # Only the smallest shard's remainder-and-more is left out: fewer than count*(batch)+count.
    assert n - sum(len(r) for r in read) < count * (batch + 1)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 300), batch=st.integers(1, 8), count=st.integers(1, 4),
       skip=st.integers(0, 60))
def test_skip_batches_resumes_exactly(n, batch, count, skip) -> None:
    for i in range(count):
        full, full_pos = order.epoch_indices(n, seed=1, epoch=2, batch_size=batch, shard=(i, count))
        rest, rest_pos = order.epoch_indices(n, seed=1, epoch=2, batch_size=batch, shard=(i, count),
                                             skip_batches=skip)
        assert np.array_equal(rest, full[skip * batch:])
        assert np.array_equal(rest_pos, full_pos[skip * batch:])


def test_steps_per_epoch_uses_the_smallest_shard() -> None:
    # 10 files over 3 shards: chunks of 3, 3, 4.
    assert [order.shard_bounds(10, (i, 3)) for i in range(3)] == [(0, 3), (3, 6), (6, 10)]
    assert steps_per_epoch(10, 2, (2, 3)) == 1  # not 2: shard 0 only has 3 files
    assert steps_per_epoch(10, 3, (0, 1)) == 3
    assert steps_per_epoch(2, 3) == 0


def test_eval_indices_are_contiguous_input_order() -> None:
    assert order.eval_indices(7).tolist() == list(range(7))
    assert order.eval_indices(7, (1, 2)).tolist() == [3, 4, 5, 6]


@pytest.mark.parametrize("shard", [(1, 1), (-1, 2), (0, 0)])
def test_bad_shards_are_rejected(shard) -> None:
    with pytest.raises(ValueError):
        order.shard_bounds(10, shard)
