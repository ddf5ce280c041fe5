"""The class-folder split with duplicates grouped: clusters stay on one side, a dataset
without duplicates splits exactly as before, and old runs keep their old split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from support.images import write_images


def _tree(root: Path, per_class: int = 20) -> Path:
    for seed, name in enumerate(("a", "b")):
        write_images(root / name, per_class, seed=seed)
    return root


def test_without_duplicates_the_split_is_unchanged(tmp_path: Path) -> None:
    from fastfood.data import load

    root = _tree(tmp_path / "data")
    for fraction, seed in ((0.1, 0), (0.3, 7), (0.5, 2)):
        plain = load(root, fraction, seed, group_duplicates=False)
        grouped = load(root, fraction, seed, group_duplicates=True)
        assert plain == grouped


def test_duplicate_clusters_stay_on_one_side(tmp_path: Path) -> None:
    from fastfood.data import load

    root = _tree(tmp_path / "data")
    clusters = []
    for name in ("a", "b"):
        for i in range(0, 12, 3):  # 4 clusters per class: an exact copy and a resized one
            src = root / name / f"{i:03d}.jpg"
            shutil.copyfile(src, root / name / f"{i:03d}_copy.jpg")
            with Image.open(src) as im:
                im.resize((im.width * 3 // 2, im.height * 3 // 2)).save(
                    root / name / f"{i:03d}_big.jpg", quality=85)
            clusters.append({str(root / name / f"{i:03d}{s}.jpg") for s in ("", "_copy", "_big")})
    plain = load(root, 0.4, 0, group_duplicates=False)
    grouped = load(root, 0.4, 0, group_duplicates=True)
    val_plain, val = set(plain.val.files), set(grouped.val.files)
    straddling = [c for c in clusters if 0 < len(c & val_plain) < len(c)]
    assert straddling, "the plain split should cut some cluster (else this test shows nothing)"
    for c in clusters:
        assert len(c & val) in (0, len(c)), c
    # the val count per class is still round(0.4 * 28) = 11 where the clusters allow it
    assert len(grouped.val) == len(plain.val) == 22
    assert set(grouped.train.files) | val == set(plain.train.files) | val_plain


def test_old_runs_keep_their_split_new_runs_group(tmp_path: Path) -> None:
    from fastfood.config import DataConfig, RunConfig

    assert DataConfig().group_duplicates is True
    old = RunConfig().to_dict()
    del old["data"]["group_duplicates"]  # a config.json written before the setting existed
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    assert RunConfig.load(path).data.group_duplicates is False
    assert RunConfig.from_dict({}).data.group_duplicates is True  # nothing said: the default


def test_the_flag_reaches_the_config(tmp_path: Path) -> None:
    from fastfood.cli.options import OPTIONS, build_config

    assert OPTIONS["group_duplicates"] == ("data", "group_duplicates")
    built = build_config({"group_duplicates": False}, {"group_duplicates"})
    assert built.data.group_duplicates is False


@pytest.mark.parametrize("grouped", [False, True])
def test_evaluate_reads_the_split_the_run_trained_with(tmp_path: Path, grouped: bool) -> None:
    """split_files draws val with the run's own group_duplicates, whatever the default."""
    import dataclasses

    from fastfood.config import DataConfig, RunConfig
    from fastfood.data import load
    from fastfood.evaluate import split_files
    from fastfood.rundir import RunInfo

    root = _tree(tmp_path / "data")
    for i in range(0, 20, 2):
        shutil.copyfile(root / "a" / f"{i:03d}.jpg", root / "a" / f"{i:03d}_dup.jpg")
    config = RunConfig(data=DataConfig(root=str(root), val_fraction=0.3,
                                       group_duplicates=grouped))
    info = RunInfo(tmp_path, config, ("a", "b"), ("a", "b"), "slim")
    _, files, _ = split_files(info, None, "val")
    assert files == load(root, 0.3, 0, group_duplicates=grouped).val.files
    other = load(root, 0.3, 0, group_duplicates=not grouped).val.files
    assert files != other  # the two rules differ on this data
    assert dataclasses.replace(config.data).group_duplicates is grouped
