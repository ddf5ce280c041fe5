"""Run check images through the artifacts just written and the run itself, side by side.

For each image the run's own float32 forward pass (`inference.forward.Forward`, what predict
computes, at the same temperature) and each artifact see the very same uint8 pixels, so a
difference is the artifact's alone. Reported per artifact: top-1 agreement with the run,
the largest difference of any class probability, and the SavedModel's bytes-in signature's
top-1 agreement (it decodes the files itself); plus speed on this machine: latency at
batch 1 and throughput at the check's batch size (its first batch), each the median of
TIMED_RUNS rounds after two warm-ups, the run and every artifact taking turns in each
round. The run's forward pass is timed the same way, so the rows compare.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastfood.export.artifact import Artifact

TIMED_RUNS = 10


@dataclass
class Tally:
    """One artifact's running figures over the check batches."""

    name: str
    file: str = ""
    min_agreement: float = 0.0
    n: int = 0
    agreed: int = 0
    bytes_agreed: int | None = None
    max_prob_diff: float = 0.0
    latency_ms: float = float("nan")
    throughput: float = float("nan")  # images per second at the check's batch size
    about: dict[str, Any] = field(default_factory=dict)

    @property
    def agreement(self) -> float:
        return self.agreed / self.n if self.n else float("nan")

    @property
    def bytes_agreement(self) -> float | None:
        return None if self.bytes_agreed is None or not self.n else self.bytes_agreed / self.n

    @property
    def passed(self) -> bool:
        floor = self.min_agreement
        return (self.n > 0 and self.agreement >= floor
                and (self.bytes_agreement is None or self.bytes_agreement >= floor))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "images": self.n,
                "top1_agreement": self.agreement, "bytes_top1_agreement": self.bytes_agreement,
                "max_prob_diff": self.max_prob_diff, "min_agreement": self.min_agreement,
                "passed": self.passed, "latency_ms_batch1": self.latency_ms,
                "throughput_img_s": self.throughput, **self.about}


@dataclass
class CheckResult:
    """The check of one export: what it ran on, the run's own figures, each artifact's."""

    sample: str
    batch_size: int
    skipped: list[tuple[str, str]]
    reference: Tally
    artifacts: list[Tally]
    precision: str = "fp32"  # what the artifacts compute in; the reference is float32

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.artifacts)

    def failures(self) -> list[str]:
        """One line per artifact under its tolerance."""
        lines = []
        for a in self.artifacts:
            if a.passed:
                continue
            worst = min(x for x in (a.agreement, a.bytes_agreement) if x is not None)
            lines.append(f"{a.name} agrees with the run on {worst:.1%} of {a.n} images "
                         f"(needs {a.min_agreement:.1%}; largest probability difference "
                         f"{a.max_prob_diff:.3f})")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"sample": self.sample, "batch_size": self.batch_size, "passed": self.passed,
                "precision": self.precision,
                "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
                "reference": self.reference.to_json(),
                "artifacts": [a.to_json() for a in self.artifacts]}


@dataclass(frozen=True)
class CheckBatch:
    """uint8 pixels [n, S, S, 3] and, for formats that decode, the files' bytes."""

    pixels: np.ndarray
    contents: Sequence[bytes] | None = None


def run_check(artifacts: Sequence[Artifact], reference: Callable[[np.ndarray], np.ndarray],
              batches: Iterable[CheckBatch], *, sample: str, batch_size: int,
              skipped: list[tuple[str, str]]) -> CheckResult:
    """Tally every artifact against `reference` over `batches`, then time them all."""
    ref = Tally("run (keras, float32)", min_agreement=1.0)
    tallies = [Tally(a.name, a.file, a.min_agreement,
                     bytes_agreed=0 if a.top1_of_bytes else None, about=dict(a.about))
               for a in artifacts]
    first: np.ndarray | None = None
    for batch in batches:
        if first is None:
            first = batch.pixels
        want = np.asarray(reference(batch.pixels))
        ref.n += len(want)
        ref.agreed += len(want)
        top = want.argmax(axis=-1)
        for a, t in zip(artifacts, tallies):
            got = np.asarray(a.probs(batch.pixels))
            t.n += len(got)
            t.agreed += int((got.argmax(axis=-1) == top).sum())
            t.max_prob_diff = max(t.max_prob_diff, float(np.abs(got - want).max()))
            if a.top1_of_bytes is not None and batch.contents is not None:
                t.bytes_agreed = (t.bytes_agreed or 0) + int(
                    (a.top1_of_bytes(batch.contents) == top).sum())
    if first is not None:
        fns = [reference, *(a.probs for a in artifacts)]
        every = [ref, *tallies]
        for t, ms in zip(every, median_seconds(fns, first[:1])):
            t.latency_ms = 1000.0 * ms
        for t, sec in zip(every, median_seconds(fns, first)):
            t.throughput = len(first) / sec
    return CheckResult(sample, batch_size, skipped, ref, tallies)


def median_seconds(fns: Sequence[Callable[[np.ndarray], np.ndarray]], pixels: np.ndarray,
                   runs: int = TIMED_RUNS) -> list[float]:
    """Median seconds of each `fn(pixels)` over `runs` rounds after two warm-up rounds; the
    functions take turns within a round, so a busy moment of a shared machine hits all."""
    times: list[list[float]] = [[] for _ in fns]
    for round_ in range(runs + 2):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            np.asarray(fn(pixels))
            if round_ >= 2:
                spent.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]
