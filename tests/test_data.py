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
    assert len(spec.train) == 9 and len(spec.val) == 4
    assert spec.train.labels == (0, 0, 0, 1, 1, 1, 1, 2, 2)
    assert spec.val.labels == (0, 0, 1, 2)
    assert spec.train.files[3] == str(root.resolve() / "images" / "apple_pie" / "000.jpg")
    assert spec.val.files[0].endswith(os.path.join("images", "zucchini", "003.jpg"))
    for f in spec.train.files + spec.val.files:
        assert os.path.isabs(f) and os.path.isfile(f) and isinstance(f, str)
    assert isinstance(spec.train.files, tuple) and isinstance(spec.val.labels, tuple)


def test_food101_display_names_from_labels_txt(make_food101):
    spec = data.load(make_food101(CLASSES, labels=["Zucchini", "Apple pie", "Miso soup"]))
    assert spec.display_names == ("Zucchini", "Apple pie", "Miso soup")
    assert spec.classes == ("zucchini", "apple_pie", "miso")


def test_food101_ignores_val_fraction_and_seed(make_food101):
    root = make_food101(CLASSES)
    assert data.load(root, 0.5, 7) == data.load(root)


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
    assert spec.train.files[-1] == str(root.resolve() / "images" / "miso" / "001.jpg")


def test_root_may_itself_be_a_symlink(make_food101, tmp_path):
    root = make_food101(CLASSES)
    (tmp_path / "alias").symlink_to(root)
    assert len(data.load(tmp_path / "alias").train) == 9


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
    code = ("import sys, fastfood.data, fastfood.data.sample, fastfood.cli.sample_data; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'nvidia')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"
