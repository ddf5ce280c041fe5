"""Training images per second: fastfood's own step against Keras `model.fit`.

fastfood's figure runs the product's pieces: the precision and XLA choice
(`fastfood.train.precision`), the strategy and input distribution
(`fastfood.train.distribute`) and the compiled step (`fastfood.train.step`), fed by a
fastfood loader that is rebuilt every epoch as the training loop does. The Keras figure
is what a user gets from `compile` + `fit` on the same model, precision, batch and XLA
setting, fed one synthetic batch repeated, so it is the best case for Keras.

Every timed repeat runs `steps` steps and ends by fetching the loss, so queued device
work is inside the timing; warm-up steps (tracing, compiling, autotuning) are not.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastfood.benchmark.timing import Throughput
from fastfood.errors import first_line

LEARNING_RATE = 0.01  # any value: speed does not depend on it
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4


@dataclass(frozen=True)
class TrainSetup:
    """What every training measurement in one benchmark run shares."""

    num_classes: int
    batch_size: int = 64
    image_size: int = 224
    width: float = 1.0
    steps: int = 10  # timed steps per repeat
    warmup: int = 2  # untimed steps first
    repeats: int = 3
    xla: str = "auto"
    seed: int = 0


def start_precision(precision: str, xla: str = "auto") -> tuple[Any, bool, dict[str, Any]]:
    """Clear Keras state, set the global policy, choose XLA: once before a precision's
    models are built. Returns (fastfood Precision, XLA on, info for the JSON)."""
    import keras

    from fastfood import machine
    from fastfood.train import precision as prec

    keras.backend.clear_session()
    gc.collect()
    hw = machine.detect()
    chosen = prec.choose_precision(precision, hw)
    prec.apply(chosen)
    jit, why = prec.choose_xla(xla, hw)
    info = {"policy": chosen.policy, "precision_reason": chosen.reason, "xla": jit,
            "xla_reason": why}
    return chosen, jit, info


def _model(setup: TrainSetup) -> Any:
    from fastfood import model as models
    from fastfood.config import ModelConfig

    return models.build(ModelConfig(num_classes=setup.num_classes, image_size=setup.image_size,
                                    width=setup.width, weights="none"))


def _run_config(setup: TrainSetup, loader: str, total: int) -> Any:
    """The RunConfig a real run with this setup would have (what `train.setup` builds from),
    resolved by the recipe as the trainer resolves it."""
    from fastfood.config import LoaderConfig, ModelConfig, RunConfig, TrainConfig
    from fastfood.train import recipe

    return recipe.resolve(RunConfig(
        loader=LoaderConfig(kind=loader, batch_size=setup.batch_size),
        model=ModelConfig(num_classes=setup.num_classes, image_size=setup.image_size,
                          width=setup.width, weights="none"),
        train=TrainConfig(lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY,
                          max_steps=total, seed=setup.seed),
    ))


class EpochFeeder:
    """Hands the step its next batch, as the training loop does.

    Through the loop's own `TrainFeed` and `Position`: DALI's pipelines built once for
    the whole benchmark, tf.data's dataset made per epoch.
    """

    def __init__(self, kind: str, files: Sequence[str], labels: Sequence[int],
                 strategy: Any, setup: TrainSetup, total_steps: int = 10_000):
        from fastfood.loaders.request import LoaderRequest
        from fastfood.train import setup as train_setup
        from fastfood.train.feeds import TrainFeed
        from fastfood.train.position import Position

        self.config = config = _run_config(setup, kind, total_steps)
        self.plan = train_setup.plan(len(files), config, strategy)
        self.steps_per_epoch = self.plan.steps_per_epoch
        request = LoaderRequest(kind=kind, image_size=setup.image_size, seed=setup.seed)
        self.feed = TrainFeed(strategy, self.plan, files, labels, request)
        self.pos, self.iterator = Position(), None

    def next_batch(self) -> Any:
        if self.iterator is None or self.pos.batch_in_epoch == 0:
            self.iterator = self.feed.at(self.pos)
        self.pos = self.pos.advance(self.steps_per_epoch)
        return next(self.iterator)


@dataclass
class Runner:
    """One training configuration, built and ready: warm it once, then time repeats.

    Several runners of one precision live side by side so their repeats can be
    interleaved (`run_interleaved`): load that drifts during a run then hits every
    configuration alike, and the ratios between them, which the targets are about, hold.
    """

    name: str
    warm: Callable[[], None]
    repeat: Callable[[], float]  # seconds for `setup.steps` steps, device work included
    info: dict[str, Any]


def fastfood_runner(name: str, loader: str, files: Sequence[str], labels: Sequence[int],
                    setup: TrainSetup, chosen: Any, jit: bool, info: dict[str, Any],
                    strategy: Any) -> Runner:
    """fastfood's compiled train step fed by `loader` ('synthetic' for compute alone), under
    `strategy`: the process's one strategy (a second one on the same devices would number
    its collectives from the same start as the first and clash with its instances)."""
    from fastfood.train import setup as train_setup

    total = setup.warmup + setup.steps * setup.repeats
    feeder = EpochFeeder(loader, files, labels, strategy, setup, total)
    parts = train_setup.build(feeder.config, strategy, feeder.plan,
                              loss_scale=chosen.loss_scale, jit_compile=jit)
    step = parts.train_step

    def run(n: int) -> float:
        start = time.perf_counter()
        logs = None
        for _ in range(n):
            logs = step(feeder.next_batch())
        loss = float(logs["loss"])  # waits for the device
        seconds = time.perf_counter() - start
        if not math.isfinite(loss):
            raise RuntimeError(f"benchmark training diverged (loss {loss})")
        return seconds

    def warm() -> None:
        if setup.warmup:
            run(setup.warmup)

    return Runner(name, warm, lambda: run(setup.steps),
                  {**info, "steps_per_epoch": feeder.steps_per_epoch})


def steps_per_execution(steps: int, cap: int = 8) -> int:
    """Largest divisor of `steps` up to `cap`: amortises Keras's per-call overhead while
    keeping every timed epoch exactly `steps` steps long."""
    return max(d for d in range(1, min(cap, steps) + 1) if steps % d == 0)


def keras_fit_runner(name: str, setup: TrainSetup, jit: bool, info: dict[str, Any]) -> Runner:
    """`model.compile(SGD momentum, CE from logits + L2)` + `model.fit` on one batch.

    A repeat is one `fit(epochs=1)` call timed from its epoch's start to its end by a
    callback, so fit's per-call set-up (iterator, callbacks) is not charged to Keras.
    """
    import keras
    import tensorflow as tf

    from fastfood.model import l2_loss

    model = _model(setup)
    spe = steps_per_execution(setup.steps)
    xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss(y_true: Any, y_pred: Any) -> Any:
        # The same objective as fastfood's step: cross-entropy + slim's L2 weight decay.
        return xent(y_true, y_pred) + tf.cast(l2_loss(model, WEIGHT_DECAY), tf.float32)

    model.compile(
        optimizer=keras.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM), loss=loss,
        steps_per_execution=spe, jit_compile=jit,
    )
    size = setup.image_size
    images = tf.random.stateless_uniform([setup.batch_size, size, size, 3], [setup.seed, 1],
                                         0, 256, dtype=tf.int32)
    labels = tf.random.stateless_uniform([setup.batch_size], [setup.seed, 2], 0,
                                         setup.num_classes, dtype=tf.int32)
    data = tf.data.Dataset.from_tensors((tf.cast(images, tf.uint8), labels)).repeat()

    class EpochClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds.append(time.perf_counter() - self.start)

    clock = EpochClock()

    def warm() -> None:
        steps = max(spe, math.ceil(max(setup.warmup, 1) / spe) * spe)
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)

    def repeat() -> float:
        model.fit(data, epochs=1, steps_per_epoch=setup.steps, verbose=0, shuffle=False,
                  callbacks=[clock])
        return clock.seconds[-1]

    return Runner(name, warm, repeat, {**info, "steps_per_execution": spe})


def run_interleaved(runners: list[Runner], setup: TrainSetup,
                    errors: dict[str, str] | None = None) -> dict[str, Throughput]:
    """Warm every runner, then time repeat r of each runner before repeat r+1 of any.

    A runner that raises is dropped, its message put in `errors[name]` (when given; else
    the exception propagates) and the others go on.
    """
    live = list(runners)
    seconds: dict[str, list[float]] = {r.name: [] for r in runners}

    def attempt(runner: Runner, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as err:
            if errors is None:
                raise
            errors[runner.name] = f"{type(err).__name__}: {first_line(err)}"
            live.remove(runner)
            return None

    for runner in list(live):
        attempt(runner, runner.warm)
    for _ in range(setup.repeats):
        for runner in list(live):
            got = attempt(runner, runner.repeat)
            if got is not None:
                seconds[runner.name].append(got)
    n = setup.steps * setup.batch_size
    return {r.name: Throughput(tuple([n] * len(seconds[r.name])), tuple(seconds[r.name]), r.info)
            for r in runners if r in live}


def bench_eval(loader: str, files: Sequence[str], labels: Sequence[int], precision: str,
               setup: TrainSetup, strategy: Any) -> Throughput:
    """Evaluation/prediction throughput: eval-mode loader into the forward pass, under the
    process's one `strategy`."""
    from fastfood import loaders
    from fastfood.benchmark.timing import time_passes
    from fastfood.train import step as train_step_lib

    _, _, info = start_precision(precision, setup.xla)
    with strategy.scope():
        model = _model(setup)
    eval_step = train_step_lib.make_eval_step(model, strategy, num_classes=setup.num_classes)

    def one_pass() -> Any:
        ds = loaders.build(loader, list(files), list(labels), training=False,
                           batch_size=setup.batch_size, image_size=setup.image_size)
        out = None
        for batch in ds:
            out = eval_step(batch)
            yield int(batch[0].shape[0])
        if out is not None:
            float(out["count_sum"])  # the pass ends when the device has finished

    result = time_passes(one_pass, warmup=1, repeats=setup.repeats)
    restore_policy()
    return Throughput(result.items, result.seconds, {**result.extra, **info})


def restore_policy() -> None:
    """Back to float32, so a benchmark leaves the process as it found it."""
    import keras

    keras.mixed_precision.set_global_policy("float32")
