"""tf.data training names every file that passes the preflight but fails to decode.

Labels are set to each file's index, so the labels a loader yields are the order in which
it read the files: the good files must come through in the planned epoch order (minus the
bad ones, in full batches), and the SkipLog must hold each bad file with the decoder's reason.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fastfood.loaders import order, tfdata
from fastfood.loaders.request import LoaderRequest
from fastfood.loaders.skips import SkipLog
from support.images import body_corrupt_jpeg, twelve_bit_jpeg, write_images

BATCH = 4
S = 16


def dataset(tmp_path: Path, n_good: int, bad_at: dict[int, bytes]) -> list[str]:
    """n_good noise JPEGs with the `bad_at` files inserted at those list indices."""
    good = iter(write_images(tmp_path / "good", n_good, seed=4))
    files = []
    for i in range(n_good + len(bad_at)):
        if i in bad_at:
            path = tmp_path / f"bad{i}.jpg"
            path.write_bytes(bad_at[i])
            files.append(str(path))
        else:
            files.append(str(next(good)))
    return files


def build(files: list[str], skips: SkipLog | None, **kw):
    request = LoaderRequest(kind="tfdata", training=True, batch_size=BATCH, image_size=S,
                            skips=skips, **kw)
    return tfdata.build(files, list(range(len(files))), request)


def read(files: list[str], skips: SkipLog | None, **kw) -> list[int]:
    ds = build(files, skips, **kw)
    assert ds.element_spec[0].shape == (BATCH, S, S, 3)  # static batch, as before
    return [int(x) for _, labels in ds for x in labels.numpy()]


def expected(files: list[str], bad: set[int], seed: int = 0, skip_batches: int = 0) -> list[int]:
    """The planned order without the bad files, cut to whole batches."""
    plan, _ = order.epoch_indices(len(files), seed=seed, epoch=0, batch_size=BATCH,
                                  skip_batches=skip_batches)
    kept = [int(i) for i in plan if int(i) not in bad]
    return kept[:len(kept) // BATCH * BATCH]


def test_bad_files_are_named_with_the_reason_and_good_ones_come_in_order(tmp_path: Path) -> None:
    files = dataset(tmp_path, 14, {3: body_corrupt_jpeg(), 9: twelve_bit_jpeg()})
    skips = SkipLog()
    labels = read(files, skips, seed=0)
    assert labels == expected(files, {3, 9})
    named = dict(skips.items())
    assert set(named) == {files[3], files[9]}
    assert all(reason.strip() and "\n" not in reason for reason in named.values()), named
    assert "JPEG" in named[files[3]], named  # the decoder's own words


def test_a_bad_file_in_the_dropped_last_batch_is_named_too(tmp_path: Path) -> None:
    """12 files, batch 4: the bad file read last leaves 11, a partial batch that is dropped;
    it must still be named."""
    n, seed = 12, 3
    last = int(order.epoch_order(n, seed, 0)[-1])
    files = dataset(tmp_path, n - 1, {last: body_corrupt_jpeg()})
    skips = SkipLog()
    labels = read(files, skips, seed=seed)
    assert labels == expected(files, {last}, seed=seed) and len(labels) == 8
    assert [path for path, _ in skips.items()] == [files[last]]


def test_a_bad_file_read_first_is_named(tmp_path: Path) -> None:
    n, seed = 12, 5
    first = int(order.epoch_order(n, seed, 0)[0])
    files = dataset(tmp_path, n - 1, {first: body_corrupt_jpeg()})
    skips = SkipLog()
    assert read(files, skips, seed=seed) == expected(files, {first}, seed=seed)
    assert [path for path, _ in skips.items()] == [files[first]]


def test_resumed_epoch_names_only_what_it_reads(tmp_path: Path) -> None:
    """skip_batches=1: the first batch's files are not read, so not named."""
    n, seed = 13, 1
    plan = order.epoch_order(n, seed, 0)
    early, late = int(plan[1]), int(plan[6])
    files = dataset(tmp_path, n - 2, {early: body_corrupt_jpeg(1), late: body_corrupt_jpeg(2)})
    skips = SkipLog()
    labels = read(files, skips, seed=seed, skip_batches=1)
    assert labels == expected(files, {early, late}, seed=seed, skip_batches=1)
    assert [path for path, _ in skips.items()] == [files[late]]


def test_a_second_pass_counts_afresh_and_names_once(tmp_path: Path) -> None:
    files = dataset(tmp_path, 11, {4: body_corrupt_jpeg()})
    skips = SkipLog()
    ds = build(files, skips)
    passes = [[int(x) for _, labels in ds for x in labels.numpy()] for _ in range(2)]
    assert passes[0] == passes[1] == expected(files, {4})
    assert len(skips) == 1


def test_several_epochs_in_one_dataset_name_once_and_keep_each_order(tmp_path: Path) -> None:
    files = dataset(tmp_path, 11, {6: body_corrupt_jpeg()})
    skips = SkipLog()
    labels = read(files, skips, seed=4, epochs=2)
    plans = [order.epoch_order(len(files), 4, e) for e in (0, 1)]
    want = []
    for plan in plans:
        kept = [int(i) for i in plan if int(i) != 6]
        want += kept[:len(kept) // BATCH * BATCH]
    assert labels == want
    assert [path for path, _ in skips.items()] == [files[6]]


def test_without_a_skiplog_the_file_is_logged_by_name(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    files = dataset(tmp_path, 11, {2: body_corrupt_jpeg()})
    with caplog.at_level(logging.WARNING, logger="fastfood"):
        labels = read(files, None)
    assert labels == expected(files, {2})
    lines = [r.getMessage() for r in caplog.records if files[2] in r.getMessage()]
    assert len(lines) == 1 and "cannot decode" in lines[0], caplog.text


def test_no_bad_files_no_names_and_every_full_batch(tmp_path: Path) -> None:
    files = dataset(tmp_path, 10, {})
    skips = SkipLog()
    assert read(files, skips, seed=2) == expected(files, set(), seed=2)
    assert len(skips) == 0
