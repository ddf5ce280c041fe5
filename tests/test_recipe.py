"""The training recipe: defaults by --weights and batch, the warm-up schedule, label
smoothing, the head's learning-rate multiplier, and their flags."""

from __future__ import annotations

import dataclasses
import json
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastfood.cli import main  # noqa: E402
from fastfood.cli.options import OPTIONS, build_config  # noqa: E402
from fastfood.config import LoaderConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from fastfood.train import recipe  # noqa: E402


def _config(weights: str, batch: int = 64, **train) -> RunConfig:
    return RunConfig(loader=LoaderConfig(batch_size=batch), model=ModelConfig(weights=weights),
                     train=TrainConfig(**train))


# ---- defaults by weights and batch ------------------------------------------------------

def test_from_scratch_gets_batch_norm_warm_up_higher_lr_and_the_mild_crop():
    r = recipe.resolve(_config("none"))
    assert r.model.norm == "batch" and r.loader.train_crop == "square"
    assert r.train.lr == pytest.approx(recipe.SCRATCH_LR)
    assert r.train.warmup_epochs == recipe.SCRATCH_WARMUP_EPOCHS > 0


@pytest.mark.parametrize("weights", ["imagenet", "/some/vgg_19.ckpt", "w.h5"])
def test_fine_tuning_keeps_the_seed_recipe(weights):
    r = recipe.resolve(_config(weights))
    assert r.model.norm == "none" and r.loader.train_crop == "inception"
    assert r.train.lr == pytest.approx(1e-3) and r.train.warmup_epochs == 0
    assert r.train.schedule == "linear" and r.train.end_lr_factor == pytest.approx(1e-4)
    assert r.train.momentum == pytest.approx(0.9)


@pytest.mark.parametrize("weights, base", [("none", recipe.SCRATCH_LR), ("imagenet", 1e-3)])
@pytest.mark.parametrize("batch", [16, 64, 256])
def test_lr_scales_linearly_with_the_batch(weights, base, batch):
    assert recipe.resolve(_config(weights, batch)).train.lr == pytest.approx(base * batch / 64)


def test_plain_net_from_scratch_gets_its_own_lower_lr():
    config = dataclasses.replace(_config("none"), model=ModelConfig(weights="none", norm="none"))
    assert recipe.resolve(config).train.lr == pytest.approx(recipe.SCRATCH_PLAIN_LR)


def test_explicit_settings_win_and_resolving_twice_changes_nothing():
    config = RunConfig(loader=LoaderConfig(train_crop="inception"),
                       model=ModelConfig(weights="none", norm="none"),
                       train=TrainConfig(lr=0.2, warmup_epochs=0.5))
    once = recipe.resolve(config)
    assert (once.model.norm, once.loader.train_crop, once.train.lr, once.train.warmup_epochs) \
        == ("none", "inception", 0.2, 0.5)
    assert recipe.resolve(once) == once
    assert recipe.resolve(recipe.resolve(_config("none"))) == recipe.resolve(_config("none"))
    assert "norm batch" in recipe.describe(recipe.resolve(_config("none")))


def test_checkpoints_by_step_count_on_cpus_by_time_only_on_gpus():
    assert recipe.resolve(_config("none"), gpus=False).train.save_every == 500
    assert recipe.resolve(_config("none"), gpus=True).train.save_every == 0
    assert recipe.resolve(_config("none", save_every=200), gpus=True).train.save_every == 200
    here = recipe.resolve(_config("none")).train.save_every  # this machine: no GPU
    assert here == 500
    assert TrainConfig().save_every is None and TrainConfig().save_every_s == 300
    with pytest.raises(Exception, match="--save-every"):
        TrainConfig(save_every=-1)


def test_runs_saved_before_batch_norm_rebuild_as_the_plain_net(tmp_path):
    """A config.json without "norm" is a plain-net run; a new config defaults to auto."""
    old = RunConfig(model=ModelConfig(weights="none")).to_dict()
    del old["model"]["norm"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    assert RunConfig.load(path).model.norm == "none"
    assert RunConfig.from_dict({}).model.norm == "auto"


# ---- the schedule -----------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["linear", "cosine"])
@pytest.mark.parametrize("warmup", [0, 10])
def test_schedule_matches_its_python_twin(shape, warmup):
    from fastfood.train.schedule import lr_at, lr_schedule

    sched = lr_schedule(0.1, 100, warmup_steps=warmup, end_factor=1e-3, shape=shape)
    for step in (0, 1, 5, 9, 10, 11, 50, 99, 100, 150):
        want = lr_at(step, 0.1, 100, 1e-3, warmup_steps=warmup, shape=shape)
        assert float(sched(step)) == pytest.approx(want, rel=1e-5, abs=1e-7), step


def test_warm_up_rises_to_lr_then_decays_to_the_end():
    from fastfood.train.schedule import lr_at

    curve = [lr_at(s, 0.1, 100, 1e-4, warmup_steps=10, shape="cosine") for s in range(101)]
    assert curve[0] == pytest.approx(0.01)  # step 0 already learns
    assert np.all(np.diff(curve[:10]) > 0) and curve[9] == pytest.approx(0.1)
    assert curve[10] == pytest.approx(0.1)  # the decay starts where the warm-up ends
    assert np.all(np.diff(curve[10:]) <= 0) and curve[100] == pytest.approx(1e-5)
    # Without warm-up and linear: the seed's polynomial decay.
    assert lr_at(50, 0.1, 100, 1e-4) == pytest.approx((0.1 - 1e-5) * 0.5 + 1e-5)


def test_schedule_without_warm_up_is_the_seeds_polynomial_decay():
    from fastfood.train.schedule import lr_schedule, polynomial_decay

    a, b = lr_schedule(0.05, 40, end_factor=1e-4), polynomial_decay(0.05, 40, 1e-4)
    for step in (0, 7, 39, 40, 41):
        assert float(a(step)) == pytest.approx(float(b(step)), rel=1e-5)


# ---- the loss and the optimizer ---------------------------------------------------------

@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_label_smoothing_matches_keras_crossentropy(smoothing):
    import keras

    from fastfood.train.step import cross_entropy

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (6, 5)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 4, 0], np.int32)
    ours = np.asarray(cross_entropy(labels, logits, smoothing))
    ref = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=smoothing, reduction=None)(np.eye(5)[labels], logits)
    np.testing.assert_allclose(ours, np.asarray(ref), rtol=1e-5)
    assert ours.dtype == np.float32


def test_uniform_logits_give_ln_classes_with_or_without_smoothing():
    from fastfood.train.step import cross_entropy

    for s in (0.0, 0.1):
        loss = cross_entropy(np.array([3], np.int32), np.zeros((1, 8), np.float16), s)
        assert float(loss[0]) == pytest.approx(math.log(8), rel=1e-3)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_head_lr_mult_scales_only_the_head_update(momentum):
    import keras

    from fastfood.model import head_variables
    from fastfood.train.step import make_optimizer

    def updates(mult: float) -> dict[str, np.ndarray]:
        keras.utils.set_random_seed(0)
        inputs = keras.Input((4,))
        x = keras.layers.Dense(3, name="fc7")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2, name="fc8")(x))
        opt = make_optimizer(0.1, momentum, loss_scale=False,
                             head_variables=head_variables(model), head_lr_mult=mult)
        opt.build(model.trainable_variables)
        before = [v.numpy().copy() for v in model.trainable_variables]
        grads = [np.ones(v.shape, np.float32) for v in model.trainable_variables]
        for _ in range(2):  # the second step goes through the momentum slot
            opt.apply(grads, model.trainable_variables)
        return {v.path: v.numpy() - b for v, b in zip(model.trainable_variables, before)}

    plain, scaled = updates(1.0), updates(10.0)
    for path, delta in plain.items():
        factor = 10.0 if path.startswith("fc8/") else 1.0
        np.testing.assert_allclose(scaled[path], factor * delta, rtol=1e-5, err_msg=path)


# ---- the flags --------------------------------------------------------------------------

def test_new_flags_reach_the_config():
    defaults = RunConfig()
    params = {name: getattr(getattr(defaults, s), f) for name, (s, f) in OPTIONS.items()}
    params.update(data=None, loader="auto", weights="none", norm="none", epochs=3,
                  batch_size=16, image_size=32, width=0.125, lr=None, warmup_epochs=1.5,
                  schedule="cosine", label_smoothing=0.1, head_lr_mult=10.0, momentum=0.9,
                  weight_decay=5e-4, freeze_epochs=0, crop="auto", precision="fp32",
                  xla=None, val_every=0, save_every=500, run_dir=None, max_steps=0, seed=0,
                  val_fraction=0.1, test_fraction=0.0, split_seed=0, dropout=0.5,
                  strict=False)
    config = build_config(params, set(params))
    assert config.model.norm == "none" and config.loader.train_crop == "auto"
    assert config.train.lr is None and config.train.warmup_epochs == 1.5
    assert (config.train.schedule, config.train.label_smoothing, config.train.head_lr_mult) \
        == ("cosine", 0.1, 10.0)


@pytest.mark.parametrize("flag, value", [
    ("--label-smoothing", "1"), ("--label-smoothing", "-0.1"), ("--head-lr-mult", "0"),
    ("--warmup-epochs", "-1"), ("--lr", "0"),
])
def test_bad_recipe_flags_exit_2_naming_the_flag(flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "/does/not/matter", flag, value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and flag in err


def test_the_recipe_line_names_the_augmentation_and_exif():
    plain = recipe.describe(recipe.resolve(_config("none")))
    assert "augment" not in plain and "EXIF orientation on" in plain
    config = RunConfig(loader=LoaderConfig(augment="trivial", random_erasing=0.25, exif="off"),
                       model=ModelConfig(weights="none"))
    line = recipe.describe(recipe.resolve(config))
    assert "augment trivial" in line and "random erasing 0.25" in line
    assert "EXIF orientation off" in line
