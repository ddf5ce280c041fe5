"""The preflight's pixel cap: a tiny file that declares a huge frame is refused by name.

A 600-byte JPEG can declare 10000 x 10000 pixels (300 MB once decoded, per parallel
decode). The preflight reads the declared size from the header and refuses it: a named skip
in training, a per-file error in predict and evaluate, on every loader. The cap is
Pillow's MAX_IMAGE_PIXELS by default; --max-pixels (a training setting) sets another (0: none).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from fastfood.config import MAX_PIXELS, LoaderConfig
from fastfood.loaders import validate
from support.cli import TINY
from support.cli import run_cli as run_in_process
from support.images import huge_frame_jpeg, huge_frame_png, noise_jpeg, write_images

LOADERS = ["tfdata", pytest.param("dali", marks=pytest.mark.dali)]


def _skip_without_dali(loader: str) -> None:
    if loader == "dali":
        from fastfood.loaders import dali_available

        if not dali_available():
            pytest.skip("DALI TensorFlow plugin not importable")


def write_huge(folder: Path) -> list[Path]:
    """huge.jpg and huge.png in `folder`: tiny files declaring 10000 x 10000 pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "huge.jpg", folder / "huge.png"]
    paths[0].write_bytes(huge_frame_jpeg())
    paths[1].write_bytes(huge_frame_png())
    return paths


# -- the check itself ------------------------------------------------------------------------

def test_default_cap_is_pillows() -> None:
    from PIL import Image

    assert LoaderConfig().max_pixels == MAX_PIXELS == 1024 ** 3 // 4 // 3 \
        == Image.MAX_IMAGE_PIXELS


def test_tiny_files_declaring_a_huge_frame_are_refused(tmp_path: Path) -> None:
    for path in write_huge(tmp_path):
        assert path.stat().st_size < 1000
        reason = validate.check_file(str(path))
        assert reason is not None and "10000x10000" in reason and "pixel cap" in reason, reason
        assert "--max-pixels" in reason  # says how to change it


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_the_cap_is_inclusive(fmt: str, tmp_path: Path) -> None:
    """A frame of exactly `cap` pixels passes; one pixel fewer allowed refuses it."""
    make = huge_frame_jpeg if fmt == "jpeg" else huge_frame_png
    path = tmp_path / f"x.{fmt}"
    path.write_bytes(make(width=100, height=100))
    assert validate.check_file(str(path), pixel_cap=10_000) is None
    assert "pixel cap" in validate.check_file(str(path), pixel_cap=9_999)
    assert validate.check_file(str(path), pixel_cap=0) is None  # 0: no cap


def test_the_setting_sets_the_cap(tmp_path: Path) -> None:
    from fastfood import loaders

    small = tmp_path / "small.jpg"
    small.write_bytes(noise_jpeg(1, size=(8, 8)))  # 64 pixels
    huge = write_huge(tmp_path)
    good, bad = validate.check_files([str(small)], 63)
    assert good == [] and "63-pixel cap" in bad[0][1]
    assert validate.check_files([str(small)], 64) == ([0], [])
    assert validate.check_files([str(p) for p in huge], 0) == ([0, 1], [])
    assert loaders.preflight([str(small)], 63)[0] == ()  # the loaders pass it on
    assert loaders.preflight([str(small)], 64)[0] == (0,)


@pytest.mark.parametrize("value", ["lots", "-5", "1e6"])
def test_a_bad_flag_value_is_one_clear_error(value: str, capsys) -> None:
    code, _, err = run_in_process(["train", "--data", "/does/not/matter", "--max-pixels",
                                   value], capsys)
    assert code == 2 and "--max-pixels" in err.strip().splitlines()[-1], err


# -- every loader, both modes ----------------------------------------------------------------

@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_loaders_skip_and_report_the_huge_files(loader: str, training: bool,
                                                tmp_path: Path) -> None:
    _skip_without_dali(loader)
    from fastfood import loaders

    good = write_images(tmp_path / "good", 8, seed=3)
    huge = write_huge(tmp_path / "bad")
    files = [str(p) for p in [*good[:4], *huge, *good[4:]]]
    report: list[tuple[str, str]] = []
    ds = loaders.build(loader, files, list(range(len(files))), training=training,
                       batch_size=4, image_size=32, report=report)
    assert [p for p, _ in report] == [str(p) for p in huge]
    assert all("pixel cap" in reason for _, reason in report), report
    labels = sorted(int(x) for _, batch in ds for x in batch.numpy())
    assert labels == [0, 1, 2, 3, 6, 7, 8, 9]  # every good file once, the huge ones never


# -- the commands ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fastfood.benchmark.untrained import write_untrained_run

    return write_untrained_run(tmp_path_factory.mktemp("cap") / "run", ["a", "b"],
                               image_size=32, width=0.125)


@pytest.mark.parametrize("loader", ["auto", "tfdata", pytest.param("dali", marks=pytest.mark.dali)])
def test_predict_names_the_huge_files(loader: str, tiny_run: Path, tmp_path: Path,
                                      capsys) -> None:
    """auto with 3 files decodes them one by one (no pipeline): a third path to cover."""
    _skip_without_dali(loader)
    good = write_images(tmp_path, 1, seed=5)
    huge = write_huge(tmp_path)
    argv = ["predict", "--run-dir", str(tiny_run), "--loader", loader, "--json",
            *map(str, [*huge, *good])]
    code, out, err = run_in_process(argv, capsys)
    answers = {Path(a["file"]).name: a for a in map(json.loads, out.splitlines())}
    assert code == 1, err
    assert "top_k" in answers["000.jpg"]
    for path in huge:
        assert "pixel cap" in answers[path.name]["error"], answers


@pytest.mark.parametrize("loader", LOADERS)
def test_training_skips_and_names_the_huge_files(loader: str, tmp_path: Path, capsys,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    _skip_without_dali(loader)
    data = tmp_path / "data"
    for name, seed in (("a", 1), ("b", 2)):
        write_images(data / "train" / name, 8, seed=seed)
        write_images(data / "val" / name, 2, seed=seed + 10)
    write_huge(data / "train" / "b")
    run = tmp_path / "run"
    argv = ["train", "--data", str(data), *TINY, "--loader", loader, "--max-steps", "3",
            "--run-dir", str(run)]
    with caplog.at_level(logging.WARNING, logger="fastfood"):
        code, _, err = run_in_process(argv, capsys)
    assert code == 0, err
    assert json.loads((run / "summary.json").read_text())["step"] == 3
    said = err + caplog.text
    for name in ("huge.jpg", "huge.png"):
        named = [line for line in said.splitlines() if name in line]
        assert named and "pixel cap" in said, (name, said)


def test_predict_follows_the_runs_own_cap(tiny_run: Path, tmp_path: Path, capsys) -> None:
    """The cap a run trained with (config.json) is the one predict applies to its files."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = json.loads((run / "config.json").read_text())
    config["loader"]["max_pixels"] = 63
    (run / "config.json").write_text(json.dumps(config))
    small = tmp_path / "small.jpg"
    small.write_bytes(noise_jpeg(1, size=(8, 8)))  # 64 pixels
    code, out, _ = run_in_process(["predict", "--run-dir", str(run), "--json", str(small)],
                                  capsys)
    assert code == 1 and "63-pixel cap" in json.loads(out)["error"], out
