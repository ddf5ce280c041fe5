"""Containment: a dataset cannot make fastfood read outside its root, and no file a user
hands to fastfood is unpickled or executed.

The data layer's own tests cover `..`, absolute paths, and a symlinked image or class folder
that leaves the root. The gaps filled here: the Food-101 `images/` folder itself, a
presplit `train/` folder, a chain of links that leaves the root on its last hop, a link loop,
a FIFO posing as an image, a NUL byte in a meta file; and, for the "no unpickling" rule, a
static scan of fastfood/ plus a weight file that carries code (a Keras .h5 with a Lambda
layer) being read as arrays only.
"""

from __future__ import annotations

import ast
import marshal
import os
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from fastfood import data
from fastfood.errors import FastfoodError

from support.images import write_images


REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "fastfood"


def _food101(root: Path, counts: dict[str, tuple[int, int]]) -> Path:
    """Food-101 layout of noise JPEGs: {class: (n_train, n_test)}."""
    train, test = [], []
    for ci, (name, (n_train, n_test)) in enumerate(counts.items()):
        write_images(root / "images" / name, n_train + n_test, seed=ci)
        train += [f"{name}/{i:03d}" for i in range(n_train)]
        test += [f"{name}/{i:03d}" for i in range(n_train, n_train + n_test)]
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "classes.txt").write_text("".join(f"{c}\n" for c in counts))
    (root / "meta" / "train.txt").write_text("".join(f"{x}\n" for x in train))
    (root / "meta" / "test.txt").write_text("".join(f"{x}\n" for x in test))
    return root


COUNTS = {"a": (2, 1), "b": (2, 1)}


def _refused(root: Path, *words: str) -> str:
    with pytest.raises(FastfoodError) as info:
        data.load(root)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def test_food101_images_folder_linked_outside_is_refused(tmp_path: Path) -> None:
    outside = _food101(tmp_path / "outside", COUNTS)
    root = _food101(tmp_path / "root", COUNTS)
    shutil.rmtree(root / "images")
    (root / "images").symlink_to(outside / "images", target_is_directory=True)
    _refused(root, "outside the dataset root")


def test_presplit_train_folder_linked_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    for name in ("a", "b"):
        write_images(outside / name, 3, seed=ord(name))
        write_images(tmp_path / "root" / "val" / name, 1, seed=ord(name))
    (tmp_path / "root" / "train").symlink_to(outside, target_is_directory=True)
    _refused(tmp_path / "root", "outside the dataset root")


def test_link_chain_leaving_the_root_on_its_last_hop_is_refused(tmp_path: Path) -> None:
    outside = _food101(tmp_path / "outside", COUNTS)
    root = _food101(tmp_path / "root", COUNTS)
    image = root / "images" / "a" / "001.jpg"
    image.unlink()
    image.symlink_to("hop.jpg")  # inside the root...
    (root / "images" / "a" / "hop.jpg").symlink_to(outside / "images" / "a" / "000.jpg")  # ...out
    _refused(root, str(image), "outside the dataset root")


def test_link_loop_is_a_clean_error(tmp_path: Path) -> None:
    root = _food101(tmp_path / "root", COUNTS)
    image = root / "images" / "a" / "001.jpg"
    image.unlink()
    image.symlink_to("loop.jpg")
    (root / "images" / "a" / "loop.jpg").symlink_to("001.jpg")
    _refused(root, str(image))


def test_fifo_posing_as_an_image_is_refused_not_read(tmp_path: Path) -> None:
    # Reading a FIFO would block forever; it must be refused by its type.
    root = _food101(tmp_path / "root", COUNTS)
    image = root / "images" / "b" / "000.jpg"
    image.unlink()
    os.mkfifo(image)
    _refused(root, str(image), "not a regular file")


def test_nul_byte_in_a_meta_line_names_file_and_line(tmp_path: Path) -> None:
    root = _food101(tmp_path / "root", COUNTS)
    (root / "meta" / "train.txt").write_text("a/000\na/001\nb/0\x0000\n")
    _refused(root, f"{root / 'meta' / 'train.txt'}:3:")


def test_contained_listing_stays_inside_even_with_a_linked_meta_file(tmp_path: Path) -> None:
    # meta/train.txt may itself be a link (how some mirrors share meta/); what it lists is
    # still resolved against, and confined to, the dataset root.
    outside = _food101(tmp_path / "outside", COUNTS)
    root = _food101(tmp_path / "root", COUNTS)
    (root / "meta" / "train.txt").unlink()
    (root / "meta" / "train.txt").symlink_to(outside / "meta" / "train.txt")
    spec = data.load(root)
    real_root = os.path.realpath(root) + os.sep
    for path in spec.train.files + spec.val.files + spec.test.files:
        assert os.path.realpath(path).startswith(real_root), path


# --- nothing is unpickled or executed -------------------------------------------------------

UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "joblib", "shelve", "marshal",
                  "cloudpickle", "torch"}
UNSAFE_CALLS = {"load_model", "unsafe_load", "full_load", "eval", "exec"}


def _python_files() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20, files  # the scan looks at the real package
    return files


def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def test_no_module_imports_a_deserializer_that_runs_code() -> None:
    offenders = {str(path.relative_to(REPO)): sorted(_imported_modules(ast.parse(
        path.read_text())) & UNSAFE_MODULES) for path in _python_files()}
    assert not {k: v for k, v in offenders.items() if v}


def test_no_call_unpickles_or_evaluates() -> None:
    found = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            keywords = {k.arg: k.value for k in node.keywords}
            pickles = "allow_pickle" in keywords and not (
                isinstance(keywords["allow_pickle"], ast.Constant)
                and keywords["allow_pickle"].value is False)
            unsafe_model = name == "load_model" and not (
                isinstance(keywords.get("safe_mode"), ast.Constant)
                and keywords["safe_mode"].value is True)
            if pickles or unsafe_model or (name in UNSAFE_CALLS - {"load_model"}):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not found, found


def test_keras_weight_reader_uses_h5py_only() -> None:
    source = PACKAGE / "model" / "keras_weights.py"
    modules = _imported_modules(ast.parse(source.read_text()))
    assert "h5py" in modules
    assert not modules & {"keras", "tensorflow", "tf_keras", "numpy"} - {"h5py"}, modules
    assert not modules & UNSAFE_MODULES


def _keras_h5_with_code(path: Path, sentinel: Path) -> None:
    """A full-model Keras .h5 whose Lambda layer writes `sentinel` whenever Keras rebuilds it.

    The premise is checked: Keras itself, told to trust the file, runs the code.
    """
    import keras

    target = str(sentinel)
    model = keras.Sequential([keras.Input((2,)),
                              keras.layers.Lambda(lambda x: (open(target, "w").close(), x)[1])])
    model.save(path)
    sentinel.unlink()  # building the model above ran it once
    keras.models.load_model(path, safe_mode=False)
    assert sentinel.exists(), "premise: deserializing this file runs its code"
    sentinel.unlink()


def test_weight_files_are_read_as_arrays_and_never_executed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    from fastfood.model import vgg19

    def forbidden(name: str):
        def call(*args, **kwargs):
            raise AssertionError(f"{name} was called while reading a weight file")
        return call

    sentinel = tmp_path / "code_ran"
    evil = tmp_path / "evil.h5"
    _keras_h5_with_code(evil, sentinel)  # (before the patches: it uses Keras' own loader)
    with h5py.File(evil, "r") as f:  # the premise: the file carries a serialized model config
        assert "model_config" in f.attrs
    text = tmp_path / "pickle.h5"
    text.write_bytes(pickle.dumps({"not": "weights"}))

    for module, attr in ((pickle, "load"), (pickle, "loads"), (marshal, "loads"),
                         (np, "load"), (keras.models, "load_model"),
                         (keras.saving, "load_model")):
        monkeypatch.setattr(module, attr, forbidden(f"{module.__name__}.{attr}"))

    with pytest.raises(FastfoodError) as info:
        vgg19(2, image_size=224, weights=str(evil))
    assert str(evil) in str(info.value)
    assert not sentinel.exists()

    with pytest.raises(FastfoodError):
        vgg19(2, image_size=224, weights=str(text))
