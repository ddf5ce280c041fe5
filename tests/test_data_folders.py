"""The class-folder layout: auto split (determinism, stratification, stability) and
train/ + val/ folders, plus the bad inputs it must name."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastfood.data as data
from fastfood.data.folders import split_class, val_count
from fastfood.errors import FastfoodError

COUNTS = {"sushi": 20, "apple_pie": 10, "ramen": 2, "miso": 1, "taco": 7}


def error(fn, *args, **kwargs) -> str:
    with pytest.raises(FastfoodError) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def val_sets(spec) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {c: set() for c in spec.classes}
    for f, label in zip(spec.val.files, spec.val.labels):
        out[spec.classes[label]].add(os.path.basename(f))
    return out


def test_auto_split_is_stratified_and_complete(make_folders):
    root = make_folders(COUNTS)
    spec = data.load(root, val_fraction=0.2, seed=0)
    assert spec.layout == "folders"
    assert spec.classes == tuple(sorted(COUNTS)) == spec.display_names
    val = Counter(spec.classes[i] for i in spec.val.labels)
    train = Counter(spec.classes[i] for i in spec.train.labels)
    # round(n * 0.2), at least 1 when n >= 2, never the whole class
    assert val == {"sushi": 4, "apple_pie": 2, "ramen": 1, "taco": 1}
    assert train == {"sushi": 16, "apple_pie": 8, "ramen": 1, "miso": 1, "taco": 6}
    every = set(spec.train.files) | set(spec.val.files)
    assert not set(spec.train.files) & set(spec.val.files)
    assert every == {str(p) for p in root.resolve().glob("*/*.jpg")}
    for f, label in zip(spec.train.files + spec.val.files, spec.train.labels + spec.val.labels):
        assert os.path.basename(os.path.dirname(f)) == spec.classes[label]


def test_split_is_the_same_every_time_and_depends_on_seed(make_folders):
    root = make_folders(COUNTS)
    first = data.load(root, 0.3, seed=1)
    assert data.load(root, 0.3, seed=1) == first
    other = data.load(root, 0.3, seed=2)
    assert val_sets(other)["sushi"] != val_sets(first)["sushi"]
    assert len(other.val) == len(first.val)


def test_split_unchanged_when_a_class_is_added(make_folders):
    root = make_folders(COUNTS)
    before = val_sets(data.load(root, 0.25, seed=3))
    new = root / "aaa_new_first_class"  # sorts first: shifts every label
    new.mkdir()
    for i in range(9):
        (new / f"n{i}.jpg").write_bytes((root / "miso" / "img000.jpg").read_bytes())
    after = data.load(root, 0.25, seed=3)
    assert after.classes[0] == "aaa_new_first_class"
    assert {c: v for c, v in val_sets(after).items() if c in before} == before


def test_val_fraction_zero_gives_empty_val(make_folders):
    spec = data.load(make_folders(COUNTS), val_fraction=0.0)
    assert len(spec.val) == 0 and len(spec.train) == sum(COUNTS.values())


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 300), fraction=st.floats(0.0, 0.999), seed=st.integers(0, 2**31))
def test_val_count_rules(n, fraction, seed):
    files = [f"/r/c/{i}.jpg" for i in range(n)]
    train, val, test = split_class("c", files, fraction, seed)
    assert test == []  # no test_fraction, no test split
    assert len(val) == val_count(n, fraction)
    assert sorted(train + val) == sorted(files)
    assert train == [f for f in files if f in train]  # input order kept
    if n >= 2 and fraction > 0:
        assert 1 <= len(val) <= n - 1
        # off from n * fraction only by rounding, or by the floor of 1 / cap of n - 1
        slack = max(0.5, 1 - n * fraction, n * fraction - (n - 1))
        assert abs(len(val) - n * fraction) <= slack + 1e-9
    else:
        assert val == []


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 300), val=st.floats(0.0, 0.6), test=st.floats(0.0, 0.39),
       seed=st.integers(0, 2**31))
def test_test_split_rules(n, val, test, seed):
    """Test takes its own count first, val the next ranks, one file is always left to train
    on, and the test files do not depend on val_fraction."""
    files = [f"/r/c/{i}.jpg" for i in range(n)]
    parts = split_class("c", files, val, seed, test_fraction=test)
    assert sorted(parts.train + parts.val + parts.test) == sorted(files)
    assert len(parts.test) == val_count(n, test)
    assert len(parts.val) <= val_count(n, val)
    assert len(parts.train) >= min(n, 1)
    assert split_class("c", files, 0.0, seed, test_fraction=test).test == parts.test


def test_test_fraction_is_stratified_disjoint_and_stable(make_folders):
    root = make_folders(COUNTS)
    spec = data.load(root, val_fraction=0.2, seed=0, test_fraction=0.1)
    test = Counter(spec.classes[i] for i in spec.test.labels)
    val = Counter(spec.classes[i] for i in spec.val.labels)
    assert test == {"sushi": 2, "apple_pie": 1, "ramen": 1, "taco": 1}
    # ramen (2 images) gives its second to test, keeps one to train: no val left for it
    assert val == {"sushi": 4, "apple_pie": 2, "taco": 1}
    every = spec.train.files + spec.val.files + spec.test.files
    assert len(set(every)) == len(every) == sum(COUNTS.values())
    assert data.load(root, 0.3, seed=0, test_fraction=0.1).test == spec.test
    new = root / "aaa_new_first_class"
    new.mkdir()
    for i in range(9):
        (new / f"n{i}.jpg").write_bytes((root / "miso" / "img000.jpg").read_bytes())
    grown = data.load(root, val_fraction=0.2, seed=0, test_fraction=0.1)
    names = {(grown.classes[label], os.path.basename(f))
             for f, label in zip(grown.test.files, grown.test.labels)}
    assert {x for x in names if x[0] != new.name} == {
        (spec.classes[label], os.path.basename(f))
        for f, label in zip(spec.test.files, spec.test.labels)}


def test_no_test_fraction_no_test_split(make_folders):
    root = make_folders(COUNTS)
    spec = data.load(root, val_fraction=0.2)
    assert len(spec.test) == 0
    assert data.load(root, val_fraction=0.2, test_fraction=0.0) == spec


@pytest.mark.parametrize("val, test", [(0.5, 0.5), (0.9, 0.2)])
def test_val_plus_test_must_leave_training_data(make_folders, val, test):
    message = error(data.load, make_folders(COUNTS), val_fraction=val, test_fraction=test)
    assert "--val-fraction plus --test-fraction" in message


def test_split_ranks_by_file_name_not_folder(make_folders):
    a = data.load(make_folders(COUNTS), 0.25)
    b = data.load(make_folders(COUNTS), 0.25)  # same names, another root
    assert val_sets(a) == val_sets(b)


def test_extensions_case_insensitive_and_other_files_ignored(make_folders):
    root = make_folders({"a": 2, "b": 1})
    for name in ("x.JPG", "y.Jpeg", "z.png"):
        (root / "b" / name).write_bytes((root / "a" / "img000.jpg").read_bytes())
    (root / "b" / "notes.txt").write_text("not an image")
    (root / "b" / ".DS_Store").write_bytes(b"\0")
    (root / "b" / ".hidden.jpg").write_bytes(b"\0")
    (root / ".git").mkdir()
    (root / ".git" / "x.jpg").write_bytes(b"\0")
    (root / "README.md").write_text("top-level files are not classes")
    spec = data.load(root, val_fraction=0.0)
    assert spec.classes == ("a", "b")
    names = sorted(os.path.basename(f) for f, label in zip(spec.train.files, spec.train.labels)
                   if label == 1)
    assert names == ["img000.jpg", "x.JPG", "y.Jpeg", "z.png"]


def test_presplit_folders(make_presplit):
    root = make_presplit({"b": 3, "a": 2}, {"b": 1, "a": 2})
    spec = data.load(root, val_fraction=0.5)  # val_fraction is not used
    assert spec.layout == "folders"
    assert spec.classes == ("a", "b")
    assert spec.train.labels == (0, 0, 1, 1, 1) and spec.val.labels == (0, 0, 1)
    assert all(f"{os.sep}train{os.sep}" in f for f in spec.train.files)
    assert all(f"{os.sep}val{os.sep}" in f for f in spec.val.files)


def copy_images(src, dest, counts: dict[str, int]) -> None:
    """dest/<class>/t<i>.jpg, copies of src's first image, `counts` per class."""
    image = next(src.rglob("*.jpg")).read_bytes()
    for name, n in counts.items():
        (dest / name).mkdir(parents=True)
        for i in range(n):
            (dest / name / f"t{i}.jpg").write_bytes(image)


def test_presplit_folders_with_test(make_presplit):
    root = make_presplit({"b": 3, "a": 2}, {"b": 1, "a": 2})
    copy_images(root, root / "test", {"a": 1, "b": 2})
    spec = data.load(root, val_fraction=0.5, test_fraction=0.3)  # fractions are not used
    assert spec.val.labels == (0, 0, 1) and spec.test.labels == (0, 1, 1)
    assert all(f"{os.sep}test{os.sep}" in f for f in spec.test.files)


def test_train_and_test_folders_draw_val_from_train(make_presplit):
    """ROOT/train + ROOT/test (no val/) is read as a split, not as classes 'train' and 'test'."""
    root = make_presplit({"a": 10, "b": 5}, {"a": 1, "b": 1})
    (root / "val").rename(root / "test")
    spec = data.load(root, val_fraction=0.2, seed=0)
    assert data.detect_layout(root) == "presplit" and spec.classes == ("a", "b")
    assert spec.test.labels == (0, 1)
    assert spec.val.labels == (0, 0, 1) and len(spec.train) == 12
    assert all(f"{os.sep}train{os.sep}" in f for f in spec.train.files + spec.val.files)
    copy_images(root, root / "test", {"c": 1})
    message = error(data.load, root)
    assert str(root / "test") in message and "'c'" in message


def test_presplit_classes_must_match(make_presplit):
    root = make_presplit({"a": 2, "b": 2, "c": 1}, {"a": 1, "b": 1})
    message = error(data.load, root)
    assert str(root / "train") in message and "'c'" in message and str(root / "val") in message


def test_presplit_empty_val_class(make_presplit):
    root = make_presplit({"a": 2, "b": 2}, {"a": 1, "b": 1})
    for f in (root / "val" / "b").iterdir():
        f.unlink()
    message = error(data.load, root)
    assert str(root / "val" / "b") in message and "no images" in message


def test_class_folder_without_images(make_folders):
    root = make_folders({"a": 2, "b": 2})
    (root / "empty").mkdir()
    (root / "empty" / "readme.txt").write_text("x")
    message = error(data.load, root)
    assert str(root / "empty") in message and "no images" in message


@pytest.mark.parametrize("counts", [{}, {"only": 3}])
def test_fewer_than_two_classes(make_folders, counts):
    root = make_folders(counts)
    root.mkdir(exist_ok=True)
    message = error(data.load, root)
    assert str(root) in message and "two class folders" in message


def test_symlinked_image_outside_root(make_folders, tmp_path):
    root = make_folders({"a": 2, "b": 2})
    (tmp_path / "outside.jpg").write_bytes((root / "a" / "img000.jpg").read_bytes())
    (root / "b" / "sneaky.jpg").symlink_to(tmp_path / "outside.jpg")
    message = error(data.load, root)
    assert str(root / "b" / "sneaky.jpg") in message and "outside" in message


def test_symlinked_class_folder_outside_root(make_folders, tmp_path):
    root = make_folders({"a": 2, "b": 2})
    other = make_folders({"c": 2})
    (root / "c").symlink_to(other / "c")
    message = error(data.load, root)
    assert str(root / "c") in message and "outside" in message


def test_broken_image_link(make_folders):
    root = make_folders({"a": 2, "b": 2})
    (root / "a" / "gone.jpg").symlink_to(root / "a" / "nothing.jpg")
    message = error(data.load, root)
    assert str(root / "a" / "gone.jpg") in message


def test_layout_detection(make_folders, make_presplit, make_food101):
    assert data.detect_layout(make_folders({"a": 1, "b": 1})) == "folders"
    assert data.detect_layout(make_presplit({"a": 1, "b": 1}, {"a": 1, "b": 1})) == "presplit"
    assert data.detect_layout(make_food101({"a": (1, 1), "b": (1, 1)})) == "food101"
