"""What `fastfood bench` measures, in what order, with which defaults.

The defaults are chosen so that `fastfood bench` with no arguments finishes in about a
minute on a 2-core laptop CPU: the loaders run at full size (224 px) on the built-in
sample, while training runs a width-reduced VGG19 at a small input size unless a GPU is
present (where the real model at 224 px is quick). The reduction is stated in the
table titles and in the JSON settings, never hidden.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastfood.errors import FastfoodError, first_line
from fastfood.config import KINDS

WHAT = ("loaders", "train", "e2e", "predict", "serve", "precision")
LOADERS = tuple(k for k in KINDS if k != "auto")  # auto is one of the others
# mixed: this hardware's fast half type (fastfood.train.precision); fp16 and bf16 by name,
# to compare them where both are native (tensor-core GPUs of compute capability >= 8.0).
PRECISIONS = ("fp32", "mixed", "fp16", "bf16")
DEFAULT_PRECISIONS = ("fp32", "mixed")
# Training on a CPU without a GPU: a VGG19 this size trains a step in well under a second.
CPU_WIDTH, CPU_TRAIN_IMAGE_SIZE, CPU_STEPS = 0.125, 64, 4
GPU_STEPS = 20


@dataclass(frozen=True)
class BenchSettings:
    """Everything a `fastfood bench` run depends on; 0 means 'choose for this machine'."""

    data: str = ""  # empty: the built-in sample
    what: tuple[str, ...] = ("loaders", "train", "e2e")
    loaders: tuple[str, ...] = LOADERS
    precisions: tuple[str, ...] = ()  # empty: fp32, plus mixed where the hardware has it
    batch_size: int = 64
    image_size: int = 224  # loader output size (and training size on a GPU)
    train_image_size: int = 0  # 0: image_size on a GPU, 64 on a CPU
    width: float = 0.0  # 0: 1.0 on a GPU, 0.125 on a CPU
    steps: int = 0  # timed training steps per repeat; 0: 20 on a GPU, 4 on a CPU
    warmup: int = 2  # untimed training steps (loader passes: always 1)
    repeats: int = 3
    seed: int = 0

    def resolved(self, has_gpu: bool, fast_mixed: bool) -> "BenchSettings":
        """The same settings with every 'choose for this machine' value chosen.

        Mixed precision is measured by default only where it is native (tensor-core GPU,
        CPU with AVX512-BF16/AMX): elsewhere bfloat16 is emulated, an order of magnitude
        slower, and `fastfood train` would not pick it.
        """
        return dataclasses.replace(
            self,
            precisions=self.precisions or (DEFAULT_PRECISIONS if fast_mixed else ("fp32",)),
            train_image_size=self.train_image_size or (self.image_size if has_gpu
                                                       else CPU_TRAIN_IMAGE_SIZE),
            width=self.width or (1.0 if has_gpu else CPU_WIDTH),
            steps=self.steps or (GPU_STEPS if has_gpu else CPU_STEPS),
        )

    def __post_init__(self) -> None:
        """Raise FastfoodError naming the flag for any value that cannot work."""
        for flag, values, allowed in (("--what", self.what, WHAT),
                                      ("--loaders", self.loaders, LOADERS),
                                      ("--precision", self.precisions, PRECISIONS)):
            bad = [v for v in values if v not in allowed]
            if bad or (not values and flag != "--precision"):
                raise FastfoodError(f"{flag}: {','.join(bad) or 'nothing'} is not one of "
                                    f"{','.join(allowed)}")
        for flag, value in (("--batch-size", self.batch_size), ("--image-size", self.image_size),
                            ("--repeats", self.repeats)):
            if value < 1:
                raise FastfoodError(f"{flag} must be at least 1, got {value}")
        if self.warmup < 0 or self.steps < 0 or self.width < 0 or self.train_image_size < 0:
            raise FastfoodError("--warmup, --steps, --width and --train-image-size must be >= 0")


def dataset(root: str) -> tuple[str, list[str], list[int], int]:
    """(root, files, labels, num_classes): every image of the dataset, train and val."""
    from fastfood import data

    path = str(data.root_of(root))
    spec = data.load(path)
    files = list(spec.train.files) + list(spec.val.files)
    labels = list(spec.train.labels) + list(spec.val.labels)
    return str(spec.root), files, labels, len(spec.classes)


def data_classes(root: str) -> tuple[str, ...]:
    """The dataset's class names, in its label order."""
    from fastfood import data

    return tuple(data.load(root).classes)


def _guard(fn: Callable[[], Any], errors: list[str], name: str) -> dict[str, Any]:
    """Run one measurement; a crash becomes an 'error' entry so the others still run.

    Input mistakes (FastfoodError) are not measurements failing: they propagate.
    """
    try:
        return fn()
    except FastfoodError:
        raise
    except Exception as err:  # noqa: BLE001 - reported in the table and the JSON
        message = f"{type(err).__name__}: {first_line(err)}"
        errors.append(f"{name}: {message}")
        return {"error": message}


def run(settings: BenchSettings, progress: Callable[[str], None] = lambda _: None,
        strategy: Any = None) -> dict[str, Any]:
    """Measure what `settings.what` asks for; returns the JSON-ready result dict.

    Every measurement runs under ONE tf.distribute strategy (`strategy`, or the one this
    machine calls for, made once): each MirroredStrategy numbers its collectives from the
    same start, so a second one in this process would reuse the first one's collective
    instances with other shapes and TensorFlow would abort the step.
    """
    from fastfood import machine
    from fastfood.benchmark import loaders as lb
    from fastfood.benchmark import train as tb
    from fastfood.loaders import native
    from fastfood.train import distribute

    strategy = strategy or distribute.make_strategy()
    info = machine.machine_info(with_gpus=True)
    hw = machine.detect()
    fast_mixed = hw.cpu_bf16 or any(cap >= (7, 0) for cap in hw.gpu_capabilities)
    s = settings.resolved(has_gpu=bool(info["gpus"]), fast_mixed=fast_mixed)
    root, files, labels, num_classes = dataset(s.data)
    warnings = [w for w in [machine.busy_warning(info)] if w]
    errors: list[str] = []
    result: dict[str, Any] = {
        "machine": info,
        "settings": {**dataclasses.asdict(s), "data": root, "num_files": len(files),
                     "num_classes": num_classes, "dali_cpu_resize": native.describe()},
        "labels": {},
        "warnings": warnings,
    }
    start = time.perf_counter()
    sections: dict[str, float] = {}
    result["section_wall_s"] = sections

    if "loaders" in s.what:
        lb.check_enough_files(len(files), s.batch_size)
        result["labels"]["loaders"] = (
            f"Loaders: {len(files)} images -> {s.image_size} px, batch {s.batch_size}, "
            f"img/s steady state, median of {s.repeats} passes after 1 warm-up, "
            "loaders in turn pass by pass")
        makers = {kind: {mode: lb.loader_pass(kind, files, labels, training=mode == "train",
                                              batch_size=s.batch_size, image_size=s.image_size,
                                              seed=s.seed) for mode in ("train", "eval")}
                  for kind in s.loaders}
        result["loaders"] = lb.measure_rows(makers, warmup=1, repeats=s.repeats, errors=errors,
                                            progress=progress)
        sections["loaders"] = round(time.perf_counter() - start, 1)

    setup = tb.TrainSetup(num_classes=num_classes, batch_size=s.batch_size,
                          image_size=s.train_image_size, width=s.width, steps=s.steps,
                          warmup=s.warmup, repeats=s.repeats, seed=s.seed)
    reduced = "" if (s.width == 1.0 and s.train_image_size == 224) else " (REDUCED model/size)"
    model_label = (f"VGG19 width {s.width:g} at {s.train_image_size} px{reduced}, "
                   f"batch {s.batch_size}, {s.steps} steps x {s.repeats} repeats "
                   f"after {s.warmup} warm-up")
    if not settings.precisions and "mixed" not in s.precisions:
        model_label += ("; mixed precision not measured (emulated on this hardware: "
                        "--precision fp32,mixed to see it)")
    if "train" in s.what or "e2e" in s.what:
        t0 = time.perf_counter()
        result["labels"]["train"] = (f"Training: {model_label}; the inputs of a precision "
                                     "are timed in turn, repeat by repeat")
        result["train"] = train = {}
        real = [k for k in s.loaders if k != "synthetic"]
        for precision in s.precisions:
            inputs = (["synthetic", "keras_fit"] if "train" in s.what else []) + (
                real if "e2e" in s.what else [])
            if "e2e" in s.what and "train" not in s.what:
                inputs = ["synthetic"] + inputs  # e2e is measured against synthetic input
            train.update(_train_precision(precision, inputs, files, labels, setup, errors,
                                          progress, strategy))
            _add_train_ratios(train, precision)
        sections["train"] = round(time.perf_counter() - t0, 1)

    if "predict" in s.what:
        t0 = time.perf_counter()
        result["labels"]["predict"] = f"Predict (eval loader -> forward pass): {model_label}"
        result["predict"] = {}
        for precision in s.precisions:
            for kind in s.loaders:
                name = f"{precision}/{kind}"
                progress(f"predict {name}")
                result["predict"][name] = _guard(
                    lambda: tb.bench_eval(kind, files, labels, precision, setup,
                                          strategy).to_dict(),
                    errors, f"predict {name}")
        sections["predict"] = round(time.perf_counter() - t0, 1)

    if "serve" in s.what:
        from fastfood.benchmark import serve as sb

        t0 = time.perf_counter()
        result["labels"]["serve"] = (
            f"Serve: fastfood serve over an untrained VGG19 width {s.width:g} at "
            f"{s.image_size} px, the dataset's images as request bodies, on 127.0.0.1: "
            f"{sb.QUICK.clients} clients vs offline batch predict, 1 client, memory, "
            f"{4 * sb.QUICK.max_queue} clients (4x the queue bound)")
        result["serve"] = _guard(
            lambda: sb.measure_untrained(files, num_classes, width=s.width,
                                         image_size=s.image_size, progress=progress),
            errors, "serve")
        sections["serve"] = round(time.perf_counter() - t0, 1)

    if "precision" in s.what:
        from fastfood.benchmark import precision as pb

        t0 = time.perf_counter()
        result["labels"]["precision"] = (
            f"Precision: an untrained VGG19 width {s.width:g} at {s.image_size} px, fp32 and "
            "the half type side by side, round by round: conv3x3 peak, raw forward, batch "
            f"predict, evaluate (val of {root}), serve at {pb.PrecisionBench().clients} "
            "clients, cold predict of one image")
        result["precision"] = _guard(
            lambda: pb.measure(files, list(data_classes(root)), width=s.width,
                               image_size=s.image_size, data_root=root, progress=progress),
            errors, "precision")
        sections["precision"] = round(time.perf_counter() - t0, 1)

    result["errors"] = errors
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return result


def _train_precision(precision: str, inputs: list[str], files: list[str], labels: list[int],
                     setup: Any, errors: list[str], progress: Callable[[str], None],
                     strategy: Any) -> dict[str, dict[str, Any]]:
    """Every input of one precision, built side by side and timed interleaved."""
    from fastfood.benchmark import train as tb

    rows: dict[str, dict[str, Any]] = {}
    try:
        chosen, jit, info = tb.start_precision(precision, setup.xla)
    except FastfoodError:
        raise
    except Exception as err:  # noqa: BLE001
        message = f"{type(err).__name__}: {first_line(err)}"
        errors.append(f"train {precision}: {message}")
        return {f"{precision}/{kind}": {"error": message} for kind in inputs}
    try:
        runners = []
        for kind in inputs:
            name = f"{precision}/{kind}"
            progress(f"train {name}: building")
            if kind == "keras_fit":
                build = lambda: tb.keras_fit_runner(name, setup, jit, info)  # noqa: E731
            else:
                build = lambda: tb.fastfood_runner(  # noqa: E731
                    name, kind, files, labels, setup, chosen, jit, info, strategy)
            got = _guard(build, errors, f"train {name}")
            if isinstance(got, dict):  # the error row
                rows[name] = got
            else:
                runners.append(got)
        progress(f"train {precision}: {len(runners)} configurations, interleaved")
        failed: dict[str, str] = {}
        measured = tb.run_interleaved(runners, setup, failed)
        for runner in runners:
            if runner.name in measured:
                rows[runner.name] = measured[runner.name].to_dict()
            else:
                rows[runner.name] = {"error": failed[runner.name]}
                errors.append(f"train {runner.name}: {failed[runner.name]}")
    finally:
        tb.restore_policy()
    return {f"{precision}/{kind}": rows[f"{precision}/{kind}"] for kind in inputs}


def _add_train_ratios(train: dict[str, dict[str, Any]], precision: str) -> None:
    """Each input against synthetic input, and fastfood against Keras fit, per precision."""
    synthetic = train.get(f"{precision}/synthetic", {}).get("img_s")
    fit = train.get(f"{precision}/keras_fit", {}).get("img_s")
    for name, row in train.items():
        if not name.startswith(f"{precision}/") or "error" in row:
            continue
        kind = name.split("/", 1)[1]
        if synthetic and kind not in ("synthetic", "keras_fit"):
            row["ratio_to_synthetic"] = round(row["img_s"] / synthetic, 3)
        if fit and kind != "keras_fit":
            row["ratio_to_keras_fit"] = round(row["img_s"] / fit, 3)
