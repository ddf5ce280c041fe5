"""Damaged checkpoint folders, in this process (fast): what resume, predict and friends do.

test_kill.py covers what kills leave behind (through the CLI). These cover damage a kill
cannot cause but a disk, a sync tool or a person can: a truncated data file in every
folder the run has (ckpt/, best/, final/), a state file (`ckpt/checkpoint`) that is garbage
or empty, and a run trained without a validation split (final/ only, no best/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fastfood.errors import FastfoodError

from support.cli import run_cli
from support.images import write_images
from support.runs import tiny_model_and_optimizer


def _saved_run(run: Path, steps: tuple[int, ...] = (2, 4)):
    """ckpt/ with a checkpoint per step in `steps` (and the run's config/classes files)."""
    from fastfood.config import ModelConfig, RunConfig, TrainConfig
    from fastfood.train.checkpoints import Checkpoints, Position
    from fastfood.rundir import write_start

    model, optimizer = tiny_model_and_optimizer()
    ckpts = Checkpoints(run, model, optimizer, keep=3)
    for step in steps:
        ckpts.save(Position(step=step, epoch=0, batch_in_epoch=step))
    config = RunConfig(model=ModelConfig(num_classes=2, image_size=32, width=0.125,
                                         weights="none", convention="slim"),
                       train=TrainConfig(run_dir=str(run)))
    write_start(run, config, ("a", "b"), ("a", "b"))
    return ckpts


def _truncate(prefix: Path) -> None:
    data = Path(f"{prefix}.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:1000])


def _restore(run: Path):
    from fastfood.train.checkpoints import Checkpoints

    model, optimizer = tiny_model_and_optimizer()
    return Checkpoints(run, model, optimizer, keep=3).restore()


def test_truncated_newest_falls_back_to_the_previous(tmp_path: Path, capsys) -> None:
    _saved_run(tmp_path / "run")
    _truncate(tmp_path / "run" / "ckpt" / "ckpt-4")
    position = _restore(tmp_path / "run")
    assert position is not None and position.step == 2
    assert f"checkpoint {tmp_path / 'run' / 'ckpt' / 'ckpt-4'} is unreadable" in \
        capsys.readouterr().err


def test_every_checkpoint_truncated_is_a_clear_error(tmp_path: Path) -> None:
    _saved_run(tmp_path / "run")
    for step in (2, 4):
        _truncate(tmp_path / "run" / "ckpt" / f"ckpt-{step}")
    with pytest.raises(FastfoodError, match="no readable checkpoint in .*ckpt"):
        _restore(tmp_path / "run")


def test_garbage_state_file_still_resumes_from_the_files(tmp_path: Path) -> None:
    from fastfood.train.checkpoints import has_checkpoint

    run = tmp_path / "run"
    _saved_run(run)
    (run / "ckpt" / "checkpoint").write_text("garbage {{{\n")
    assert has_checkpoint(run)
    position = _restore(run)
    assert position is not None and position.step == 4


def test_empty_state_file_still_resumes_from_the_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _saved_run(run)
    (run / "ckpt" / "checkpoint").write_text("")
    position = _restore(run)
    assert position is not None and position.step == 4


# --- what predict, evaluate and export load -----------------------------------------------------


def _cli_loads_the_run(run: Path, image: Path, capsys) -> tuple[int, str]:
    code, out, err = run_cli(["predict", "--run-dir", str(run), "--json", str(image)],
                                    capsys)
    return code, err


def test_truncated_best_checkpoint(tmp_path: Path, capsys) -> None:
    from fastfood.benchmark.untrained import write_untrained_run

    run = write_untrained_run(tmp_path / "run", ["a", "b"], image_size=32, width=0.125)
    _truncate(next((run / "best").glob("best-*.index")).with_suffix(""))
    image = write_images(tmp_path / "img", 1, seed=1)[0]
    code, err = _cli_loads_the_run(run, image, capsys)
    assert code in (0, 2), err
    if code == 2:
        assert "best" in err and "Traceback" not in err


def _final_only_run(tmp_path: Path) -> Path:
    """A run as the trainer leaves it without a validation split: final/, no best/."""
    import shutil

    run = tmp_path / "run"
    ckpts = _saved_run(run)
    ckpts.save_final()
    shutil.rmtree(run / "ckpt")  # final/ is all there is to load
    return run


def test_predict_loads_a_run_with_final_weights_only(tmp_path: Path, capsys) -> None:
    run = _final_only_run(tmp_path)
    image = write_images(tmp_path / "img", 1, seed=1)[0]
    code, err = _cli_loads_the_run(run, image, capsys)
    assert code == 0, err


def test_load_run_loads_a_run_with_final_weights_only(tmp_path: Path) -> None:
    from fastfood.inference.runs import load_run

    model, info = load_run(_final_only_run(tmp_path))
    assert info.checkpoint == "final"
