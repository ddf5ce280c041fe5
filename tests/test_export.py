"""fastfood export: each format written, checked against the run, and kept only when it
agrees; the SavedModel needs no fastfood and answers as predict does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
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


@pytest.mark.parametrize("flags, named", [
    (["--min-agreement", "99.5"], "--min-agreement"),
    (["--check-images", "0"], "--check-images"),
    (["--int8-images", "-1"], "--int8-images"),
    (["--format", "pt"], "--format"),
    (["--precision", "int4"], "--precision"),
    (["--precision", "bf16", "--format", "onnx"], "--precision"),
])
def test_bad_flags_are_refused_before_anything_is_written(
        trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        flags: list[str], named: str) -> None:
    code, _, err = run_cli(["export", "--run-dir", str(trained_run), "--out",
                            str(tmp_path / "x"), *flags], capsys)
    assert code == 2 and named in err
    assert not (tmp_path / "x").exists()


def test_a_missing_extra_names_the_install_command(
        trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # find_spec: not installed
    code, _, err = run_cli(["export", "--run-dir", str(trained_run), "--out",
                            str(tmp_path / "x"), "--format", "onnx"], capsys)
    assert code == 2
    assert "onnxruntime" in err and "pip install 'fastfood[export]'" in err
    assert not (tmp_path / "x").exists()


# --- the formats, checked -------------------------------------------------------------------

TEMPERATURE = 2.5
CHECK_IMAGES = 16


@pytest.fixture(scope="module")
def calibrated(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's run with a calibration.json (T = 2.5) for its best weights."""
    run = tmp_path_factory.mktemp("export") / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("ckpt", "tb"))
    best = sorted((run / "best").glob("*.index"))[-1]
    (run / "calibration.json").write_text(json.dumps(
        {"temperature": TEMPERATURE, "checkpoint": f"best/{best.stem}"}))
    return run


@pytest.fixture(scope="module")
def exports(calibrated: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Each format exported once (lazily): {format: (folder, CheckResult)}."""
    from fastfood.export import ExportRequest, export_run

    made: dict[str, object] = {}
    root = tmp_path_factory.mktemp("exports")

    def get(fmt: str):
        if fmt not in made:
            out = root / fmt
            made[fmt] = (out, export_run(ExportRequest(
                out=out, run_dir=calibrated, format=fmt, check_images=CHECK_IMAGES,
                int8_images=8, min_agreement_int8=0.0, batch_size=8)))
        return made[fmt]

    return get  # type: ignore[return-value]


def _pixels_and_reference(run: Path, n: int, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """The eval view of n val images and the run's own probabilities at `temperature`."""
    from fastfood.evaluate import split_files
    from fastfood.inference.forward import Forward
    from fastfood.inference.runs import load_run
    from fastfood.loaders.preprocess import eval_image
    import tensorflow as tf

    model, info = load_run(run)
    _, files, _ = split_files(info, None, "val")
    pixels = np.stack([eval_image(tf.io.read_file(f), info.image_size).numpy()
                       for f in files[:n]])
    return pixels, Forward(model, info.image_size, temperature)(pixels)


@pytest.mark.slow
@pytest.mark.parametrize("fmt, files", [
    ("savedmodel", ["saved_model.pb"]),
    ("tflite", ["model.tflite", "model_int8.tflite"]),
    ("onnx", ["model.onnx"]),
])
def test_each_format_is_checked_against_the_run_and_kept(exports, fmt: str,
                                                         files: list[str]) -> None:
    out, result = exports(fmt)
    assert result.passed
    assert result.sample == f"{CHECK_IMAGES} of 48 val images, evenly spaced"
    assert result.reference.n == CHECK_IMAGES
    for name in files:
        assert (out / name).is_file()
    assert not list(out.parent.glob(".*staging*"))
    float_rows = [a for a in result.artifacts if a.name != "tflite-int8"]
    for row in float_rows:  # float32 formats: the same numbers as the run, to rounding
        assert row.n == CHECK_IMAGES and row.agreement == 1.0
        assert row.max_prob_diff < 1e-4
        assert row.latency_ms > 0 and row.throughput > 0
    checked = json.loads((out / "export_check.json").read_text())
    assert checked["passed"] is True
    assert [a["name"] for a in checked["artifacts"]] == [a.name for a in result.artifacts]
    described = json.loads((out / "preprocessing.json").read_text())
    assert described["format"] == fmt and described["precision"] == "fp32"
    assert described["output"]["temperature"] == TEMPERATURE
    assert described["input"]["shape"] == [None, 64, 64, 3]
    assert described["crop"]["kind"] == "centre square"
    assert described["normalization"]["inside_model"] is True


@pytest.mark.slow
def test_int8_is_quantized_and_reported_against_its_own_tolerance(exports) -> None:
    from ai_edge_litert.interpreter import Interpreter

    out, result = exports("tflite")
    int8 = next(a for a in result.artifacts if a.name == "tflite-int8")
    assert int8.min_agreement == 0.0 and 0.0 <= int8.agreement <= 1.0
    assert int8.max_prob_diff > 0  # not the float model again
    kinds = {d["dtype"] for d in Interpreter(model_path=str(out / "model_int8.tflite"))
             .get_tensor_details()}
    assert np.int8 in kinds
    floats = {d["dtype"] for d in Interpreter(model_path=str(out / "model.tflite"))
              .get_tensor_details()}
    assert np.int8 not in floats


@pytest.mark.slow
def test_the_exports_apply_the_run_temperature(exports, calibrated: Path) -> None:
    import onnxruntime as ort
    import tensorflow as tf

    pixels, calibrated_probs = _pixels_and_reference(calibrated, 4, TEMPERATURE)
    _, raw = _pixels_and_reference(calibrated, 4, 1.0)
    assert np.abs(calibrated_probs - raw).max() > 1e-3  # T = 2.5 changes the numbers

    out, _ = exports("onnx")
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    np.testing.assert_allclose(got, calibrated_probs, atol=1e-5)

    out, _ = exports("savedmodel")
    loaded = tf.saved_model.load(str(out))
    got = loaded.signatures["pixels"](pixels=tf.constant(pixels))["probs"].numpy()
    np.testing.assert_allclose(got, calibrated_probs, atol=1e-5)
    meta = {k: v.numpy() for k, v in loaded.signatures["metadata"]().items()}
    assert meta["precision"] == b"fp32" and meta["temperature"] == pytest.approx(TEMPERATURE)


@pytest.mark.slow
def test_a_bf16_savedmodel_records_its_precision_and_is_checked_against_float32(
        calibrated: Path, tmp_path: Path) -> None:
    import tensorflow as tf

    from fastfood.export import ExportRequest, export_run

    out = tmp_path / "bf16"
    result = export_run(ExportRequest(out=out, run_dir=calibrated, precision="bf16",
                                      check_images=CHECK_IMAGES, min_agreement=0.9,
                                      batch_size=8))
    assert result.passed and result.precision == "bf16"
    (row,) = [a for a in result.artifacts if a.name == "savedmodel"]
    assert row.agreement >= 0.9
    assert 0 < row.max_prob_diff < 0.2  # bf16 really ran, and still answers as the run
    assert json.loads((out / "preprocessing.json").read_text())["precision"] == "bf16"
    assert json.loads((out / "export_check.json").read_text())["precision"] == "bf16"
    meta = {k: v.numpy() for k, v in
            tf.saved_model.load(str(out)).signatures["metadata"]().items()}
    assert meta["precision"] == b"bf16"


@pytest.mark.slow
def test_a_broken_artifact_fails_and_keeps_the_old_export(
        calibrated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The writer saves the model with fc8 negated (then puts it back): the file on disk
    ranks classes upside down, the check sees it, and --out keeps what it had."""
    from fastfood.export import savedmodel

    original = savedmodel.write

    def broken_write(served, *args, **kwargs):
        fc8 = [v for v in served.weights if "fc8" in v.path]
        kept = [v.numpy() for v in fc8]
        for v in fc8:
            v.assign(-v.numpy())
        try:
            return original(served, *args, **kwargs)
        finally:
            for v, value in zip(fc8, kept):
                v.assign(value)

    monkeypatch.setattr(savedmodel, "write", broken_write)
    out = tmp_path / "exported"
    out.mkdir()
    (out / "old_export.txt").write_text("the export that was here")
    code, _, err = run_cli(["export", "--run-dir", str(calibrated), "--out", str(out),
                            "--force", "--check-images", "8"], capsys)
    assert code == 2, err
    assert "export check failed" in err and "needs 99.5%" in err
    assert "top-1 agree" in err  # the check's table, before the error
    assert sorted(p.name for p in out.iterdir()) == ["old_export.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]  # no staging left


def test_staging_replaces_the_old_export_only_when_the_new_one_is_done(tmp_path: Path) -> None:
    from fastfood.export.staging import staged

    out = tmp_path / "exported"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with staged(out, overwrite=True) as stage:
            (stage / "half.txt").write_text("half-made")
            raise RuntimeError("the check failed")
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    with staged(out, overwrite=True) as stage:
        (stage / "new.txt").write_text("new")
        assert [p.name for p in out.iterdir()] == ["old.txt"]  # not yet: still staged
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"]
