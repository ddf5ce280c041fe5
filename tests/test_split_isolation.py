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
        data_cfg = DataConfig(root=str(root), val_fraction=0.2, test_fraction=0.2)
    spec = data.from_config(data_cfg)
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
