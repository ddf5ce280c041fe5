"""fastfood.benchmark.timing and .machine: the helpers every benchmark shares."""

from __future__ import annotations

import json

import pytest

from fastfood import machine
from fastfood.benchmark import timing


class FakeClock:
    """Time that passes only when the code under test says so (advance)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_time_repeats_counts_warmup_apart():
    clock, calls = FakeClock(), []
    durations = iter([9.0, 9.0, 0.5, 0.25, 1.0])  # two slow warm-ups, then the repeats

    def run() -> int:
        calls.append(1)
        clock.advance(next(durations))
        return 5

    result = timing.time_repeats(run, warmup=2, repeats=3, clock=clock)
    assert len(calls) == 5
    assert result.items == (5, 5, 5) and result.seconds == (0.5, 0.25, 1.0)
    assert result.median == 10.0 and result.best == 20.0


def test_throughput_median_and_best():
    t = timing.Throughput(items=(10, 10, 10), seconds=(1.0, 2.0, 0.5))
    assert t.median == pytest.approx(10.0)
    assert t.best == pytest.approx(20.0)
    d = t.to_dict()
    assert d["img_s"] == 10.0 and d["img_s_best"] == 20.0
    assert d["seconds_min"] == 0.5 and d["seconds_median"] == 1.0 and d["repeats"] == 3
    json.dumps(d)


def test_time_pass_separates_startup_from_steady_state():
    clock = FakeClock()

    def batches():
        clock.advance(0.5)  # building the pipeline
        for _ in range(4):
            clock.advance(0.125)
            yield 8

    p = timing.time_pass(batches, clock=clock)
    assert p.images == 32 and p.batches == 4 and p.steady_images == 24
    assert p.startup_s == 0.625  # construction and the first batch
    assert p.steady_s == 0.375  # the three batches after it


def test_time_passes_reports_steady_and_epoch_rates():
    built = []

    def make():
        built.append(1)
        return iter([4, 4, 4, 2])

    result = timing.time_passes(make, warmup=1, repeats=2)
    assert len(built) == 3
    d = result.to_dict()
    assert d["items_per_repeat"] == [10, 10] and d["images_per_pass"] == 14
    assert d["batches_per_pass"] == 4 and d["img_s"] > 0 and d["epoch_img_s"] > 0


def test_time_passes_needs_two_batches():
    with pytest.raises(ValueError, match="at least 2 batches"):
        timing.time_passes(lambda: iter([8]), warmup=0, repeats=1)


def test_batch_sizes_reads_shapes_and_lengths():
    import numpy as np

    stream = [(np.zeros((3, 2)), [0, 1, 2]), ([1, 2], [0, 1]), np.zeros((5, 1))]
    assert list(timing.batch_sizes(stream)) == [3, 2, 5]


def test_cpu_info_parses_model_and_flags(tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 fma\n\n"
                    "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n")
    info = machine.cpu_info(fake)
    assert info == {"model": "Test CPU 9000", "flags": ["fpu", "avx2", "fma"]}
    assert machine.cpu_info(tmp_path / "missing")["model"]  # falls back, never empty


def test_machine_info_is_complete_and_json():
    info = machine.machine_info(with_gpus=False)
    for key in ("cpu_model", "cpu_flags", "cores", "memory_gib", "gpus", "versions",
                "load_average_before"):
        assert key in info
    assert info["cores"] >= 1 and isinstance(info["cpu_flags"], list)
    assert info["versions"]["python"].count(".") == 2
    assert info["versions"]["tensorflow"] and info["versions"]["keras"]
    assert "fastfood" in info["versions"]
    json.dumps(info)


def test_machine_info_lists_gpus_through_tensorflow():
    import tensorflow as tf

    gpus = machine.gpus()
    assert len(gpus) == len(tf.config.list_physical_devices("GPU"))


def test_dali_version_is_found_by_its_prefix():
    from fastfood.loaders import dali_available

    versions = machine.versions()
    if dali_available():
        assert versions["nvidia-dali"].split()[0].count(".") >= 1
        assert versions["nvidia-dali-tf-plugin"]


def test_busy_warning():
    assert machine.busy_warning({"load_average_before": [0.1, 0, 0], "cores": 2}) is None
    assert "busy" in machine.busy_warning({"load_average_before": [3.0, 0, 0], "cores": 2})
    assert machine.busy_warning({"load_average_before": [], "cores": 2}) is None


def test_run_interleaved_alternates_and_drops_failures():
    from fastfood.benchmark.train import Runner, TrainSetup, run_interleaved

    calls: list[str] = []

    def runner(name: str, fail_on: int = 0) -> Runner:
        count = iter(range(1, 100))

        def repeat() -> float:
            calls.append(name)
            if next(count) == fail_on:
                raise RuntimeError("broke\nsecond line")
            return 0.5

        return Runner(name, lambda: calls.append(f"warm {name}"), repeat, {"x": name})

    setup = TrainSetup(num_classes=2, batch_size=4, steps=3, repeats=3)
    errors: dict[str, str] = {}
    got = run_interleaved([runner("a"), runner("b", fail_on=2), runner("c")], setup, errors)
    assert calls == ["warm a", "warm b", "warm c", "a", "b", "c", "a", "b", "c", "a", "c"]
    assert set(got) == {"a", "c"} and errors == {"b": "RuntimeError: broke"}
    assert got["a"].items == (12, 12, 12) and got["a"].seconds == (0.5, 0.5, 0.5)
    assert got["c"].median == 24.0 and got["c"].extra == {"x": "c"}
    with pytest.raises(RuntimeError):
        run_interleaved([runner("d", fail_on=1)], setup)


def test_steps_per_execution_divides_the_steps():
    from fastfood.benchmark.train import steps_per_execution

    assert [steps_per_execution(n) for n in (1, 4, 7, 10, 20, 24)] == [1, 4, 7, 5, 5, 8]


def test_time_passes_interleaved_alternates_and_reports_failures():
    order: list[str] = []

    def maker(name: str, fail_at: int = 0):
        count = iter(range(1, 100))

        def make():
            order.append(name)
            if next(count) == fail_at:
                raise OSError("gone")
            return iter([2, 2, 1])

        return make

    failures = {}
    got = timing.time_passes_interleaved(
        {"a": maker("a"), "b": maker("b", fail_at=2), "c": maker("c")}, warmup=1, repeats=2,
        on_error=lambda name, err: failures.setdefault(name, str(err)))
    # warm-up a, b, c; pass 1 a, b (fails), c; pass 2 without b
    assert order == ["a", "b", "c", "a", "b", "c", "a", "c"]
    assert set(got) == {"a", "c"} and failures == {"b": "gone"}
    assert got["a"].to_dict()["images_per_pass"] == 5 and got["a"].items == (3, 3)


class FakeProcess:
    """A wall clock that only sleep() moves, and a CPU clock that advances by `busy[i]`
    core-seconds during the i-th sleep (0 once the list runs out)."""

    def __init__(self, busy: list[float]) -> None:
        self.now, self.cpu, self.busy, self.sleeps = 0.0, 0.0, list(busy), 0

    def clock(self) -> float:
        return self.now

    def cpu_time(self) -> float:
        return self.cpu

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.cpu += self.busy[self.sleeps] if self.sleeps < len(self.busy) else 0.0
        self.sleeps += 1


def _settle(process: FakeProcess, max_s: float) -> float:
    from fastfood.benchmark.timing import settle

    return settle(max_s=max_s, window_s=0.125, busy_fraction=0.05, clock=process.clock,
                  cpu_time=process.cpu_time, sleep=process.sleep)


def test_settle_returns_after_one_quiet_window_when_idle() -> None:
    idle = FakeProcess(busy=[0.005])  # under 5 % of a core for one 0.125 s window
    assert _settle(idle, max_s=2.0) == 0.125 and idle.sleeps == 1


def test_settle_waits_out_a_busy_thread_then_stops() -> None:
    # A thread spinning a whole core for three windows, then nothing.
    spinning = FakeProcess(busy=[0.125, 0.125, 0.125, 0.0])
    assert _settle(spinning, max_s=3.0) == 0.5 and spinning.sleeps == 4


def test_settle_gives_up_at_max_s_when_never_quiet() -> None:
    always = FakeProcess(busy=[0.125] * 100)
    assert _settle(always, max_s=1.0) == 1.0 and always.sleeps == 8
