"""Training never reads the test split: every file list handed to a loader during a run
(training batches and validation passes) is checked against the spec's test files."""

from __future__ import annotations

import io
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["food101", "folders"])
def test_training_and_validation_never_read_the_test_split(make_food101, make_folders,
                                                           tmp_path, monkeypatch, layout):
    from fastfood import data, loaders
    from fastfood.config import DataConfig, LoaderConfig, ModelConfig, RunConfig, TrainConfig
    from fastfood.train import train_and_evaluate

    if layout == "food101":
        root = make_food101({"a": (10, 3), "b": (10, 3)})
        data_cfg = DataConfig(root=str(root), val_fraction=0.2)
    else:
        root = make_folders({"a": 14, "b": 14})
        # make_folders writes one colour per class: identical files, one duplicate cluster
        data_cfg = DataConfig(root=str(root), val_fraction=0.2, test_fraction=0.2,
                              group_duplicates=False)
    spec = data.load_config(data_cfg)
    assert len(spec.test) >= 2 and len(spec.val) >= 2

    seen: list[tuple[bool, tuple[str, ...]]] = []
    real = loaders.build_request

    def recording(request, files, labels, **kw):
        seen.append((request.training, tuple(files)))
        return real(request, files, labels, **kw)

    monkeypatch.setattr(loaders, "build_request", recording)
    config = RunConfig(
        data=data_cfg, loader=LoaderConfig(kind="tfdata", batch_size=4),
        model=ModelConfig(width=0.125, image_size=32, weights="none"),
        train=TrainConfig(epochs=1, lr=0.01, precision="fp32", xla="off", val_every=2,
                          run_dir=str(tmp_path / "run")))
    summary = train_and_evaluate(config, fancy=False, stream=io.StringIO())
    assert summary["exit_code"] == 0 and summary["val"]["count"] == len(spec.val)

    trained = {f for training, files in seen if training for f in files}
    validated = [files for training, files in seen if not training]
    assert trained == set(spec.train.files)
    assert validated and all(set(files) == set(spec.val.files) for files in validated)
    assert not (trained | set().union(*validated)) & set(spec.test.files)


@pytest.mark.parametrize("layout", ["food101", "folders"])
def test_rerunning_a_run_saved_before_the_test_split(make_food101, make_folders, tmp_path,
                                                     layout):
    """The same command again on such a run: refused for Food-101 (its val and train files
    would change; --resume keeps them), continued for class folders (nothing changes)."""
    import json

    from fastfood.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from fastfood.errors import FastfoodError
    from fastfood import rundir
    from fastfood.train.resume import resolve

    root = make_food101({"a": (10, 2), "b": (10, 2)}) if layout == "food101" \
        else make_folders({"a": 10, "b": 10})
    run = tmp_path / "run"
    config = RunConfig(data=DataConfig(root=str(root)),
                       model=ModelConfig(weights="none", width=0.125, image_size=32),
                       train=TrainConfig(run_dir=str(run)))
    resolved = resolve(config, False, None)[0]
    old = resolved.to_dict()
    del old["data"]["val_from"], old["data"]["test_fraction"]
    run.mkdir()
    (run / "config.json").write_text(json.dumps(old))
    if layout == "folders":
        assert resolve(config, False, None)[2] == run
        return
    with pytest.raises(FastfoodError, match=r"data\.val_from 'test' -> 'train'.*--resume"):
        resolve(config, False, None)
    base = rundir.read_config(run)
    _, spec, _, _ = resolve(base, True, None)
    assert spec.val == spec.test and len(spec.train) == 20  # as it was trained
