"""When a run ends before its schedule does: patience on val top-1, and a time budget.

Both only say what each worker wishes; the loop has the workers agree (`lockstep`) before
it acts, as it does for a signal. Patience reads the validation results, which are sums
all-reduced over the cluster and so the same on every worker. The time budget reads each
worker's own clock, so its wishes (out of time; how many steps fit) are agreed: any
worker out of time stops all, and the fitted length is the mean of the workers' estimates.

Their state (validations without improvement, seconds trained, the fitted length) is saved
in every checkpoint, so a resumed run counts on from where the saved one was.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

#: Steps timed at least before the schedule is fitted to the time left (after the first
#: step of the process, which compiles). The fit also waits for the first validation, so
#: the time measured includes one (a run validates once an epoch), or for FIT_BY_SHARE of
#: the limit when an epoch is long. The time check at every agreed boundary is the backstop.
FIT_AFTER_STEPS = 10
FIT_BY_SHARE = 0.2
#: The share of the time left the fitted steps may take: room for the validations, saves
#: and the final one that the timed steps did not include.
FIT_SHARE = 0.9


@dataclass
class Patience:
    """Validations in a row without a new best top-1; spent at `limit` (0: never)."""

    limit: int = 0
    bad: int = 0

    def record(self, improved: bool) -> None:
        self.bad = 0 if improved else self.bad + 1

    @property
    def spent(self) -> bool:
        return self.limit > 0 and self.bad >= self.limit


@dataclass
class TimeBudget:
    """Seconds this run may train in all (`limit_s`, 0: no limit), counting `used_s` from
    before a resume; `fitted` is the schedule's length once fitted to the time (0: not yet)."""

    limit_s: float = 0.0
    used_s: float = 0.0
    fitted: int = 0
    _start: float = field(default_factory=lambda: time.monotonic())
    _timing: tuple[int, float] | None = None  # (step, clock) after this process's first step
    _validated: bool = False  # a validation ran since the clock started
    fit: dict | None = None  # what the fit found, for summary.json

    def elapsed(self) -> float:
        """Seconds trained so far, before a resume included."""
        return self.used_s + time.monotonic() - self._start

    def stepped(self, step: int) -> None:
        """Note a step done; the first one of the process (it compiles) starts the clock
        the step time is measured on."""
        if self._timing is None:
            self._timing = (step, time.monotonic())

    @property
    def out_of_time(self) -> bool:
        return self.limit_s > 0 and self.elapsed() >= self.limit_s

    def validated(self) -> None:
        """Note a validation (its time is then part of what the fit measures)."""
        self._validated = self._timing is not None

    def wants_fit(self, step: int) -> bool:
        """Whether this worker has timed enough to fit the schedule: FIT_AFTER_STEPS steps
        and a validation, or FIT_BY_SHARE of the limit (its clock: a wish to agree on)."""
        if self.limit_s <= 0 or self.fitted or self._timing is None \
                or step < self._timing[0] + FIT_AFTER_STEPS:
            return False
        return self._validated or \
            time.monotonic() - self._timing[1] >= FIT_BY_SHARE * self.limit_s

    def estimate(self, step: int, planned: int) -> float:
        """The schedule's length this worker's clock says fits: the steps done, plus those
        the time left holds at the measured step time, never beyond `planned`."""
        first, clock = self._timing or (step, time.monotonic())
        per_step = (time.monotonic() - clock) / max(1, step - first)
        left = max(0.0, self.limit_s - self.elapsed()) * FIT_SHARE
        return float(min(planned, step + max(1, math.floor(left / max(per_step, 1e-9)))))

    def settle(self, step: int, planned: int, agreed: float) -> int:
        """Record the length the workers agreed on; returns it."""
        self.fitted = max(step + 1, min(planned, int(math.floor(agreed))))
        self.fit = {"at_step": step, "planned_steps": planned, "fitted_steps": self.fitted,
                    "limit_s": self.limit_s, "elapsed_s": round(self.elapsed(), 2)}
        return self.fitted
