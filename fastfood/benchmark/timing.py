"""Warm-up, repeats and min/median: the one way every fastfood benchmark times things.

Throughput is reported two ways because they answer different questions: the median over
repeats is what to expect, the best (from the shortest time) is what the code can do when
nothing else on the machine interferes. Both come from the same timed repeats; warm-up
runs (tracing, compiling, page cache, thread pools starting) are never counted.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Throughput:
    """Timed repeats of the same work, each processing `items[i]` items in `seconds[i]`."""

    items: tuple[int, ...]
    seconds: tuple[float, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rates(self) -> list[float]:
        return [n / s for n, s in zip(self.items, self.seconds) if s > 0]

    @property
    def median(self) -> float:
        """Items per second, median over repeats (0 when nothing was timed)."""
        return statistics.median(self.rates) if self.rates else 0.0

    @property
    def best(self) -> float:
        """Items per second of the fastest repeat."""
        return max(self.rates, default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "img_s": round(self.median, 3),
            "img_s_best": round(self.best, 3),
            "seconds_min": round(min(self.seconds, default=0.0), 6),
            "seconds_median": round(statistics.median(self.seconds), 6) if self.seconds else 0.0,
            "repeats": len(self.seconds),
            "seconds_all": [round(x, 6) for x in self.seconds],  # in the order they ran
            "img_s_all": [round(r, 3) for r in self.rates],
            "items_per_repeat": list(self.items),
            **self.extra,
        }


def time_repeats(
    run: Callable[[], int], *, warmup: int = 1, repeats: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> Throughput:
    """Calls `run()` `warmup` times untimed, then `repeats` times timed (by `clock`).

    `run` does one unit of work and returns how many items it processed; it must finish
    its work before returning (fetch a value from the device, exhaust the iterator).
    """
    for _ in range(warmup):
        run()
    items, seconds = [], []
    for _ in range(repeats):
        start = clock()
        n = run()
        seconds.append(clock() - start)
        items.append(int(n))
    return Throughput(tuple(items), tuple(seconds))


@dataclass(frozen=True)
class PassTiming:
    """One pass over a stream of batches: start-up and steady state kept apart."""

    images: int
    batches: int
    startup_s: float  # building the pipeline until the first batch is in hand
    steady_s: float  # first batch in hand until the stream is exhausted
    steady_images: int  # images after the first batch


def time_pass(make_batches: Callable[[], Iterable[int]],
              clock: Callable[[], float] = time.perf_counter) -> PassTiming:
    """Runs one pass: `make_batches()` builds the pipeline and yields images per batch.

    The first batch marks the end of start-up (pipeline construction, threads spinning
    up, first decode); the steady-state rate counts the batches after it. That keeps a
    fixed per-pass cost from swamping small benchmark datasets, while `startup_s` still
    reports it. What is buffered ahead at the first batch is at most a batch or so per
    worker, the same for every loader.
    """
    start = clock()
    it: Iterator[int] = iter(make_batches())
    try:
        first = next(it)
    except StopIteration:
        return PassTiming(0, 0, clock() - start, 0.0, 0)
    t_first = clock()
    images, batches = first, 1
    for n in it:
        images += n
        batches += 1
    end = clock()
    return PassTiming(images, batches, t_first - start, end - t_first, images - first)


def time_passes(
    make_batches: Callable[[], Iterable[int]], *, warmup: int = 1, repeats: int = 3
) -> Throughput:
    """Steady-state images/s over `repeats` full passes after `warmup` untimed passes.

    Extra fields: `startup_s_median` and `epoch_img_s` (images over the whole pass,
    start-up included: what a short epoch really gets).
    """
    for _ in range(warmup):
        time_pass(make_batches)
    return summarize_passes([time_pass(make_batches) for _ in range(repeats)])


def summarize_passes(passes: list[PassTiming]) -> Throughput:
    """The Throughput of timed passes (see `time_passes`)."""
    if not passes or any(p.batches < 2 for p in passes):
        raise ValueError("a timed pass needs at least 2 batches: use more files or smaller batches")
    whole = [p.images / (p.startup_s + p.steady_s) for p in passes]
    return Throughput(
        tuple(p.steady_images for p in passes),
        tuple(p.steady_s for p in passes),
        extra={
            "startup_s_median": round(statistics.median(p.startup_s for p in passes), 6),
            "epoch_img_s": round(statistics.median(whole), 3),
            "images_per_pass": passes[0].images,
            "batches_per_pass": passes[0].batches,
        },
    )


def settle(max_s: float = 3.0, window_s: float = 0.1, busy_fraction: float = 0.05, *,
           clock: Callable[[], float] = time.perf_counter,
           cpu_time: Callable[[], float] = time.process_time,
           sleep: Callable[[float], None] = time.sleep) -> float:
    """Let the previous pipeline's leftovers finish before the next pass starts; returns seconds.

    Abandoned iterators are collected (their pipelines and thread pools shut down), then this
    waits until the process has used under ``busy_fraction`` of a core for one ``window_s``
    (TensorFlow's thread pools spin for a while after work, which on two cores would be
    charged to whatever runs next), up to ``max_s``. Every pass gets the same treatment.
    The clocks and the sleep are parameters so a test can drive them.
    """
    start = clock()
    gc.collect()
    while clock() - start < max_s:
        cpu = cpu_time()
        sleep(window_s)
        if cpu_time() - cpu < busy_fraction * window_s:
            break
    return clock() - start


def time_passes_interleaved(
    makers: dict[str, Callable[[], Iterable[int]]], *, warmup: int = 1, repeats: int = 3,
    on_error: Callable[[str, Exception], None] | None = None,
) -> dict[str, Throughput]:
    """`time_passes` for several pipelines, pass r of each before pass r+1 of any.

    Load that drifts during the run then hits every pipeline alike, so their ratios hold.
    Each pass starts after `settle()`, so no pass pays for the one before it.
    A pipeline that raises is reported through `on_error(name, err)` and dropped (without
    `on_error` the exception propagates).
    """
    live = dict(makers)
    passes: dict[str, list[PassTiming]] = {name: [] for name in makers}

    def attempt(name: str, timed: bool) -> None:
        settle()
        try:
            got = time_pass(live[name])
        except Exception as err:
            if on_error is None:
                raise
            on_error(name, err)
            del live[name]
            return
        if timed:
            passes[name].append(got)

    for _ in range(warmup):
        for name in list(live):
            attempt(name, timed=False)
    for _ in range(repeats):
        for name in list(live):
            attempt(name, timed=True)
    out = {}
    for name in list(live):
        try:
            out[name] = summarize_passes(passes[name])
        except ValueError as err:
            if on_error is None:
                raise
            on_error(name, err)
    return out


def batch_sizes(batches: Iterable[Any]) -> Iterator[int]:
    """Images per batch of a stream of `(images, labels)` (tf.data, numpy or lists)."""
    for batch in batches:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        yield int(images.shape[0]) if hasattr(images, "shape") else len(images)
