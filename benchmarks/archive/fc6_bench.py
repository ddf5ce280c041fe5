"""fc6 as a 7x7 VALID convolution vs the same maths as one matrix product, side by side.

At 224 px pool5 is 7x7x512 and slim's fc6 kernel is [7, 7, 512, 4096]: one output position,
so the convolution equals flatten + matmul with the kernel reshaped to [25088, 4096].
oneDNN's backward-filter for that convolution is suspected to make VGG19's backward pass
~4x its forward (theory: ~3x). This script builds ONE full VGG19, traces one training-step
function per fc6 form (FC6.use_matmul is read at trace time) and times them interleaved,
so that load from other processes hits both alike. It also times fc6 alone.

    .venv/bin/python benchmarks/archive/fc6_bench.py                      # bf16, batch 16, 224 px
    .venv/bin/python benchmarks/archive/fc6_bench.py --precision float32 --json out.json
    python3 benchmarks/archive/fc6_bench.py --torch     # GPU cross-check where TF is not installed

`--torch` times the same two forms with PyTorch on CUDA (bf16 autocast, cuDNN autotuned):
the GPU kernels behind them (cuDNN convolution, cuBLAS GEMM) are the ones TF calls, so it
answers "does the matmul form cost anything on a GPU?" on a machine that has no TF.

Prints one JSON object (device, versions, load average, img/s per form and their ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _time_steps(step, args, warmup: int, steps: int) -> list[float]:
    for _ in range(warmup):
        step(*args).numpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(*args).numpy()
        times.append(time.perf_counter() - start)
    return times


def _train_step(model, tf):
    """forward + loss + gradients of every variable; the global norm keeps them alive."""

    @tf.function(autograph=False)
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )
        grads = tape.gradient(loss, model.trainable_variables)
        return tf.linalg.global_norm(grads)

    return step


def _fc6_step(layer, tf):
    """fc6 alone: forward + gradients for its input and kernel."""

    @tf.function(autograph=False)
    def step(pool5):
        with tf.GradientTape() as tape:
            tape.watch(pool5)
            out = tf.cast(layer(pool5), tf.float32)
            loss = tf.reduce_sum(out * out)
        grads = tape.gradient(loss, [pool5] + layer.trainable_variables)
        return tf.linalg.global_norm([tf.cast(g, tf.float32) for g in grads])

    return step


def _torch_bench(args) -> dict:
    """fc6 alone and a VGG19 with fc6 as Conv2d(512, 4096, 7) vs flatten + Linear, on CUDA."""
    import torch
    import torchvision

    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda")
    fmt = torch.channels_last  # NHWC, as TF lays out images

    def timed(fn, steps: int) -> float:
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - start) / steps

    def vgg(form: str) -> torch.nn.Module:
        net = torchvision.models.vgg19()
        if form == "conv":
            linear = net.classifier[0]
            conv = torch.nn.Conv2d(512, 4096, 7)
            net.avgpool = torch.nn.Sequential(conv, torch.nn.Flatten())
            net.classifier[0] = torch.nn.Identity()
            del linear
        else:
            net.avgpool = torch.nn.Identity()  # 7x7 already; flatten + Linear is the matmul
        return net.to(device, memory_format=fmt)

    result: dict = {"device": {"gpu": torch.cuda.get_device_name()}, "versions": {
        "torch": torch.__version__, "cudnn": torch.backends.cudnn.version()}}
    x5 = torch.randn(args.batch, 512, 7, 7, device=device).to(memory_format=fmt)
    x5.requires_grad_(True)
    weight = torch.randn(4096, 512, 7, 7, device=device, requires_grad=True)
    fc6 = {
        "conv": lambda: torch.nn.functional.conv2d(x5, weight).flatten(1),
        "matmul": lambda: x5.flatten(1) @ weight.flatten(1).t(),
    }

    def fc6_step(form):
        with torch.autocast("cuda", torch.bfloat16):
            out = fc6[form]()
        out.float().square().sum().backward()

    result["fc6_only_ms"] = {f: 1e3 * timed(lambda f=f: fc6_step(f), 50) for f in fc6}
    for batch in sorted({args.batch, 64}):
        images = torch.randn(batch, 3, 224, 224, device=device).to(memory_format=fmt)
        labels = torch.randint(0, 1000, (batch,), device=device)
        for form in ("conv", "matmul"):
            net = vgg(form)

            def step():
                with torch.autocast("cuda", torch.bfloat16):
                    loss = torch.nn.functional.cross_entropy(net(images), labels)
                loss.backward()

            def forward():
                with torch.no_grad(), torch.autocast("cuda", torch.bfloat16):
                    net(images)

            key = f"batch{batch}"
            result.setdefault("img_per_s", {}).setdefault(key, {})[form] = round(
                batch / timed(step, 20), 1
            )
            result.setdefault("forward_img_per_s", {}).setdefault(key, {})[form] = round(
                batch / timed(forward, 20), 1
            )
            del net
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--precision", default="mixed_bfloat16", help="Keras dtype policy")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per form and round")
    parser.add_argument("--rounds", type=int, default=2, help="conv/matmul alternations")
    parser.add_argument("--skip-model", action="store_true", help="time fc6 alone only")
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--torch", action="store_true", help="PyTorch CUDA cross-check")
    args = parser.parse_args()
    if args.torch:
        text = json.dumps({"benchmark": "fc6_bench --torch", **_torch_bench(args)}, indent=2)
        print(text)
        if args.json:
            with open(args.json, "w") as handle:
                handle.write(text + "\n")
        return

    import keras
    import numpy as np
    import tensorflow as tf

    from fastfood.model import FC6, vgg19

    keras.mixed_precision.set_global_policy(args.precision)
    rng = np.random.default_rng(0)
    forms = {"conv": False, "matmul": True}
    result: dict = {
        "benchmark": "fc6_bench",
        "device": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        },
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "policy": args.precision,
        "batch": args.batch,
        "image_size": args.image_size,
        "loadavg_before": os.getloadavg(),
    }

    # fc6 alone, on a pool5-shaped input
    pool = args.image_size // 32
    pool5 = tf.constant(rng.uniform(0, 1, (args.batch, pool, pool, 512)), tf.float32)
    pool5 = tf.cast(pool5, keras.config.dtype_policy().compute_dtype)
    fc6_times: dict[str, list[float]] = {f: [] for f in forms}
    layers = {f: FC6(4096, kernel_size=min(7, pool), use_matmul=m) for f, m in forms.items()}
    for layer in layers.values():
        layer.build(pool5.shape)
    layers["conv"].set_weights(layers["matmul"].get_weights())
    steps = {f: _fc6_step(layers[f], tf) for f in forms}
    for round_ in range(args.rounds):
        for form in forms:
            warmup = args.warmup if round_ == 0 else 0
            fc6_times[form] += _time_steps(steps[form], (pool5,), warmup, args.steps)
    result["fc6_only_ms"] = {f: round(1e3 * statistics.median(t), 1) for f, t in fc6_times.items()}

    if not args.skip_model:
        model = vgg19(1000, image_size=args.image_size)
        images = tf.constant(
            rng.integers(0, 256, (args.batch, args.image_size, args.image_size, 3)), tf.uint8
        )
        labels = tf.constant(rng.integers(0, 1000, args.batch), tf.int32)
        fc6 = model.get_layer("fc6")
        train, forward = {}, {}
        for form, use_matmul in forms.items():
            fc6.use_matmul = use_matmul  # read when the step functions are traced
            train[form] = _train_step(model, tf)
            forward[form] = tf.function(lambda x: model(x, training=False), autograph=False)
            train[form](images, labels).numpy()  # trace now, with this form
            forward[form](images).numpy()
        fc6.use_matmul = True
        times: dict[str, list[float]] = {f: [] for f in forms}
        fwd_times: dict[str, list[float]] = {f: [] for f in forms}
        for round_ in range(args.rounds):  # interleaved: load drift hits both forms
            warmup = args.warmup if round_ == 0 else 0
            for form in forms:
                times[form] += _time_steps(train[form], (images, labels), warmup, args.steps)
                fwd_times[form] += _time_steps(forward[form], (images,), warmup, args.steps)
        median = {f: statistics.median(t) for f, t in times.items()}
        fwd_median = {f: statistics.median(t) for f, t in fwd_times.items()}
        result["step_s"] = {f: [round(t, 3) for t in ts] for f, ts in times.items()}
        result["forward_s"] = {f: [round(t, 3) for t in ts] for f, ts in fwd_times.items()}
        result["img_per_s"] = {f: round(args.batch / m, 3) for f, m in median.items()}
        result["forward_img_per_s"] = {f: round(args.batch / m, 3) for f, m in fwd_median.items()}
        result["backward_over_forward"] = {
            f: round((median[f] - fwd_median[f]) / fwd_median[f], 2) for f in forms
        }
        result["matmul_speedup"] = round(median["conv"] / median["matmul"], 3)
    result["loadavg_after"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
