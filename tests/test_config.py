"""fastfood.config: one source for defaults, choices and the rules a value must meet.

The dataclasses check themselves, so a flag, a resumed run's config.json and a library
caller all get the same one-line error naming the flag. No TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from fastfood.config import DataConfig, LoaderConfig, ModelConfig, RunConfig, TrainConfig
from fastfood.errors import FastfoodError
from fastfood.config import CROPS, FILE_KINDS, KINDS, PRECISIONS


@pytest.mark.parametrize("make, flag", [
    (lambda: LoaderConfig(batch_size=0), "--batch-size must be >= 1, got 0"),
    (lambda: LoaderConfig(batch_size=8.0), "--batch-size must be a whole number"),
    (lambda: LoaderConfig(kind="gpu"), "--loader must be one of auto, dali, tfdata, synthetic"),
    (lambda: LoaderConfig(train_crop="centre"), "--crop must be one of auto, inception, square"),
    (lambda: ModelConfig(image_size=16), "--image-size must be >= 32, got 16"),
    (lambda: ModelConfig(width=0), "--width must be in (0, 4]"),
    (lambda: ModelConfig(weights=""), "--weights"),
    (lambda: TrainConfig(epochs=0), "--epochs must be >= 1"),
    (lambda: TrainConfig(lr=float("nan")), "--lr must be > 0, got nan"),
    (lambda: TrainConfig(lr="fast"), "--lr must be > 0"),
    (lambda: TrainConfig(momentum=1.0), "--momentum must be in [0, 1)"),
    (lambda: TrainConfig(weight_decay=-1e-4), "--weight-decay must be >= 0"),
    (lambda: TrainConfig(precision="fp8"),
     "--precision must be one of auto, fp32, mixed, fp16, bf16"),
    (lambda: TrainConfig(xla="yes"), "--xla must be one of auto, on, off"),
    (lambda: TrainConfig(max_steps=-1), "--max-steps must be >= 0"),
    (lambda: TrainConfig(seed=-3), "--seed must be >= 0"),
    (lambda: TrainConfig(keep_checkpoints=0), "train.keep_checkpoints must be >= 1"),
    (lambda: DataConfig(val_fraction=1.0), "--val-fraction must be a number in [0, 1)"),
    (lambda: DataConfig(test_fraction=-0.1), "--test-fraction must be a number in [0, 1)"),
    (lambda: DataConfig(val_fraction=0.5, test_fraction=0.5),
     "--val-fraction plus --test-fraction must be below 1"),
    (lambda: DataConfig(val_from="val"), "data.val_from must be one of train, test"),
])
def test_a_bad_value_is_refused_naming_its_flag(make, flag: str) -> None:
    with pytest.raises(FastfoodError) as err:
        make()
    assert str(err.value).startswith(flag), str(err.value)
    assert "\n" not in str(err.value)


def test_defaults_are_valid_and_round_trip_through_json(tmp_path: Path) -> None:
    config = RunConfig(model=ModelConfig(num_classes=3, image_size=64, width=0.25))
    config.save(tmp_path / "config.json")
    assert RunConfig.load(tmp_path / "config.json") == config
    assert "image_size" not in config.to_dict()["loader"]  # stored once, in the model


def test_an_old_run_config_with_loader_image_size_still_loads(tmp_path: Path) -> None:
    old = RunConfig(model=ModelConfig(image_size=64)).to_dict()
    old["loader"]["image_size"] = 64
    (tmp_path / "config.json").write_text(json.dumps(old))
    loaded = RunConfig.load(tmp_path / "config.json")
    assert loaded.model.image_size == 64 and not hasattr(loaded.loader, "image_size")


def test_an_old_run_config_without_the_test_split_validates_on_test_txt(tmp_path: Path
                                                                        ) -> None:
    """Runs saved before the test split trained on all of Food-101's train.txt and validated
    on test.txt: their config.json has no val_from and reads back with the old meaning."""
    old = RunConfig().to_dict()
    del old["data"]["val_from"], old["data"]["test_fraction"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    loaded = RunConfig.load(tmp_path / "config.json")
    assert loaded.data.val_from == "test" and loaded.data.test_fraction == 0.0
    assert RunConfig().data.val_from == "train"
    assert RunConfig.from_dict(RunConfig().to_dict()) == RunConfig()


def test_a_resumed_config_json_is_checked_too(tmp_path: Path) -> None:
    from fastfood.rundir import read_config

    bad = RunConfig().to_dict()
    bad["loader"]["batch_size"] = 0
    (tmp_path / "config.json").write_text(json.dumps(bad))
    with pytest.raises(FastfoodError, match=r"config\.json: .*--batch-size must be >= 1"):
        read_config(tmp_path)


def _options(command: click.Command) -> dict[str, click.Option]:
    return {p.name: p for p in command.params if isinstance(p, click.Option)}


def test_train_flags_take_defaults_and_choices_from_the_config() -> None:
    from fastfood.cli.options import OPTIONS
    from fastfood.cli.train import train

    options, defaults = _options(train), RunConfig()
    assert set(OPTIONS) <= set(options)
    for name, (section, field) in OPTIONS.items():
        if options[name].default is not None:  # --data, --run-dir, --xla: None means unset
            assert options[name].default == getattr(getattr(defaults, section), field), name
    assert tuple(options["loader"].type.choices) == KINDS
    assert tuple(options["crop"].type.choices) == ("auto", *CROPS)  # auto: by the recipe
    assert tuple(options["precision"].type.choices) == PRECISIONS


def test_predict_and_evaluate_offer_the_loaders_that_read_files() -> None:
    from fastfood.cli.evaluate import evaluate
    from fastfood.cli.predict import predict

    for command in (predict, evaluate):
        assert tuple(_options(command)["loader"].type.choices) == FILE_KINDS
    assert set(FILE_KINDS) < set(KINDS)
