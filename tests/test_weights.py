"""Weight import: TF-slim checkpoints, Keras HDF5 (legacy and Keras 3), 'imagenet', errors.

The two full-width files (550 MB each) are written once per module from the same random
He-initialised arrays; the numeric checks compare against computations that share no code
with fastfood: plain tf.nn ops for slim, keras.applications.VGG19 for Keras.
"""

from __future__ import annotations

import logging
import os
import socket

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from fastfood.errors import FastfoodError  # noqa: E402
from fastfood.model import convention_of, vgg19  # noqa: E402
from fastfood.model.keras_weights import open_h5  # noqa: E402
from fastfood.model.imagenet import FNAME  # noqa: E402

BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))
CONVS = [f"conv{b}_{i}" for b, (_, n) in enumerate(BLOCKS, 1) for i in range(1, n + 1)]
KEYS = [f"{layer}/{kind}" for layer in CONVS + ["fc6", "fc7", "fc8"] for kind in ("kernel", "bias")]
SLIM_MEANS = np.array([123.68, 116.78, 103.94], np.float32)


# ---------------------------------------------------------------- independent references


def slim_name(key: str) -> str:
    layer, kind = key.split("/")
    leaf = {"kernel": "weights", "bias": "biases"}[kind]
    group = f"conv{layer[4]}/{layer}" if layer.startswith("conv") else layer
    return f"vgg_19/{group}/{leaf}"


def keras_name(layer: str) -> str:
    if layer.startswith("conv"):
        return f"block{layer[4]}_conv{layer[6]}"
    return {"fc6": "fc1", "fc7": "fc2", "fc8": "predictions"}[layer]


def reference_forward(arrays: dict[str, np.ndarray], rgb: np.ndarray) -> np.ndarray:
    """TF-slim's vgg_19 (global_pool=True, spatial_squeeze) in plain tf.nn ops, float32."""
    x = tf.constant(rgb, tf.float32) - SLIM_MEANS
    for block, (_, n) in enumerate(BLOCKS, 1):
        for i in range(1, n + 1):
            w, b = arrays[f"conv{block}_{i}/kernel"], arrays[f"conv{block}_{i}/bias"]
            x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "SAME"), b))
        x = tf.nn.max_pool2d(x, 2, 2, "VALID")
    fc6 = tf.nn.conv2d(x, arrays["fc6/kernel"], 1, "VALID")
    x = tf.nn.relu(tf.nn.bias_add(fc6, arrays["fc6/bias"]))
    fc7 = arrays["fc7/kernel"].reshape((1, 1) + arrays["fc7/kernel"].shape)
    x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, fc7, 1, "VALID"), arrays["fc7/bias"]))
    x = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    fc8 = arrays["fc8/kernel"].reshape((1, 1) + arrays["fc8/kernel"].shape)
    x = tf.nn.bias_add(tf.nn.conv2d(x, fc8, 1, "VALID"), arrays["fc8/bias"])
    return tf.squeeze(x, [1, 2]).numpy()


def max_relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def model_arrays(model) -> dict[str, np.ndarray]:
    return {k: getattr(model.get_layer(k.split("/")[0]), k.split("/")[1]).numpy() for k in KEYS}


# ---------------------------------------------------------------- file writers


def he_arrays(seed: int = 0, classes: int = 1000) -> dict[str, np.ndarray]:
    """Full-width VGG19 arrays in fastfood's layout; He init keeps the logits finite."""
    rng = np.random.default_rng(seed)
    shapes = {}
    cin = 3
    for layer, (cout, _) in zip(CONVS, [(c, n) for c, n in BLOCKS for _ in range(n)]):
        shapes[layer] = (3, 3, cin, cout)
        cin = cout
    shapes.update(fc6=(7, 7, 512, 4096), fc7=(4096, 4096), fc8=(4096, classes))
    arrays = {}
    for layer, shape in shapes.items():
        fan_in = int(np.prod(shape[:-1]))
        w = rng.standard_normal(shape, dtype=np.float32)
        w *= np.float32(np.sqrt(2.0 / fan_in))
        arrays[f"{layer}/kernel"] = w
        arrays[f"{layer}/bias"] = rng.uniform(-0.1, 0.1, shape[-1]).astype(np.float32)
    return arrays


def write_slim_v1(path: str, arrays: dict[str, np.ndarray]) -> None:
    """A single-file V1 checkpoint like the model zoo's vgg_19.ckpt, slim names and shapes."""
    names, data = [], []
    for key in KEYS:
        value = arrays[key]
        if key in ("fc7/kernel", "fc8/kernel"):
            value = value.reshape((1, 1) + value.shape)
        names.append(slim_name(key))
        data.append(tf.constant(value))
    names.append("global_step")  # zoo files carry extras; they must be ignored
    data.append(tf.constant(0, tf.int64))
    tf.raw_ops.Save(filename=path, tensor_names=names, data=data)


def write_slim_v2(prefix: str, named: dict[str, np.ndarray]) -> None:
    """A V2 checkpoint (prefix.index + data) with exactly these variable names."""
    names = list(named)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(named[n]) for n in names],
    )


def keras_layout(arrays: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """fastfood arrays -> {Keras layer: [kernel, bias]} (fc1 as the flat Dense)."""
    out = {}
    for layer in CONVS + ["fc6", "fc7", "fc8"]:
        kernel = arrays[f"{layer}/kernel"]
        if layer == "fc6":
            kernel = kernel.reshape(-1, kernel.shape[-1])
        out[keras_name(layer)] = [kernel, arrays[f"{layer}/bias"]]
    return out


def write_keras_legacy(
    path, layers: dict[str, list[np.ndarray]], style: str = "old", nest: bool = False
) -> None:
    """Keras 2 HDF5 weights as keras.applications ships them (style 'old') or newer
    ('new': block1_conv1/kernel:0), optionally nested in model_weights like model.save()."""
    with h5py.File(path, "w") as handle:
        root = handle.create_group("model_weights") if nest else handle
        names = ["input_1"] + list(layers) + ["flatten"]
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.1.5"
        for name in names:
            group = root.create_group(name)
            values = layers.get(name, [])
            if style == "old":
                weight_names = [f"{name}_{t}_1:0" for t in "Wb"][: len(values)]
            else:
                weight_names = [f"{name}/{t}:0" for t in ("kernel", "bias")][: len(values)]
            group.attrs["weight_names"] = np.array([w.encode() for w in weight_names], dtype="S")
            for weight_name, value in zip(weight_names, values):
                group.create_dataset(weight_name, data=value)


# ---------------------------------------------------------------- full-width files


@pytest.fixture(scope="module")
def arrays():
    return he_arrays()


@pytest.fixture(scope="module")
def slim_ckpt(arrays, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("slim") / "vgg_19.ckpt")
    write_slim_v1(path, arrays)
    return path


@pytest.fixture(scope="module")
def keras_h5(arrays, tmp_path_factory):
    path = tmp_path_factory.mktemp("keras") / "vgg19_weights_tf_dim_ordering_tf_kernels.h5"
    write_keras_legacy(path, keras_layout(arrays), style="old")
    return str(path)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(7).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)


@pytest.mark.slow
def test_slim_checkpoint_reproduces_tf_nn_forward(slim_ckpt, arrays, image, caplog):
    with caplog.at_level(logging.INFO, logger="fastfood"):
        model = vgg19(1000, weights=slim_ckpt)
    summary = "loaded 38 arrays (conv1_1..fc8) from vgg_19.ckpt"
    assert model.fastfood_load_summary == summary
    assert summary in caplog.text
    assert convention_of(model) == "slim"
    got = model(image).numpy()
    want = reference_forward(arrays, image.astype(np.float32))
    assert np.std(want) > 1e-3 and np.all(np.isfinite(want))
    assert max_relative_error(got, want) <= 1e-3


@pytest.mark.slow
def test_keras_h5_matches_keras_applications(keras_h5, arrays, image):
    model = vgg19(1000, weights=keras_h5)
    assert convention_of(model) == "keras"
    assert model.fastfood_load_summary.startswith("loaded 38 arrays (conv1_1..fc8) from vgg19_")
    reference = keras.applications.VGG19(weights=None, classifier_activation=None)
    assert model.count_params() == reference.count_params() == 143_667_240
    reference.set_weights([w for pair in keras_layout(arrays).values() for w in pair])
    want = reference(keras.applications.vgg19.preprocess_input(image.astype(np.float32))).numpy()
    del reference
    got = model(image).numpy()
    assert np.std(want) > 1e-3 and np.all(np.isfinite(want))
    assert max_relative_error(got, want) <= 1e-3


@pytest.mark.slow
def test_head_swap_keeps_all_but_fc8_at_a_larger_size(keras_h5, arrays):
    model = vgg19(10, image_size=256, weights=keras_h5)
    assert model.fastfood_load_summary.endswith(
        "loaded 36 arrays (conv1_1..fc7) from vgg19_weights_tf_dim_ordering_tf_kernels.h5; "
        "initialised fc8 for 10 classes (the file's has 1000)"
    )
    loaded = model_arrays(model)
    for key in KEYS:
        if key.startswith("fc8"):
            continue
        np.testing.assert_array_equal(loaded[key], arrays[key], err_msg=key)
    assert loaded["fc8/kernel"].shape == (4096, 10)
    assert np.std(loaded["fc8/kernel"]) > 0  # freshly initialised, not zeros
    assert not np.allclose(loaded["fc8/kernel"], arrays["fc8/kernel"][:, :10])
    assert tuple(model.get_layer("fc6").output.shape) == (None, 2, 2, 4096)
    assert model(np.zeros((1, 256, 256, 3), np.uint8)).shape == (1, 10)


def test_random_init_at_256_is_slims_global_pool():
    """fc6 sliding over an 8x8 pool5, fc7 per position, then the average: slim's maths."""
    model = vgg19(6, image_size=256, width=0.0625, norm="none")
    rgb = np.random.default_rng(3).integers(0, 256, (2, 256, 256, 3)).astype(np.float32)
    # scale the kernels He-like so the positions differ and the ReLUs matter
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            shape = tuple(layer.kernel.shape)
            std = np.sqrt(2.0 / np.prod(shape[:-1]))
            layer.kernel.assign(np.random.default_rng(1).normal(0, std, shape).astype(np.float32))
    want = reference_forward(model_arrays(model), rgb)
    assert max_relative_error(model(rgb).numpy(), want) <= 1e-4


# ---------------------------------------------------------------- errors, small files


def small_arrays(target: str | None = None, wrong_shape: tuple = (), drop: str | None = None):
    """Right shapes up to `target`, `wrong_shape` at it, stubs after; `drop` left out."""
    from fastfood.model.layout import array_shapes

    shapes = array_shapes(10, 224)
    out, before = {}, True
    for key in KEYS:
        if key == drop:
            continue
        if key == target:
            out[key], before = np.zeros(wrong_shape, np.float32), False
        else:
            stub = (1, 1) if key.endswith("kernel") else (1,)  # kernels are never rank 1
            out[key] = np.zeros(shapes[key] if before and target else stub, np.float32)
    return out


def test_slim_missing_variable_is_named(tmp_path):
    named = {slim_name(k): v for k, v in small_arrays(drop="conv5_4/bias").items()}
    write_slim_v2(str(tmp_path / "ck"), named)
    with pytest.raises(FastfoodError, match=r"variable vgg_19/conv5/conv5_4/biases not found"):
        vgg19(10, weights=str(tmp_path / "ck"))


def test_slim_wrong_shape_names_variable_and_shapes(tmp_path):
    arrays = small_arrays(target="conv3_2/kernel", wrong_shape=(3, 3, 256, 128))
    write_slim_v2(str(tmp_path / "ck"), {slim_name(k): v for k, v in arrays.items()})
    with pytest.raises(FastfoodError) as info:
        vgg19(10, weights=str(tmp_path / "ck"))
    message = str(info.value)
    assert "vgg_19/conv3/conv3_2/weights" in message
    assert "[3, 3, 256, 128]" in message and "[3, 3, 256, 256]" in message


def test_slim_fc7_in_dense_layout_is_refused():
    """Checked on shapes alone (no 550 MB file): slim's fc7 must be a 1x1 convolution."""
    from fastfood.model import slim_weights
    from fastfood.model.layout import array_shapes
    from fastfood.model.loading import SourceArray, WeightSource, plan_load

    shapes = {k: slim_weights.file_shape(k, s) for k, s in array_shapes(1000, 224).items()}
    shapes["fc7/kernel"] = (4096, 4096)

    def unread():
        raise AssertionError("plan_load must not read arrays")

    source = WeightSource(
        label="fake.ckpt",
        convention="slim",
        arrays={k: SourceArray(slim_name(k), s, unread) for k, s in shapes.items()},
        expected_name=slim_name,
        file_shape=slim_weights.file_shape,
    )
    with pytest.raises(
        FastfoodError,
        match=r"vgg_19/fc7/weights has shape \[4096, 4096\] but this model's fc7/kernel "
        r"needs \[1, 1, 4096, 4096\]",
    ):
        plan_load(source, 1000, 224)
    del shapes["fc7/kernel"]
    arrays = {k: SourceArray(slim_name(k), s, unread) for k, s in shapes.items()}
    source = WeightSource("fake.ckpt", "slim", arrays, slim_name, slim_weights.file_shape)
    with pytest.raises(FastfoodError, match="vgg_19/fc7/weights not found"):
        plan_load(source, 1000, 224)


def test_keras_missing_variable_is_named(tmp_path):
    layers = {keras_name(k.split("/")[0]): [] for k in KEYS}
    for key, value in small_arrays(drop="conv5_4/bias").items():
        layers[keras_name(key.split("/")[0])].append(value)
    write_keras_legacy(tmp_path / "w.h5", layers)
    with pytest.raises(FastfoodError, match=r"block5_conv4 bias \(fastfood's conv5_4\) not found"):
        vgg19(10, weights=str(tmp_path / "w.h5"))


def test_keras_notop_file_is_explained(tmp_path):
    layers = {keras_name(c): [np.zeros((1, 1), np.float32), np.zeros(1, np.float32)] for c in CONVS}
    write_keras_legacy(tmp_path / "notop.h5", layers)
    with pytest.raises(FastfoodError, match=r"fc1 kernel \(fastfood's fc6\) not found .*notop"):
        vgg19(10, weights=str(tmp_path / "notop.h5"))


def test_keras_wrong_shape_names_variable_and_shapes(tmp_path):
    layers = {keras_name(k.split("/")[0]): [] for k in KEYS}
    for key, value in small_arrays(target="conv2_1/kernel", wrong_shape=(3, 3, 64, 64)).items():
        layers[keras_name(key.split("/")[0])].append(value)
    write_keras_legacy(tmp_path / "w.h5", layers, style="new")
    with pytest.raises(FastfoodError) as info:
        vgg19(10, weights=str(tmp_path / "w.h5"))
    message = str(info.value)
    assert "block2_conv1/block2_conv1/kernel:0" in message
    assert "[3, 3, 64, 64]" in message and "[3, 3, 64, 128]" in message


def test_pretrained_needs_full_width_and_224(tmp_path):
    with pytest.raises(FastfoodError, match="width 0.5"):
        vgg19(10, width=0.5, weights=str(tmp_path / "anything.h5"))
    with pytest.raises(FastfoodError, match="image_size 128 .* minimum is 224"):
        vgg19(10, image_size=128, weights=str(tmp_path / "anything.h5"))


def test_not_a_weight_file(tmp_path):
    bogus = tmp_path / "weights.bin"
    bogus.write_bytes(b"hello")
    with pytest.raises(FastfoodError, match="weights .*weights.bin: not 'imagenet'"):
        vgg19(10, weights=str(bogus))
    with pytest.raises(FastfoodError, match="no-such-prefix"):
        vgg19(10, weights=str(tmp_path / "no-such-prefix"))
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["x"] = np.zeros(3)
    with pytest.raises(FastfoodError, match="without Keras weights"):
        vgg19(10, weights=str(tmp_path / "other.h5"))


# ---------------------------------------------------------------- HDF5 layouts


@pytest.mark.parametrize("style, nest", [("old", False), ("new", False), ("new", True)])
def test_legacy_h5_names_are_read(tmp_path, style, nest):
    layers = {
        "block1_conv1": [np.ones((3, 3, 3, 2), np.float32), np.ones(2, np.float32)],
        "fc2": [np.ones((5, 4), np.float32), np.arange(4, dtype=np.float32)],
    }
    write_keras_legacy(tmp_path / "w.h5", layers, style=style, nest=nest)
    with open_h5(str(tmp_path / "w.h5")) as source:
        assert set(source.arrays) == {"conv1_1/kernel", "conv1_1/bias", "fc7/kernel", "fc7/bias"}
        assert source.arrays["conv1_1/kernel"].shape == (3, 3, 3, 2)
        wanted = {"old": "block1_conv1_W_1:0", "new": "block1_conv1/kernel:0"}[style]
        assert source.arrays["conv1_1/kernel"].name.endswith(wanted)
        np.testing.assert_array_equal(source.arrays["fc7/bias"].read(), np.arange(4))
        assert source.convention == "keras"


def test_keras3_weights_h5_is_read(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, name="block1_conv1")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(3, name="predictions")(x)
    tiny = keras.Model(inputs, x)
    tiny.save_weights(tmp_path / "tiny.weights.h5")
    with open_h5(str(tmp_path / "tiny.weights.h5")) as source:
        assert set(source.arrays) == {"conv1_1/kernel", "conv1_1/bias", "fc8/kernel", "fc8/bias"}
        np.testing.assert_array_equal(
            source.arrays["fc8/kernel"].read(), tiny.get_layer("predictions").kernel.numpy()
        )
        assert source.arrays["conv1_1/bias"].shape == (2,)


# ---------------------------------------------------------------- imagenet


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty Keras cache and no network, whatever machine runs the test."""

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    return tmp_path / "keras-home" / "models" / FNAME


def test_imagenet_offline_says_which_file_goes_where(offline):
    with pytest.raises(FastfoodError) as info:
        vgg19(10, weights="imagenet")
    message = str(info.value)
    assert f"{FNAME} is not in the Keras cache" in message
    assert f"put it at {offline}" in message
    assert "storage.googleapis.com" in message


def test_imagenet_corrupt_cache_file(offline):
    offline.parent.mkdir(parents=True)
    offline.write_bytes(b"truncated download")
    with pytest.raises(FastfoodError, match="does not match its MD5"):
        vgg19(10, weights="imagenet")
