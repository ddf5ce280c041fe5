"""fastfood export: a SavedModel that needs no fastfood and answers as predict does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import run_cli
from support.corpus import ODD
from support.runs import assert_same_top_k

# Runs in a fresh interpreter (-I: no user site, no PYTHONPATH, cwd not on sys.path) from a
# folder outside the repo, with `fastfood` made unimportable: the SavedModel must load and
# answer with TensorFlow alone.
LOADER = r"""
import importlib.abc, json, sys
class NoFastfood(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "fastfood" or name.startswith("fastfood."):
            raise ImportError("fastfood must not be needed to serve the export")
sys.meta_path.insert(0, NoFastfood())
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
serve = model.signatures["serving_default"]
files = sys.argv[2:]
out = serve(images=tf.constant([open(f, "rb").read() for f in files]))
empty = serve(images=tf.constant([], dtype=tf.string))
print(json.dumps({
    "classes": out["classes"].numpy().tolist(),
    "names": [[n.decode() for n in row] for row in out["names"].numpy()],
    "probs": out["probs"].numpy().tolist(),
    "empty_shape": list(empty["classes"].shape),
    "inputs": {k: [str(v.dtype.name), v.shape.as_list()]
               for k, v in serve.structured_input_signature[1].items()},
    "fastfood_loaded": any(m == "fastfood" or m.startswith("fastfood.") for m in sys.modules),
}))
"""


@pytest.mark.slow
def test_export_loads_without_fastfood_and_agrees_with_predict(
        trained_run: Path, sample_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from fastfood.data import load
    from fastfood.predict import Predictor

    out = tmp_path / "exported"
    code, stdout, err = run_cli(["export", "--run-dir", str(trained_run), "--out", str(out),
                                 "--top-k", "3"], capsys)
    assert code == 0, err
    assert (out / "saved_model.pb").is_file()

    files = list(load(sample_dir).val.files[:4]) + [
        str(ODD / f) for f in ("png_named_as.jpg", "hopper_gray.jpg", "pil_sample_cmyk.jpg",
                               "orientation_rectangle.jpg", "icc_profile_big.jpg")]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = subprocess.run([sys.executable, "-I", "-c", LOADER, str(out), *files],
                            cwd=outside, capture_output=True, text=True, timeout=300,
                            env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["fastfood_loaded"] is False
    assert served["inputs"] == {"images": ["string", [None]]}
    assert served["empty_shape"] == [0, 3]

    # predict runs float32, as the export does: same classes, same probabilities (to
    # rounding: other batch sizes, another process).
    predictor = Predictor.load(trained_run)
    # tfdata: the export decodes with eval_image, so compare with predict's eval_image path
    # (DALI's pixels differ from TF's by the loaders' parity tolerance).
    for i, p in enumerate(predictor.predict_files(files, top_k=3, batch_size=4,
                                                  loader="tfdata")):
        assert p.error is None
        assert_same_top_k(served["classes"][i], served["probs"][i],
                          [g.index for g in p.top_k], [g.prob for g in p.top_k])
        names = json.loads((trained_run / "classes.json").read_text())["display_names"]
        assert served["names"][i] == [names[c] for c in served["classes"][i]]


def test_export_refuses_a_non_empty_folder(trained_run: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    code, _, err = run_cli(
        ["export", "--run-dir", str(trained_run), "--out", str(tmp_path / "full")], capsys)
    assert code == 2 and "not empty" in err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    code, _, err = run_cli(["export", "--run-dir", str(trained_run), "--out", str(tmp_path / "x"),
                            "--top-k", "0"], capsys)
    assert code == 2 and "--top-k" in err
