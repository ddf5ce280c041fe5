"""The data layer on Food-101 trees, and every bad Food-101 input it must name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastfood.data as data
from fastfood.errors import FastfoodError

CLASSES = {"zucchini": (3, 2), "apple_pie": (4, 1), "miso": (2, 1)}


def one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(FastfoodError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_food101_classes_files_and_labels(make_food101):
    root = make_food101(CLASSES)
    spec = data.load(root)
    assert spec.layout == "food101"
    assert spec.root == str(root.resolve())
    assert spec.classes == ("zucchini", "apple_pie", "miso")  # classes.txt order, not sorted
    assert spec.display_names == spec.classes
    # test.txt is the test split; val is one image per class carved out of train.txt
    assert len(spec.test) == 4 and spec.test.labels == (0, 0, 1, 2)
    assert spec.test.files[0].endswith(os.path.join("images", "zucchini", "003.jpg"))
    assert len(spec.train) == 6 and spec.val.labels == (0, 1, 2)
    assert spec.train.labels == (0, 0, 1, 1, 1, 2)
    apple_pie = [str(root.resolve() / "images" / "apple_pie" / f"{i:03d}.jpg") for i in range(4)]
    assert sorted(f for f in spec.train.files + spec.val.files if "apple_pie" in f) == apple_pie
    every = spec.train.files + spec.val.files + spec.test.files
    assert len(set(every)) == len(every) == 13
    for f in every:
        assert os.path.isabs(f) and os.path.isfile(f) and isinstance(f, str)
    assert isinstance(spec.train.files, tuple) and isinstance(spec.val.labels, tuple)


def test_food101_val_is_carved_from_train_txt_in_its_order(make_food101):
    root = make_food101({"a": (20, 3), "b": (10, 3)})
    listed = [line.strip() for line in (root / "meta" / "train.txt").read_text().splitlines()]
    spec = data.load(root, val_fraction=0.2, seed=5)
    assert [spec.val.labels.count(i) for i in (0, 1)] == [4, 2]  # stratified: 20 % of each
    names = ["/".join(f.split(os.sep)[-2:])[:-4] for f in spec.train.files]
    assert names == [x for x in listed if x not in
                     {"/".join(f.split(os.sep)[-2:])[:-4] for f in spec.val.files}]
    assert not set(spec.val.files) & set(spec.test.files)
    assert data.load(root, 0.2, seed=5) == spec  # the same every time
    assert set(data.load(root, 0.2, seed=6).val.files) != set(spec.val.files)


def test_food101_val_fraction_zero_trains_on_all_of_train_txt(make_food101):
    spec = data.load(make_food101(CLASSES), val_fraction=0.0)
    assert len(spec.train) == 9 and len(spec.val) == 0 and len(spec.test) == 4


def test_food101_val_of_a_class_stays_when_a_class_is_added(make_food101, tmp_path):
    small = data.load(make_food101({"a": (12, 1), "b": (9, 1)}), 0.25, seed=1)
    grown = data.load(make_food101({"new": (7, 1), "a": (12, 1), "b": (9, 1)}), 0.25, seed=1)

    def held(spec):
        return {(spec.classes[label], os.path.basename(f))
                for f, label in zip(spec.val.files, spec.val.labels)}

    assert {x for x in held(grown) if x[0] != "new"} == held(small)


def test_food101_old_reading_validates_on_test_txt(make_food101):
    """val_from='test': how runs saved before the test split read the tree."""
    root = make_food101(CLASSES)
    spec = data.load(root, val_from="test")
    assert len(spec.train) == 9 and spec.val == spec.test and len(spec.val) == 4


def test_old_run_config_reads_back_with_its_val_split(make_food101):
    """A config.json without the test-split fields keeps val = test.txt, all train.txt."""
    from fastfood.config import RunConfig

    root = make_food101(CLASSES)
    old = RunConfig.from_dict({"data": {"root": str(root), "val_fraction": 0.1,
                                        "split_seed": 0}})
    assert old.data.val_from == "test" and old.data.test_fraction == 0.0
    spec = data.load_config(old.data)
    assert spec == data.load(root, val_from="test") and len(spec.train) == 9
    fresh = RunConfig.from_dict(RunConfig().to_dict())
    assert fresh.data.val_from == "train"
    assert data.load_config(fresh.data, root) == data.load(root)


def test_food101_display_names_from_labels_txt(make_food101):
    spec = data.load(make_food101(CLASSES, labels=["Zucchini", "Apple pie", "Miso soup"]))
    assert spec.display_names == ("Zucchini", "Apple pie", "Miso soup")
    assert spec.classes == ("zucchini", "apple_pie", "miso")


def test_food101_test_split_ignores_val_fraction_and_seed(make_food101):
    root = make_food101(CLASSES)
    assert data.load(root, 0.5, 7).test == data.load(root).test
    assert data.load(root, 0.5, 7, test_fraction=0.4) == data.load(root, 0.5, 7)


def test_food101_tolerates_blank_lines_crlf_bom_and_extensions(make_food101):
    root = make_food101(CLASSES)
    meta = root / "meta"
    meta.joinpath("classes.txt").write_bytes(b"\xef\xbb\xbfzucchini\r\n\r\napple_pie\r\n  \nmiso")
    meta.joinpath("train.txt").write_text("\nzucchini/000.jpg\n\n  apple_pie/001  \nmiso/000\n\n")
    spec = data.load(root)
    assert spec.classes == ("zucchini", "apple_pie", "miso")
    assert spec.train.labels == (0, 1, 2)
    assert spec.train.files[0].endswith("000.jpg") and not spec.train.files[0].endswith(".jpg.jpg")


def test_missing_root_names_the_path():
    message = one_line_error(data.load, "/does/not/exist")
    assert "/does/not/exist" in message and "not found" in message
    message = one_line_error(data.check_root, "/does/not/exist")
    assert "/does/not/exist" in message


def test_root_that_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert str(f) in one_line_error(data.load, f)


def test_check_root_returns_resolved_path(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert data.check_root(tmp_path / "link") == (tmp_path / "real").resolve()


@pytest.mark.parametrize("name", ["train.txt", "test.txt"])
def test_missing_split_file(make_food101, name):
    root = make_food101(CLASSES)
    (root / "meta" / name).unlink()
    message = one_line_error(data.load, root)
    assert str(root / "meta" / name) in message and "missing" in message


def test_meta_without_classes_txt_is_not_taken_for_class_folders(make_food101):
    root = make_food101(CLASSES)
    (root / "meta" / "classes.txt").unlink()
    message = one_line_error(data.load, root)
    assert "classes.txt" in message and "missing" in message


# (what to write into which meta file, the line number the error must name, words in it)
BAD_LINES = [
    ("train.txt", "zucchini/000\nsushi/001\n", 2, "unknown class 'sushi'"),
    ("train.txt", "zucchini/000\n\nzucchini/999\n", 3, "999.jpg not found"),
    ("train.txt", "zucchini/000\nzucchini\n", 2, "expected 'class/image_id'"),
    ("test.txt", "miso/../../../etc/passwd\n", 1, "'..'"),
    ("test.txt", "miso/000\n/etc/passwd\n", 2, "expected 'class/image_id'"),
    ("train.txt", "zucchini/../apple_pie/000\n", 1, "'..'"),
    ("classes.txt", "zucchini\napple_pie\nzucchini\nmiso\n", 3, "repeats line 1"),
    ("classes.txt", "zucchini\n..\nmiso\n", 2, "plain folder name"),
    ("classes.txt", "zucchini\napple/pie\n", 2, "plain folder name"),
]


@pytest.mark.parametrize("meta_file,text,line,words", BAD_LINES)
def test_bad_meta_line_names_file_and_line(make_food101, meta_file, text, line, words):
    root = make_food101(CLASSES)
    (root / "meta" / meta_file).write_text(text)
    message = one_line_error(data.load, root)
    assert f"{root / 'meta' / meta_file}:{line}:" in message
    assert words in message


def test_class_with_no_training_images(make_food101):
    root = make_food101({"a": (2, 1), "b": (0, 1), "c": (1, 0)})
    message = one_line_error(data.load, root)
    assert str(root / "meta" / "train.txt") in message and "'b' has no images" in message


def test_fewer_than_two_classes(make_food101):
    root = make_food101({"only": (3, 1)})
    message = one_line_error(data.load, root)
    assert str(root / "meta" / "classes.txt") in message and "two classes" in message


def test_labels_txt_must_match_classes(make_food101):
    root = make_food101(CLASSES, labels=["Zucchini", "Apple pie"])
    message = one_line_error(data.load, root)
    assert str(root / "meta" / "labels.txt") in message and "2 names" in message


def test_symlinked_image_outside_root_is_refused(make_food101, tmp_path):
    root = make_food101(CLASSES)
    outside = tmp_path / "secret.jpg"
    outside.write_bytes((root / "images" / "miso" / "000.jpg").read_bytes())
    target = root / "images" / "miso" / "001.jpg"  # listed in train.txt line 9
    target.unlink()
    target.symlink_to(outside)
    message = one_line_error(data.load, root)
    assert "train.txt:9:" in message and str(target) in message and "outside" in message


def test_symlinked_class_folder_outside_root_is_refused(make_food101, tmp_path):
    root = make_food101(CLASSES)
    folder = root / "images" / "miso"
    folder.rename(tmp_path / "elsewhere")
    folder.symlink_to(tmp_path / "elsewhere")
    message = one_line_error(data.load, root)
    assert "train.txt:8:" in message and "outside" in message


def test_symlinks_inside_root_are_fine(make_food101):
    root = make_food101(CLASSES)
    (root / "images" / "miso").rename(root / "miso-real")
    (root / "images" / "miso").symlink_to(root / "miso-real")
    spec = data.load(root)
    assert str(root.resolve() / "images" / "miso" / "001.jpg") in spec.train.files + spec.val.files


def test_root_may_itself_be_a_symlink(make_food101, tmp_path):
    root = make_food101(CLASSES)
    (tmp_path / "alias").symlink_to(root)
    spec = data.load(tmp_path / "alias")
    assert len(spec.train) + len(spec.val) == 9


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan"), "half"])
def test_val_fraction_out_of_range(make_food101, fraction):
    message = one_line_error(data.load, make_food101(CLASSES), val_fraction=fraction)
    assert "val_fraction" in message


def test_spec_is_frozen_and_split_checks_lengths(make_food101):
    spec = data.load(make_food101(CLASSES))
    with pytest.raises(AttributeError):
        spec.classes = ()  # type: ignore[misc]
    with pytest.raises(ValueError):
        data.Split(("a",), ())
    assert len(data.Split()) == 0


def test_data_layer_does_not_import_tensorflow():
    code = ("import sys, fastfood.data, fastfood.data.sample, fastfood.cli.sample_data, "
            "fastfood.data.food101_install, fastfood.data.download, fastfood.data.archive, "
            "fastfood.cli.data; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'nvidia')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"
