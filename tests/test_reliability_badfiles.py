"""Training goes on past bad image files, says how many it skipped, and names them.

The loaders' own tests cover each loader with bad files, and the predict tests cover the
odd-jpegs corpus through predict; what is left is the whole `fastfood train` command on a
class-folder dataset that mixes odd files from tests/data/odd-jpegs with good ones:

- files the preflight rejects (empty, text, truncated, junk header, no EOI) are skipped by
  every loader, counted on the "data" line and named in the log;
- odd but valid files (grayscale, CMYK, PNG named .jpg, progressive, EXIF) are trained on;
- a file that passes the preflight but fails to decode, in the training split or in the
  validation split, must not end the run either (the documented backstop).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from support.cli import TINY, run_cli
from support.corpus import DECODABLE, ODD, PREFLIGHT_REJECTS
from support.images import body_corrupt_jpeg, write_images

LOADERS = ["tfdata", pytest.param("dali", marks=pytest.mark.dali)]


def _two_class_tree(data: Path) -> None:
    """train/{a,b}: 8 noise JPEGs each; val/{a,b}: 2 each."""
    write_images(data / "train" / "a", 8, seed=1)
    write_images(data / "train" / "b", 8, seed=2)
    write_images(data / "val" / "a", 2, seed=3)
    write_images(data / "val" / "b", 2, seed=4)


def _train(data: Path, run: Path, loader: str, steps: int, capsys,
           *extra: str) -> tuple[int, str, dict]:
    argv = ["train", "--data", str(data), *TINY, "--loader", loader, "--max-steps", str(steps),
            "--run-dir", str(run), *extra]
    code, _, err = run_cli(argv, capsys)
    summary = json.loads((run / "summary.json").read_text()) if code == 0 else {}
    return code, err, summary


def _tree_with_a_corrupt_train_file(data: Path) -> Path:
    """train/{a,b}: 19 good + 1 corrupt = 20 files (batch 4: every file is in the epoch,
    the corrupt one too); val/{a,b}: 2 each."""
    write_images(data / "train" / "a", 10, seed=1)
    write_images(data / "train" / "b", 9, seed=2)
    (data / "train" / "b" / "zz_corrupt.jpg").write_bytes(body_corrupt_jpeg())
    write_images(data / "val" / "a", 2, seed=3)
    write_images(data / "val" / "b", 2, seed=4)
    return data


def _assert_stopped_naming_the_file_with_a_checkpoint(code: int, err: str, run: Path) -> None:
    """Exit 65 (a data file is bad), one error line naming the file and how to resume, and
    the checkpoint it names is listed and reads back whole."""
    from support.runs import listed_checkpoints, read_every_tensor

    assert code == 65, err  # EX_DATAERR (fastfood.train.failures)
    errors = [line for line in err.splitlines() if line.startswith("fastfood: error:")]
    assert len(errors) == 1 and "cannot decode" in errors[0], err
    assert "zz_corrupt.jpg" in errors[0] and "--resume" in errors[0], errors[0]
    listed = listed_checkpoints(run)
    assert listed and listed[-1] in errors[0], (listed, errors[0])
    read_every_tensor(listed[-1])


def test_body_corrupt_jpeg_passes_the_preflight_but_not_the_decoder(tmp_path: Path) -> None:
    """The premise of the backstop tests below (if it stops holding, they test nothing)."""
    import tensorflow as tf

    from fastfood.loaders import validate
    from fastfood.loaders.preprocess import eval_image

    path = tmp_path / "x.jpg"
    path.write_bytes(body_corrupt_jpeg())
    assert validate.check_file(str(path)) is None
    with pytest.raises(tf.errors.InvalidArgumentError):
        eval_image(tf.io.read_file(str(path)), 32)


@pytest.mark.parametrize("loader", LOADERS)
def test_training_skips_counts_and_names_odd_files(loader: str, tmp_path: Path, capsys,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    _two_class_tree(data)
    # Odd files spread over both classes: the rejects and the decodable ones.
    for i, name in enumerate(PREFLIGHT_REJECTS + DECODABLE):
        shutil.copy(ODD / name, data / "train" / "ab"[i % 2] / f"odd_{name}")
    with caplog.at_level(logging.WARNING, logger="fastfood"):
        code, err, summary = _train(data, tmp_path / "run", loader, steps=6, capsys=capsys)
    assert code == 0, err
    assert summary["step"] == 6 and summary["exit_code"] == 0
    usable = 16 + len(DECODABLE)
    assert f"{usable} train" in err
    assert f"({len(PREFLIGHT_REJECTS)} unreadable train files skipped)" in err, err
    logged = caplog.text
    for name in PREFLIGHT_REJECTS:
        assert f"odd_{name}" in logged, (name, logged)
    for name in DECODABLE:
        assert f"odd_{name}" not in logged, (name, logged)


@pytest.mark.parametrize("loader", LOADERS)
def test_training_survives_a_file_that_fails_to_decode(loader: str, tmp_path: Path,
                                                       capsys) -> None:
    """tf.data skips the file (the epoch comes up short) and the run goes on to its planned
    step; DALI cannot skip inside its pipeline, so the run may instead stop with a saved
    checkpoint and one line naming the file and how to resume."""
    data = _tree_with_a_corrupt_train_file(tmp_path / "data")
    run = tmp_path / "run"
    code, err, summary = _train(data, run, loader, steps=10, capsys=capsys)
    assert "Traceback" not in err
    if loader == "tfdata" or code == 0:
        assert code == 0, err
        assert summary["step"] == 10
        if loader == "tfdata":
            # Named once with the decoder's reason, and counted in the run's summary.
            named = [line for line in err.splitlines() if "zz_corrupt.jpg" in line]
            assert named and "cannot decode" in named[0], err
            assert [d["file"].rsplit("/", 1)[-1] for d in summary["decode_skipped"]] == \
                ["zz_corrupt.jpg"]
        return
    _assert_stopped_naming_the_file_with_a_checkpoint(code, err, run)


def test_strict_stops_on_the_first_file_that_fails_to_decode(tmp_path: Path, capsys) -> None:
    """--strict: the tf.data run that would name the file and go on stops instead, with a
    checkpoint, exit code 65 and the file named, as DALI's stop does."""
    data = _tree_with_a_corrupt_train_file(tmp_path / "data")
    run = tmp_path / "run"
    code, err, _ = _train(data, run, "tfdata", 10, capsys, "--strict")
    _assert_stopped_naming_the_file_with_a_checkpoint(code, err, run)


@pytest.mark.parametrize("loader", LOADERS)
def test_validation_survives_a_file_that_fails_to_decode(
        loader: str, tmp_path: Path, capsys, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    _two_class_tree(data)
    (data / "val" / "b" / "zz_corrupt.jpg").write_bytes(body_corrupt_jpeg())
    code, err, summary = _train(data, tmp_path / "run", loader, steps=4, capsys=capsys)
    assert code == 0, err
    assert summary["step"] == 4 and summary["val"] is not None
    # Named (on stderr or in the log), as `fastfood evaluate` names the files it skips.
    assert "zz_corrupt.jpg" in err + caplog.text


@pytest.mark.dali
def test_predict_with_dali_answers_or_names_every_odd_file(tmp_path: Path, capsys) -> None:
    """predict's own tests take the corpus through the direct and tf.data paths; DALI here."""
    from fastfood.benchmark.untrained import write_untrained_run
    from fastfood.inference.files import collect_images

    run = write_untrained_run(tmp_path / "run", ["a", "b"], image_size=32, width=0.125)
    files = collect_images([ODD])
    code, out, err = run_cli(["predict", "--run-dir", str(run), "--loader", "dali",
                                     "--json", "--batch-size", "4", str(ODD)], capsys)
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["file"] for a in answers] == files  # every file once, in order
    named = {Path(a["file"]).name: a["error"] for a in answers if "error" in a}
    assert set(PREFLIGHT_REJECTS) <= set(named), named
    assert not set(DECODABLE) & set(named), named
    assert all(reason.strip() and "\n" not in reason for reason in named.values())
    assert code == 1 and "Traceback" not in err  # some files failed, all were answered
