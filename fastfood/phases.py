"""Phase timing for the cold start of predict (FASTFOOD_TIMING=1), to see where seconds go.

A cold `fastfood predict one.jpg` is dominated by fixed costs (importing TensorFlow, building
the model, reading ~550 MB of weights, the first forward pass), not by the image. Timing each
phase inside the process, measured from the process's own start as the kernel recorded it,
tells which one to cut; `benchmarks/predict.py` reads the line this prints.

Output: one line on stderr, `fastfood-timing {"phase": seconds, ...}` (JSON), phases in order,
plus `total` (process start to the report) and `before_main` (process start to the first mark:
the interpreter, click and fastfood's CLI, and TensorFlow's import when the CLI group does it
first: then `tensorflow_preloaded` is true), and `cpu`: the CPU seconds (all threads) of each
phase. On a machine shared with other work the wall times stretch but the CPU times barely
move, so they still say which phase to cut; compare them with the wall times of a quiet run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENV = "FASTFOOD_TIMING"
PREFIX = "fastfood-timing "


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc, 10 ms resolution), else None."""
    try:
        with open("/proc/self/stat") as f:
            stat = f.read()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        # Field 22 (starttime, clock ticks after boot); the command name (field 2) may hold
        # spaces, so count from its closing parenthesis.
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class PhaseTimer:
    """Wall-clock seconds per named phase; does nothing visible unless enabled."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = os.environ.get(ENV, "") not in ("", "0") if enabled is None else enabled
        self.phases: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.notes: dict[str, Any] = {}
        age = process_age() if self.enabled else None
        self._t0 = time.perf_counter()
        self._before = age

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Adds the time spent in the block to `name` (phases may repeat and accumulate)."""
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - start
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu

    def note(self, key: str, value: Any) -> None:
        """A fact to print with the phases (e.g. whether TensorFlow was imported already)."""
        self.notes[key] = value

    def report(self) -> dict[str, Any]:
        """The phases (plus `other`, `before_main`, `total`, `cpu`); printed if enabled."""
        elapsed = time.perf_counter() - self._t0
        out: dict[str, Any] = {k: round(v, 4) for k, v in self.phases.items()}
        out["other"] = round(max(0.0, elapsed - sum(self.phases.values())), 4)
        if self._before is not None:
            out["before_main"] = round(self._before, 4)
            out["total"] = round(self._before + elapsed, 4)
        else:
            out["total"] = round(elapsed, 4)
        out["cpu"] = {k: round(v, 4) for k, v in self.cpu.items()}
        out["cpu"]["process"] = round(time.process_time(), 4)
        out.update(self.notes)
        if self.enabled:
            print(PREFIX + json.dumps(out), file=sys.stderr, flush=True)
        return out
