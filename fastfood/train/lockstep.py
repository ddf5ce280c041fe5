"""Decisions every worker must take together: stop on a signal, save on a timer.

In a multi-worker run every step, every save and every validation is a collective: a
worker that stops, or saves, on its own leaves the others waiting in a collective that
never completes. So a decision that starts on one worker (a SIGTERM that reached it, its
own clock saying a save is due) is only a wish until the workers agree: at agreed step
boundaries each worker contributes its wishes to one small all-reduce, and all of them act
on the sum. One process (no cluster) decides alone at every step, for free.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopFlag:
    """SIGINT/SIGTERM set a flag that the loop checks at step boundaries.

    The step in flight finishes, a checkpoint is written and the run exits cleanly. A
    second signal of the same kind acts as usual (KeyboardInterrupt, termination), which
    is safe: checkpoints are committed atomically.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT
                      else signal.SIG_DFL)

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""


class Lockstep:
    """Agree on (stop, save) across workers; `every` steps apart in a cluster."""

    def __init__(self, strategy: Any, *, multi_worker: bool, every: int):
        self.multi_worker = multi_worker
        self.every = max(1, every) if multi_worker else 1
        self._agree = _make_agree(strategy) if multi_worker else None

    def due(self, step: int) -> bool:
        """Whether this step boundary is one where the workers compare wishes."""
        return step % self.every == 0

    def agree(self, *wishes: bool) -> tuple[bool, ...]:
        """The wishes (stop, save, out of time, ...) as agreed by every worker; call on
        every worker at the same boundary. A wish of any worker is every worker's."""
        if self._agree is None:
            return tuple(bool(w) for w in wishes)
        import tensorflow as tf

        total = self._agree(tf.constant([float(w) for w in wishes], tf.float32)).numpy()
        return tuple(bool(t > 0) for t in total)

    def mean(self, value: float) -> float:
        """The mean of `value` over the workers (each contributes it once), the same on
        every worker; call on every worker at the same boundary."""
        if self._agree is None:
            return float(value)
        import tensorflow as tf

        total = self._agree(tf.constant([float(value), 1.0], tf.float64)).numpy()
        return float(total[0] / total[1])


def _make_agree(strategy: Any) -> Any:
    """A tf.function summing a small vector over every replica of the cluster."""
    import tensorflow as tf

    local = len(strategy.extended.worker_devices)

    @tf.function
    def agree(wishes: Any) -> Any:
        # Each worker's wishes enter once: its replicas each carry 1/local of them.
        per_replica = strategy.run(lambda: wishes / float(local))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return agree
