"""Files that passed the preflight but failed to decode while a run was going: named, counted.

The preflight (``validate.py``) reads only headers and ends, so a file can pass it and still
fail inside its compressed data. A loader that meets such a file records it here instead of
dropping it silently; the training loop drains the log at its step boundaries, names each
file once, counts them in the run's summary, and stops the run under ``--strict``.
Thread-safe: tf.data calls ``add`` from its own threads. No TensorFlow here.
"""

from __future__ import annotations

import threading


class SkipLog:
    """An append-only list of ``(path, reason)``, with a cursor for what was already shown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[str, str]] = []
        self._seen: set[str] = set()
        self._shown = 0

    def add(self, path: str, reason: str) -> bool:
        """Record a file once (a file met again in a later epoch is not repeated)."""
        with self._lock:
            if path in self._seen:
                return False
            self._seen.add(path)
            self._items.append((path, reason))
            return True

    def drain(self) -> list[tuple[str, str]]:
        """The entries added since the last drain."""
        with self._lock:
            new = self._items[self._shown:]
            self._shown = len(self._items)
            return new

    def items(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
