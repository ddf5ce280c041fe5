"""Dynamic batching: images from concurrent requests share one forward pass.

A request first takes slots (`admit`), one per image, before its body is read; with
`max_queue` slots taken it gets `QueueFull` (the app answers 503 with Retry-After), so a
flood of requests costs a refusal each, never memory. Admitted images are decoded by the
caller, then handed to `predict`, which queues them for the gathering loop:

- the loop takes the oldest image and waits until `max_batch` images are queued or the
  oldest has waited `max_wait_s`, whichever comes first;
- it runs one forward pass over them on its own thread (the event loop stays free to accept
  and decode the next requests meanwhile), then answers each waiting request.

Under load the queue fills while a pass runs, so the next pass starts full without waiting;
an idle server answers a lone request after at most `max_wait_s`.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RunBatch = Callable[[np.ndarray], np.ndarray]


class QueueFull(Exception):
    """No room for the request's images; `retry_after` is the wait (s) worth suggesting."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"queue full, retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class BatchStats:
    """Counters for /healthz and the benchmark."""

    batches: int = 0
    images: int = 0
    rejected: int = 0
    largest_batch: int = 0
    img_s: float = 0.0  # forward-pass throughput, exponentially averaged
    sizes: collections.Counter[int] = field(default_factory=collections.Counter)

    def record(self, n: int, seconds: float) -> None:
        self.batches += 1
        self.images += n
        self.largest_batch = max(self.largest_batch, n)
        self.sizes[n] += 1
        rate = n / max(seconds, 1e-6)
        self.img_s = rate if self.img_s == 0 else 0.8 * self.img_s + 0.2 * rate


class Batcher:
    """Gathers single images into batches of at most max_batch for `run_batch`."""

    def __init__(self, run_batch: RunBatch, *, max_batch: int, max_wait_s: float,
                 max_queue: int) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.admitted = 0  # slots taken: images being read, decoded, queued or in a pass
        self.stats = BatchStats()
        self._queue: collections.deque[tuple[np.ndarray, asyncio.Future[Any], float]] = \
            collections.deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fastfood-forward")

    # --- admission ----------------------------------------------------------------------

    def admit(self, n: int = 1) -> None:
        """Take n slots, or raise QueueFull (taking none)."""
        if self.admitted + n > self.max_queue:
            self.stats.rejected += 1
            raise QueueFull(self.retry_after())
        self.admitted += n

    def release(self, n: int = 1) -> None:
        """Give back n slots (when the images are answered or refused)."""
        self.admitted = max(0, self.admitted - n)

    def retry_after(self) -> int:
        """Seconds until the admitted work should be done, at the recent pass rate (1-60)."""
        rate = self.stats.img_s or 1.0
        return int(min(60, max(1, math.ceil(self.admitted / rate))))

    # --- batching -----------------------------------------------------------------------

    async def predict(self, image: np.ndarray) -> np.ndarray:
        """The forward pass's output row for one image, batched with whatever else waits."""
        if self._task is None:
            raise RuntimeError("Batcher.start() was not called")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((image, future, time.monotonic()))
        self._arrived.set()
        return await future

    def queued(self) -> int:
        """Images decoded and waiting for a forward pass."""
        return len(self._queue)

    def start(self) -> None:
        """Start the gathering loop on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop gathering; queued requests get an error instead of hanging."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._queue:
            _, future, _ = self._queue.popleft()
            if not future.done():
                future.set_exception(RuntimeError("server is shutting down"))
        self._pool.shutdown(wait=True)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            deadline = self._queue[0][2] + self.max_wait_s
            while len(self._queue) < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except asyncio.TimeoutError:  # builtin TimeoutError from 3.11 on
                    break
            take = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            take = [item for item in take if not item[1].done()]  # callers that gave up
            if not take:
                continue
            images = np.stack([image for image, _, _ in take])
            start = time.perf_counter()
            try:
                rows = await loop.run_in_executor(self._pool, self.run_batch, images)
            except Exception as err:  # noqa: BLE001 - handed to every waiting request
                for _, future, _ in take:
                    if not future.done():
                        future.set_exception(err)
                continue
            self.stats.record(len(take), time.perf_counter() - start)
            for (_, future, _), row in zip(take, rows):
                if not future.done():
                    future.set_result(row)
