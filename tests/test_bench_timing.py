"""fastfood.benchmark.timing and .machine: the helpers every benchmark shares."""

from __future__ import annotations

import json
import time

import pytest

from fastfood.benchmark import machine, timing


def test_time_repeats_counts_warmup_apart():
    calls = []

    def run() -> int:
        calls.append(1)
        time.sleep(0.01)
        return 5

    result = timing.time_repeats(run, warmup=2, repeats=3)
    assert len(calls) == 5
    assert result.items == (5, 5, 5) and len(result.seconds) == 3
    assert all(s >= 0.009 for s in result.seconds)
    assert 0 < result.median <= result.best <= 5 / 0.009


def test_throughput_median_and_best():
    t = timing.Throughput(items=(10, 10, 10), seconds=(1.0, 2.0, 0.5))
    assert t.median == pytest.approx(10.0)
    assert t.best == pytest.approx(20.0)
    d = t.to_dict()
    assert d["img_s"] == 10.0 and d["img_s_best"] == 20.0
    assert d["seconds_min"] == 0.5 and d["seconds_median"] == 1.0 and d["repeats"] == 3
    json.dumps(d)


def test_time_pass_separates_startup_from_steady_state():
    def batches():
        time.sleep(0.05)  # building the pipeline
        for _ in range(4):
            time.sleep(0.01)
            yield 8

    p = timing.time_pass(batches)
    assert p.images == 32 and p.batches == 4 and p.steady_images == 24
    assert p.startup_s >= 0.05
    assert p.steady_s >= 0.025  # three sleeps after the first batch


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


def test_settle_returns_at_once_when_idle_and_waits_out_a_busy_thread() -> None:
    import threading
    import time

    from fastfood.benchmark.timing import settle

    assert settle(max_s=2.0) < 0.5  # nothing running: one quiet window

    stop = time.perf_counter() + 0.6

    def spin() -> None:
        while time.perf_counter() < stop:
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    waited = settle(max_s=3.0)
    worker.join()
    assert 0.4 < waited < 2.5, waited  # waited for the spinning thread, not for max_s
