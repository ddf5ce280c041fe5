"""Two replicas (two logical CPUs) compute the same training as one device.

Three ways of feeding the two replicas are compared with one device: host pipelines
copied to the replicas, pipelines placed on their replica's device (the path DALI takes
on GPUs under MirroredStrategy), and per-replica pipelines built by hand (the path a
multi-worker cluster with several GPUs a worker takes). Evaluation over fixed-size,
padded batches (DALI's) gives the same totals, also when a replica's shard is empty.

Logical devices must be configured before TensorFlow initialises, so the comparison runs
in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from fastfood.train import distribute
    from fastfood.train.schedule import polynomial_decay
    from fastfood.train.step import evaluate, make_eval_step, make_optimizer, make_train_step

    GLOBAL = 16
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (GLOBAL, 8, 8, 3)).astype(np.uint8)
    labels = rng.integers(0, 5, GLOBAL).astype(np.int32)

    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Rescaling(1 / 255.0)(inputs)
        x = keras.layers.Conv2D(4, 3)(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(5, name="fc8")(x)
        return keras.Model(inputs, keras.layers.Activation("linear", dtype="float32")(x))

    def l2(model):
        return 1e-3 * tf.add_n([tf.reduce_sum(tf.square(v)) for v in model.trainable_variables
                                if "kernel" in v.path]) / 2

    from fastfood.loaders.order import padded_eval_indices

    def dist(strategy, fn, global_batch, on_device=False, local_pipelines=False):
        # As a run's plan places the input (fastfood.train.setup.plan).
        lay = distribute.layout(strategy)
        placement = "replicas" if local_pipelines else \
            {"default": "single", "mirrored": "mirrored"}[lay.kind]
        return distribute.distribute(strategy, fn, global_batch // lay.num_replicas,
                                     placement=placement, on_device=on_device)

    placed_on = []

    def dataset_fn(shard, batch, device):
        i, n = shard
        assert batch == GLOBAL // n, (batch, n)
        placed_on.append(tf.zeros([]).device)
        rows = slice(i * batch, (i + 1) * batch)
        return tf.data.Dataset.from_tensors((images[rows], labels[rows])).repeat(4)

    def eval_fn(shard, batch, device):
        # Every example once, in shards of unequal length (10 and 6 rows: 3 and 2 batches).
        i, n = shard
        rows = [slice(0, GLOBAL), slice(0, 10), slice(10, GLOBAL)][i + n - 1]
        return tf.data.Dataset.from_tensor_slices((images[rows], labels[rows])).batch(4)

    def padded_fn(count):
        # As DALI reads for eval: fixed batches, every shard padded to the largest one's
        # batch count with label -1 (an empty shard is all padding).
        def fn(shard, batch, device):
            idx, valid = padded_eval_indices(count, batch, shard)
            lab = np.where(valid, labels[idx], -1).astype(np.int32)
            return tf.data.Dataset.from_tensor_slices((images[idx], lab)).batch(batch)
        return fn

    def run(strategy, loss_scale=False, **placement):
        with strategy.scope():
            model = build()
            opt = make_optimizer(polynomial_decay(0.1, 10, 1e-4), 0.9, loss_scale=loss_scale)
            opt.build(model.trainable_variables)
        step = make_train_step(model, opt, strategy, global_batch=GLOBAL, weight_decay=1e-3,
                               l2_fn=l2)
        del placed_on[:]
        it = iter(dist(strategy, dataset_fn, GLOBAL, **placement))
        logs = [{k: float(v) for k, v in step(next(it)).items()} for _ in range(4)]
        eval_step = make_eval_step(model, strategy, num_classes=5)
        ev = None
        if not placement.get("local_pipelines"):
            ev = evaluate(eval_step, dist(strategy, eval_fn, GLOBAL))
        padded = {}
        for count in (GLOBAL, 1):
            data = dist(strategy, padded_fn(count), 8, **placement)
            steps = -(-(count if distribute.layout(strategy).kind == "default"
                        else -(-count // 2)) // 4)
            padded[count] = evaluate(eval_step, iter(data), steps)
        return {"logs": logs, "eval": ev, "padded": padded,
                "layout": distribute.layout(strategy).kind, "placed_on": list(placed_on),
                "kernel": model.layers[-2].kernel.numpy().ravel()[:8].tolist()}

    from fastfood.train.step import agree_on_overflow

    def overflow_seen(strategy, bad_replica):
        @tf.function
        def fn():
            rid = tf.distribute.get_replica_context().replica_id_in_sync_group
            bad = tf.where(rid == bad_replica, np.inf, 1.0)
            grads = agree_on_overflow([tf.ones([3, 3]), bad * tf.ones([2]), tf.ones([4])])
            return tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        return [bool(v) for v in strategy.experimental_local_results(strategy.run(fn))]

    one = run(distribute.make_strategy())
    two_strategy = distribute.make_strategy(devices=["/cpu:0", "/cpu:1"])
    two = run(two_strategy)
    placed = run(two_strategy, on_device=True)
    local = run(two_strategy, local_pipelines=True)
    keras.mixed_precision.set_global_policy("mixed_float16")
    fp16 = run(two_strategy, loss_scale=True)
    keras.mixed_precision.set_global_policy("float32")
    overflow = {"none": overflow_seen(two_strategy, -1), "replica1": overflow_seen(two_strategy, 1)}
    print("RESULT " + json.dumps({"one": one, "two": two, "placed": placed, "local": local,
                                  "fp16": fp16, "overflow": overflow}))
    """
)


@pytest.mark.slow
def test_two_replicas_match_one_device():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    one = result["one"]
    assert one["layout"] == "default"
    assert one["logs"][-1]["loss"] < one["logs"][0]["loss"]
    for name in ("two", "placed", "local"):
        two = result[name]
        assert two["layout"] == "mirrored"
        for a, b in zip(one["logs"], two["logs"]):
            for key in ("loss", "xent", "l2", "top1", "lr"):
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (name, key, a, b)
        assert two["kernel"] == pytest.approx(one["kernel"], rel=1e-4, abs=1e-6), name
        for count in ("16", "1"):
            got, want = two["padded"][count], one["padded"][count]
            assert got["count"] == want["count"] == int(count), (name, count, got)
            for key in ("loss", "top1", "top5"):
                assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), (name, key)
    two = result["two"]
    assert two["eval"]["count"] == one["eval"]["count"] == 16
    for key in ("loss", "top1", "top5"):
        assert two["eval"][key] == pytest.approx(one["eval"][key], rel=1e-4, abs=1e-6)
    # Padded fixed-size eval batches give the same totals as plain ones.
    for key in ("loss", "top1", "top5", "count"):
        assert one["padded"]["16"][key] == pytest.approx(one["eval"][key], rel=1e-6)
    # The placed path made each replica's pipeline under that replica's device.
    assert sorted(d.rsplit("/", 1)[-1].lower() for d in result["placed"]["placed_on"]) == \
        ["device:cpu:0", "device:cpu:1"], result["placed"]["placed_on"]
    # fp16 with loss scaling on two replicas: same losses to fp16 accuracy.
    fp16 = result["fp16"]
    assert all("loss_scale" in log for log in fp16["logs"])
    for a, b in zip(one["logs"], fp16["logs"]):
        assert b["loss"] == pytest.approx(a["loss"], rel=2e-2)
    # An overflow on replica 1 alone makes every replica skip the step.
    assert result["overflow"] == {"none": [True, True], "replica1": [False, False]}
