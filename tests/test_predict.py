"""fastfood predict: the eval loader's pixels, robustness to bad files, output, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fastfood.errors import FastfoodError
from fastfood.inference.files import collect_images

from support.cli import run_cli, run_subprocess
from support.corpus import ODD, PLAIN, UNDECODABLE, corrupt_files
from support.runs import assert_same_top_k, untrained_run


@pytest.fixture(scope="module")
def predictor(trained_run: Path):
    from fastfood.predict import Predictor

    return Predictor.load(trained_run)


def _sample_val(sample_dir: Path) -> tuple[list[str], list[int]]:
    from fastfood.data import load

    spec = load(sample_dir)
    return list(spec.val.files), list(spec.val.labels)


# --- which files -------------------------------------------------------------------------


def test_collect_images_walks_folders_keeps_named_files_and_dedups(tmp_path: Path) -> None:
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / "a" / ".hidden").mkdir()
    for name in ("a/2.JPG", "a/1.png", "a/deep/x.jpeg", "a/notes.txt", "a/._fork.jpg",
                 "a/.hidden/y.jpg", "named.weird"):
        (tmp_path / name).write_bytes(b"x")
    found = collect_images([tmp_path / "named.weird", tmp_path / "a", tmp_path / "a" / "1.png"])
    rel = [str(Path(p).relative_to(tmp_path)) for p in found]
    assert rel == ["named.weird", "a/1.png", "a/2.JPG", "a/deep/x.jpeg"]
    with pytest.raises(FastfoodError, match="nope.jpg"):
        collect_images([tmp_path / "nope.jpg"])


# --- pixels: predict sees exactly what the eval loader gives ---------------------------------


def test_input_tensor_equals_eval_loader(sample_dir: Path, predictor) -> None:
    from fastfood import loaders
    from fastfood.inference.batches import Batch, decode_batches

    files, labels = _sample_val(sample_dir)
    files = files[:5] + [str(ODD / "png_named_as.jpg"), str(ODD / "hopper_gray.jpg"),
                         str(ODD / "pil_sample_cmyk.jpg"), str(ODD / "orientation_rectangle.jpg")]
    size = predictor.image_size
    reference = np.concatenate([
        images.numpy() for images, _ in loaders.build(
            "tfdata", files, [0] * len(files), training=False, batch_size=4, image_size=size)
    ])
    assert reference.shape == (len(files), size, size, 3)
    for kind in ("direct", "tfdata"):
        got = np.zeros_like(reference)
        seen = []
        for item in decode_batches(files, image_size=size, batch_size=3, kind=kind):
            assert isinstance(item, Batch), item
            got[list(item.indices)] = item.images.numpy()
            seen += item.indices
        assert sorted(seen) == list(range(len(files)))
        np.testing.assert_array_equal(got, reference, err_msg=kind)
    # ... and the probabilities predict reports are the model's on exactly those pixels (to
    # float32 rounding: oneDNN picks other kernels for other batch sizes, ~1e-5 here).
    expected = predictor.model(reference, training=False).numpy()
    expected = np.exp(expected - expected.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    for batch_size in (2, 32):  # traced (several batches) and eager (one batch)
        preds = list(predictor.predict_files(files, top_k=3, batch_size=batch_size,
                                             loader="tfdata"))
        for row, p in zip(expected, preds):
            assert p.error is None
            order = np.argsort(-row, kind="stable")[:3]
            assert_same_top_k([g.index for g in p.top_k], [g.prob for g in p.top_k],
                              list(order), list(row[order]))


def test_fast_load_matches_a_plain_build_and_restore(trained_run: Path, predictor) -> None:
    """Zeros instead of random init + restore gives what a plain build + restore gives;
    the predictor's model (batch norm folded) computes the same logits to rounding."""
    import dataclasses

    from fastfood import model as models
    from fastfood.inference.runs import load_run
    from fastfood.rundir import restore_weights
    from fastfood.rundir import read_info

    info = read_info(trained_run)
    model = models.build(dataclasses.replace(info.config.model, convention=info.convention),
                         load_weights=False, num_classes=info.num_classes)
    restore_weights(model, trained_run)
    x = np.random.default_rng(0).integers(0, 256, (3, predictor.image_size,
                                                   predictor.image_size, 3), dtype=np.uint8)
    np.testing.assert_allclose(predictor.model(x, training=False).numpy(),
                               model(x, training=False).numpy(), rtol=1e-4, atol=1e-4)
    fast, _ = load_run(trained_run)
    assert len(fast.weights) == len(model.weights)
    for a, b in zip(fast.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert predictor.classes == info.classes


def test_weights_from_best_else_final_else_latest_ckpt(trained_run: Path, tmp_path: Path) -> None:
    from fastfood.inference.runs import load_run, readahead_weights

    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    thread = readahead_weights(copy)  # the page-cache hint predict gives before importing TF
    if thread is not None:
        thread.join(30)
        assert not thread.is_alive()
    assert load_run(copy)[1].checkpoint == "best"
    shutil.rmtree(copy / "best")
    model, info = load_run(copy)  # final/ is a model-only Checkpoint.write()
    assert info.checkpoint == "final"
    shutil.rmtree(copy / "final")
    latest, info = load_run(copy)
    assert info.checkpoint == "latest" and info.checkpoint_path.endswith("ckpt-30")
    # 30 steps end in both final/ and ckpt-30: the same weights.
    for a, b in zip(model.weights, latest.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    shutil.rmtree(copy / "ckpt")
    with pytest.raises(FastfoodError, match="no checkpoint"):
        load_run(copy)


def test_model_runs_float32_whatever_the_global_policy(tmp_path: Path) -> None:
    """predict/evaluate/export run float32 even if the process (or the run) used bf16."""
    import keras

    from fastfood.inference.runs import load_run

    run = untrained_run(tmp_path / "run", ["a", "b"])
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model, _ = load_run(run)
        assert keras.config.dtype_policy().name == "mixed_bfloat16"  # put back
    finally:
        keras.config.set_dtype_policy(previous)
    assert {layer.dtype_policy.compute_dtype for layer in model.layers} == {"float32"}


def test_checkpoint_that_does_not_fit_is_an_error(tmp_path: Path) -> None:
    """Variables start uninitialised; a restore that cannot fill them all must fail loudly."""
    from fastfood.model import vgg19
    from fastfood.inference.fastload import restored_variables_only
    from fastfood.inference.runs import load_run

    with restored_variables_only() as swapped:
        vgg19(3, image_size=32, width=0.5)
    assert swapped.variables, "no variable was swapped: the fast init is not in effect"

    run = untrained_run(tmp_path / "run", ["a", "b", "c"])
    config = json.loads((run / "config.json").read_text())
    config["model"]["width"] = 0.25  # the checkpoint holds width 0.125
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(FastfoodError, match="checkpoint"):
        load_run(run)


# --- bad files ------------------------------------------------------------------------------


DALI = pytest.param("dali", marks=pytest.mark.dali)


@pytest.mark.parametrize("loader", ["direct", "tfdata", DALI])
def test_odd_jpegs_corpus_every_file_answered_or_named(predictor, loader: str) -> None:
    files = collect_images([ODD])
    names = [Path(f).name for f in files]
    assert len(files) >= 20 and UNDECODABLE <= set(names)
    preds = list(predictor.predict_files(files, top_k=2, batch_size=4, loader=loader))
    assert [p.file for p in preds] == files  # every file once, in order
    for name, p in zip(names, preds):
        assert (p.error is None) != (not p.top_k), p
        if p.error is not None:
            assert p.error.strip()
        else:
            assert len(p.top_k) == 2 and 0.0 <= p.top_k[1].prob <= p.top_k[0].prob <= 1.0
        if name in UNDECODABLE:
            assert p.error is not None, name
        if name in PLAIN:
            assert p.error is None, (name, p.error)


@pytest.mark.parametrize("loader", ["tfdata", DALI])
def test_decode_failure_inside_the_pipeline_falls_back_per_file(
        tmp_path: Path, sample_dir: Path, predictor, loader: str) -> None:
    from fastfood.loaders import validate

    bad = corrupt_files(tmp_path)
    assert validate.check_file(str(bad["jpeg12"])) is None  # passes the preflight...
    good, _ = _sample_val(sample_dir)
    files = good[:5] + [str(bad["jpeg12"])] + good[5:11] + [str(bad["png"])] + good[11:14]
    clean = {p.file: p for p in predictor.predict_files(good[:14], batch_size=4, loader=loader)}
    preds = list(predictor.predict_files(files, batch_size=4, loader=loader))
    assert [p.file for p in preds] == files
    for p in preds:
        if p.file in (str(bad["jpeg12"]), str(bad["png"])):
            assert p.error and "cannot decode" in p.error, p  # ...but is named here
        else:
            # The good files of the failed batch were decoded by eval_image (TF) instead of
            # the batch's loader: identical pixels for tfdata, within DALI/TF parity for dali.
            assert p.error is None
            ref = clean[p.file].top_k
            assert_same_top_k([g.index for g in p.top_k], [g.prob for g in p.top_k],
                              [g.index for g in ref], [g.prob for g in ref],
                              atol=1e-4 if loader == "tfdata" else 3e-3)


# --- the command ----------------------------------------------------------------------------


def test_cli_json_lines_and_exit_codes(trained_run: Path, sample_dir: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    good = _sample_val(sample_dir)[0][:2]
    code, out, _ = run_cli(
        ["predict", *good, "--run-dir", str(trained_run), "--json", "--top-k", "3"], capsys)
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["file"] for x in lines] == good
    for x in lines:
        assert set(x) == {"file", "top_k", "precision"} and len(x["top_k"]) == 3
        assert {"class", "prob"} <= set(x["top_k"][0])
        probs = [g["prob"] for g in x["top_k"]]
        assert probs == sorted(probs, reverse=True) and 0 < probs[0] <= 1

    # One unreadable file: the others still answered, the bad one named, exit 1.
    code, out, _ = run_cli(["predict", good[0], str(ODD / "empty.jpg"), "--run-dir",
                            str(trained_run), "--json"], capsys)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert "top_k" in lines[0] and lines[1] == {"file": str(ODD / "empty.jpg"),
                                                 "error": "empty file"}

    # Human output names the display names.
    code, out, _ = run_cli(["predict", good[0], "--run-dir", str(trained_run), "--top-k", "2"],
                           capsys)
    names = json.loads((trained_run / "classes.json").read_text())["display_names"]
    assert code == 0 and out.splitlines()[0] == good[0]
    assert sum(any(n in line for n in names) for line in out.splitlines()[1:]) == 2

    # Usage errors: exit 2 with one line naming the problem.
    monkeypatch.setenv("FASTFOOD_RUNS", str(tmp_path / "no-runs-here"))
    for argv, words in [
        (["predict", good[0], "--run-dir", str(tmp_path / "missing")], "does not exist"),
        (["predict", good[0]], "no run under"),
        (["predict", str(tmp_path / "nope.jpg"), "--run-dir", str(trained_run)], "nope.jpg"),
        (["predict", good[0], "--run-dir", str(trained_run), "--top-k", "0"], "--top-k"),
        (["predict", good[0], "--run-dir", str(tmp_path)], "not a fastfood run"),
    ]:
        code, out, err = run_cli(argv, capsys)
        assert code == 2, (argv, out, err)
        assert err.startswith("fastfood: error:") and words in err, err

    # The newest run under runs/ is the default.
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(trained_run, runs / "only")
    monkeypatch.setenv("FASTFOOD_RUNS", str(runs))
    code, out, _ = run_cli(["predict", good[0], "--json"], capsys)
    assert code == 0 and "top_k" in json.loads(out)


def test_model_flag_uses_that_checkpoint(trained_run: Path, sample_dir: Path, predictor,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    good = _sample_val(sample_dir)[0][:1]
    index = sorted((trained_run / "ckpt").glob("ckpt-*.index"))[0]
    prefix = str(index)[: -len(".index")]
    code, out, _ = run_cli(["predict", *good, "--model", prefix, "--json"], capsys)
    assert code == 0 and json.loads(out)["top_k"]
    code, _, err = run_cli(["predict", *good, "--model", prefix + "9999"], capsys)
    assert code == 2 and "no checkpoint" in err


@pytest.mark.slow
def test_cold_process_answers_and_reports_timing(tmp_path: Path) -> None:
    """The real entry point in a fresh process: exit code 1, JSON lines, the timing line."""
    run = untrained_run(tmp_path / "run", ["a", "b", "c"])
    result = run_subprocess(
        ["predict", str(ODD / "hopper.jpg"), str(ODD / "text_named_as.jpg"), "--run-dir",
         str(run), "--json"], cwd=tmp_path, FASTFOOD_TIMING="1")
    assert result.returncode == 1, result.stderr
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert "top_k" in lines[0] and "error" in lines[1]
    timing = [x for x in result.stderr.splitlines() if x.startswith("fastfood-timing ")]
    assert len(timing) == 1
    phases = json.loads(timing[0].split(" ", 1)[1])
    for phase in ("import_tensorflow", "build_model", "restore_weights", "decode", "forward",
                  "total"):
        assert phases[phase] >= 0, phase
    assert phases["total"] >= phases["import_tensorflow"] + phases["forward"]
