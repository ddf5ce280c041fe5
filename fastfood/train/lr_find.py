"""`fastfood lr-find`: a short exponential sweep of the learning rate on the run's own data
and model, and a suggested rate.

The sweep trains the model the run would train (same data, crop, batch, precision,
weights, class weights) with the rate rising exponentially from `start` to `end`, one
rate per step, and records the training cross-entropy. It stops early once the smoothed
loss is 4 times its lowest (the rate has diverged), as fastai's `lr_find` does.

The suggestion is the rate at the steepest descent of the smoothed loss against log(lr),
after skipping the first 10 % of the points (where the smoothing still warms up) and the
points after the lowest loss (Lightning's `Tuner.lr_find` rule, restricted to the falling
part). `min_over_10`, the rate at the lowest smoothed loss over 10 (fastai's older rule),
is reported beside it. The suggestion is a peak rate for the run's schedule (warm-up and
decay), at the run's --batch-size.

Nothing is written to a run directory; the caller writes the CSV (and a PNG), into one
only when asked (`fastfood lr-find --run-dir`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fastfood.config import RunConfig
from fastfood.errors import FastfoodError

#: The smoothing of the recorded loss (an EMA with bias correction, as fastai's).
SMOOTHING = 0.9
#: The sweep ends once the smoothed loss exceeds its lowest by this factor.
DIVERGED = 4.0
#: The share of the first points the suggestion skips.
SKIP_START = 0.1


@dataclass(frozen=True)
class Sweep:
    """The rates tried, the loss at each, the smoothed loss, and the suggestion."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    suggested: float
    min_over_10: float
    diverged_at: float | None

    def rows(self) -> list[tuple[int, float, float, float]]:
        return [(i, lr, loss, sm) for i, (lr, loss, sm)
                in enumerate(zip(self.lrs, self.losses, self.smoothed))]


def smooth(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    """An exponential moving average with bias correction (no lag at the start)."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float, float]:
    """(steepest descent rate, lowest-loss rate / 10) of a sweep; see the module doc."""
    if len(lrs) < 3:
        raise FastfoodError("lr-find: the sweep has too few points to suggest a rate "
                            "(give more --steps, or a lower --start-lr)")
    low = min(range(len(smoothed)), key=smoothed.__getitem__)
    start = min(int(len(lrs) * SKIP_START), max(0, low - 2))
    span = range(start, max(low, start + 1) + 1)
    logs = [math.log(lrs[i]) for i in span]
    values = [smoothed[i] for i in span]
    slopes = [(values[min(j + 1, len(values) - 1)] - values[max(j - 1, 0)])
              / max(logs[min(j + 1, len(logs) - 1)] - logs[max(j - 1, 0)], 1e-12)
              for j in range(len(values))]
    steepest = list(span)[min(range(len(slopes)), key=slopes.__getitem__)]
    return lrs[steepest], lrs[low] / 10


def sweep(config: RunConfig, *, start: float = 1e-5, end: float = 1.0, steps: int = 100,
          spec: Any = None, say: Any = print) -> Sweep:
    """Run the sweep for `config` (a train config; its lr and schedule are ignored)."""
    import keras

    from fastfood import data, loaders, machine
    from fastfood.loaders.request import LoaderRequest
    from fastfood.train import class_weights, distribute, precision, recipe, setup
    from fastfood.train.feeds import TrainFeed, decodes_on_gpu
    from fastfood.train.position import Position

    if not 0 < start < end:
        raise FastfoodError(f"lr-find: --start-lr must be below --end-lr, got {start:g} and "
                            f"{end:g}")
    config = recipe.resolve(config).but("train", max_steps=steps, ema=0.0, warmup_epochs=0.0)
    spec = spec or data.load_config(config.data)
    config = config.but("model", num_classes=len(spec.classes))
    strategy = distribute.make_strategy()
    hw = machine.detect()
    prec = precision.choose_precision(config.train.precision, hw)
    xla, _ = precision.choose_xla(config.train.xla, hw)
    kind = loaders.resolve_kind(config.loader.kind)
    good, _ = loaders.preflight(spec.train.files, config.loader.max_pixels)
    if not good:
        raise FastfoodError(f"--data {spec.root}: none of the training images can be read")
    plan = setup.plan(len(good), config, strategy, on_device=decodes_on_gpu(kind))
    rate = (end / start) ** (1.0 / max(1, steps - 1))
    schedule = keras.optimizers.schedules.ExponentialDecay(start, decay_steps=1,
                                                           decay_rate=rate)
    weights = class_weights.for_run(config.train.class_weight, spec.train.labels,
                                    config.model.num_classes)
    previous = keras.mixed_precision.global_policy().name
    precision.apply(prec)
    keras.utils.set_random_seed(config.train.seed)
    try:
        parts = setup.build(config, strategy, plan, loss_scale=prec.loss_scale,
                            jit_compile=xla, class_weights=weights, schedule=schedule)
        request = LoaderRequest(kind=kind, image_size=config.model.image_size,
                                seed=config.train.seed, crop=config.loader.train_crop,
                                num_threads=config.loader.num_threads,
                                max_pixels=config.loader.max_pixels)
        feed = TrainFeed(strategy, plan, spec.train.files, spec.train.labels, request)
        say(f"lr-find: {steps} steps from {start:g} to {end:g} (x{rate:.4g} a step), global "
            f"batch {plan.global_batch}, {plan.steps_per_epoch} steps/epoch")
        lrs, losses, smoothed, diverged = [], [], [], None
        pos = Position()
        while len(lrs) < steps and diverged is None:
            iterator, epoch = feed.at(pos), pos.epoch
            for batch in iterator:
                logs = parts.train_step(batch)
                lr, loss = float(logs["lr"]), float(logs["xent"])
                pos = pos.advance(plan.steps_per_epoch)
                lrs.append(lr)
                losses.append(loss)
                smoothed = smooth(losses)
                if not math.isfinite(loss) or smoothed[-1] > DIVERGED * min(smoothed):
                    diverged = lr
                    break
                if len(lrs) >= steps or pos.epoch != epoch:
                    break
            else:
                pos = pos.next_epoch()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    lrs_f, sm_f = [lrs[i] for i in finite], [smoothed[i] for i in finite]
    best, tenth = suggest(lrs_f, sm_f)
    return Sweep(tuple(lrs), tuple(losses), tuple(smoothed), best, tenth, diverged)


def write_csv(result: Sweep, path: Any) -> None:
    import csv

    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["step", "lr", "loss", "smoothed_loss"])
        for row in result.rows():
            out.writerow([row[0], f"{row[1]:.6g}", f"{row[2]:.6g}", f"{row[3]:.6g}"])


def write_png(result: Sweep, path: Any) -> bool:
    """The loss against the rate (log scale), the suggestion marked; False without
    matplotlib (an optional dependency: the `bench` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, result.losses, alpha=0.3, label="loss")
    ax.plot(result.lrs, result.smoothed, label="smoothed")
    ax.axvline(result.suggested, color="red", linestyle="--",
               label=f"suggested {result.suggested:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training cross-entropy")
    finite = [v for v in result.smoothed if math.isfinite(v)]
    if finite:
        ax.set_ylim(min(finite) * 0.9, min(max(finite), DIVERGED * min(finite)) * 1.1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
