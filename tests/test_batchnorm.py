"""VGG19 with batch norm (norm='batch', the default for random init): its layout, the first
step's loss for every variant and width, mixed precision, synchronised BN across replicas,
and a trained BN run through predict and export (inference mode)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fastfood.errors import FastfoodError  # noqa: E402
from fastfood.config import resolve_norm  # noqa: E402
from fastfood.model import norm_of, vgg19  # noqa: E402
from fastfood.model.layout import CONV_NAMES  # noqa: E402


@pytest.fixture(autouse=True)
def _float32_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy(previous)


def sample_batch(sample_dir: Path, size: int, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """n real sample images, two of each of the 8 classes, through the eval loader."""
    import fastfood.data
    import fastfood.loaders

    spec = fastfood.data.load(sample_dir)
    files, labels = spec.train.files[::30][:n], spec.train.labels[::30][:n]
    images, labels = next(iter(fastfood.loaders.build(
        "tfdata", files, labels, training=False, batch_size=n, image_size=size)))
    return np.asarray(images), np.asarray(labels)


# ---- layout -----------------------------------------------------------------------------

def test_bn_after_every_convolution_as_vgg19_bn():
    model = vgg19(5, image_size=32, width=0.125, weights=None, norm="batch")
    assert norm_of(model) == "batch"
    names = [layer.name for layer in model.layers]
    for conv in CONV_NAMES:
        i = names.index(conv)
        assert names[i + 1: i + 3] == [f"{conv}_bn", f"{conv}_relu"], names[i: i + 3]
        assert model.get_layer(conv).bias is None  # BN's beta is the bias
        bn = model.get_layer(f"{conv}_bn")
        assert bn.synchronized and bn.momentum == pytest.approx(0.9)
    assert not any("fc" in n and n.endswith("_bn") for n in names)  # fc6..fc8 stay plain
    plain = vgg19(5, image_size=32, width=0.125, weights=None, norm="none")
    assert norm_of(plain) == "none" and plain.get_layer("conv1_1").bias is not None


def test_auto_is_batch_norm_for_random_init_only():
    assert norm_of(vgg19(3, image_size=32, width=0.125, weights=None)) == "batch"
    assert norm_of(vgg19(3, image_size=32, width=0.125, weights="none")) == "batch"
    assert resolve_norm("auto", "imagenet") == "none"
    assert resolve_norm("auto", "/w/vgg_19.ckpt") == "none"
    assert resolve_norm("batch", "imagenet") == "batch"


@pytest.mark.parametrize("weights", ["imagenet", "/nowhere/vgg_19.ckpt", "/nowhere/w.h5"])
def test_pretrained_weights_into_the_bn_variant_are_refused(weights):
    """Refused before the file is opened or the (slow) model built."""
    with pytest.raises(FastfoodError, match="no batch norm.*--norm auto"):
        vgg19(10, weights=weights, norm="batch")


def test_unknown_norm_is_a_one_line_error():
    with pytest.raises(FastfoodError, match="--norm 'layer'"):
        vgg19(3, image_size=32, width=0.125, weights=None, norm="layer")


# ---- the first step ---------------------------------------------------------------------

def first_steps(images: np.ndarray, labels: np.ndarray, norm: str, width: float, size: int,
                steps: int = 3) -> list[float]:
    """xent of the first `steps` training steps at the recipe's default lr and warm-up."""
    import tensorflow as tf

    from fastfood.config import LoaderConfig, ModelConfig, RunConfig
    from fastfood.train import recipe
    from fastfood.train.schedule import lr_schedule
    from fastfood.train.step import make_optimizer, make_train_step

    config = recipe.resolve(RunConfig(loader=LoaderConfig(batch_size=len(labels)),
                                      model=ModelConfig(weights="none", norm=norm)))
    spe = 10
    keras.utils.set_random_seed(0)
    model = vgg19(8, image_size=size, width=width, weights=None, norm=norm)
    schedule = lr_schedule(config.train.lr, 20 * spe,
                           warmup_steps=round(config.train.warmup_epochs * spe))
    opt = make_optimizer(schedule, 0.9, loss_scale=False)
    opt.build(model.trainable_variables)
    step = make_train_step(model, opt, tf.distribute.get_strategy(),
                           global_batch=len(labels), weight_decay=5e-4)
    batch = (images, labels)
    return [float(step(batch)["xent"]) for _ in range(steps)]


@pytest.mark.parametrize("norm", ["none", "batch"])
@pytest.mark.parametrize("width", [0.125, 0.25, 0.5])
def test_first_step_loss_is_ln_classes(sample_dir, norm, width):
    images, labels = sample_batch(sample_dir, 64)
    losses = first_steps(images, labels, norm, width, 64)
    assert losses[0] == pytest.approx(math.log(8), rel=0.1), losses
    assert all(math.isfinite(x) and x < 1.5 * math.log(8) for x in losses), losses


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_first_step_loss_is_ln_classes_at_full_width_224(sample_dir, norm):
    images, labels = sample_batch(sample_dir, 224, n=8)
    losses = first_steps(images, labels, norm, 1.0, 224, steps=2)
    assert losses[0] == pytest.approx(math.log(8), rel=0.1), losses
    assert all(math.isfinite(x) and x < 1.5 * math.log(8) for x in losses), losses


# ---- mixed precision --------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_bn_trains_in_mixed_precision_and_predicts_in_float32(sample_dir, policy):
    import tensorflow as tf

    from fastfood.train.step import make_optimizer, make_train_step

    images, labels = sample_batch(sample_dir, 32)
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    model = vgg19(8, image_size=32, width=0.125, weights=None, norm="batch")
    bn = model.get_layer("conv2_1_bn")
    assert bn.moving_mean.dtype == "float32" and bn.gamma.dtype == "float32"
    opt = make_optimizer(0.01, 0.9, loss_scale=policy == "mixed_float16")
    opt.build(model.trainable_variables)
    step = make_train_step(model, opt, tf.distribute.get_strategy(), global_batch=16,
                           weight_decay=5e-4)
    before = bn.moving_mean.numpy().copy()
    logs = {k: float(v) for k, v in step((images, labels)).items()}
    assert math.isfinite(logs["loss"]) and logs["xent"] == pytest.approx(math.log(8), rel=0.1)
    assert not np.array_equal(bn.moving_mean.numpy(), before)  # statistics were updated
    logits = model(images, training=False)
    assert logits.dtype == "float32" and np.all(np.isfinite(np.asarray(logits)))


# ---- synchronised across replicas -------------------------------------------------------

SYNC_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from fastfood.model import vgg19
    from fastfood.train import distribute
    from fastfood.train.step import make_optimizer, make_train_step

    GLOBAL = 8
    rng = np.random.default_rng(0)
    # Two halves that differ (the second replica's images are brighter): per-replica
    # statistics would then differ from the global batch's.
    images = rng.integers(0, 128, (GLOBAL, 32, 32, 3)).astype(np.uint8)
    images[GLOBAL // 2:] += 100
    labels = rng.integers(0, 4, GLOBAL).astype(np.int32)

    def dataset_fn(shard, batch, device):
        i, n = shard
        rows = slice(i * batch, (i + 1) * batch)
        return tf.data.Dataset.from_tensors((images[rows], labels[rows])).repeat(2)

    def run(strategy, jit):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = vgg19(4, image_size=32, width=0.125, weights=None, norm="batch", dropout=0.0)
            opt = make_optimizer(0.05, 0.9, loss_scale=False)
            opt.build(model.trainable_variables)
        step = make_train_step(model, opt, strategy, global_batch=GLOBAL, weight_decay=5e-4,
                               jit_compile=jit)
        lay = distribute.layout(strategy)
        it = iter(distribute.distribute(
            strategy, dataset_fn, GLOBAL // lay.num_replicas,
            placement="single" if lay.kind == "default" else "mirrored"))
        logs = [float(step(next(it))["loss"]) for _ in range(2)]
        bn = model.get_layer("conv1_1_bn")
        replicas = [v.numpy().tolist() for v in
                    strategy.experimental_local_results(bn.moving_mean.value)]
        return {"loss": logs, "moving_mean": replicas,
                "logits": np.asarray(model(images, training=False)).tolist()}

    jit = sys.argv[1] == "jit"
    print(json.dumps({"one": run(tf.distribute.get_strategy(), jit),
                      "two": run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), jit)}))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("jit", ["nojit", "jit"])
def test_bn_is_synchronised_two_replicas_train_as_one_device(jit):
    """Two replicas with half the batch each compute the global batch's statistics: the
    same losses, moving averages and (inference-mode) logits as one device."""
    proc = subprocess.run([sys.executable, "-c", SYNC_SCRIPT, jit], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    one, two = out["one"], out["two"]
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-4)
    assert len(two["moving_mean"]) == 2
    for replica in two["moving_mean"]:
        np.testing.assert_allclose(replica, one["moving_mean"][0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(two["logits"], one["logits"], rtol=1e-3, atol=1e-4)


# ---- a trained BN run: predict and export in inference mode -----------------------------

@pytest.mark.slow
def test_trained_bn_run_predicts_in_inference_mode(trained_run, sample_dir):
    """The trained run is the BN net, and what predict answers for an image does not depend
    on the other images in its batch (BN uses its moving averages, not batch statistics)."""
    import fastfood.data
    from fastfood.predict import Predictor
    from fastfood.inference.runs import load_run

    run = trained_run
    model, info = load_run(run)
    assert norm_of(model) == "batch" and info.config.model.norm in ("auto", "batch")
    files = list(fastfood.data.load(sample_dir).val.files[:5])
    predictor = Predictor.load(run)
    alone = [next(iter(predictor.predict_files([f], top_k=3, batch_size=1, loader="tfdata")))
             for f in files]
    together = list(predictor.predict_files(files, top_k=3, batch_size=5, loader="tfdata"))
    assert len(together) == len(files)
    for a, b in zip(alone, together):
        assert [g.index for g in a.top_k] == [g.index for g in b.top_k]
        np.testing.assert_allclose([g.prob for g in a.top_k], [g.prob for g in b.top_k],
                                   rtol=1e-4, atol=1e-6)
