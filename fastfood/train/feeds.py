"""Where the training and evaluation batches come from, for the whole run.

The loop asks `TrainFeed.at(position)` for an iterator whose next element is that
position's batch, and `EvalFeed.batches()` for one validation pass; it never asks which
loader it got. Both take the run's `Plan` (placement, per-replica batch, shards) and one
`LoaderRequest` for a single pipeline, so the batch a request asks for is always one
pipeline's.

A DALI pipeline (nvJPEG handles, pinned buffers, threads) is built ONCE per replica for
training, reading every remaining epoch's order back to back from the start position, and
once per replica for evaluation, each pass reading one padded epoch of its reader; on the
GPU the datasets are handed over bare and the loop counts the steps. tf.data datasets are
cheap to make, so they are made per epoch and per pass: a file that fails to decode there
is skipped (and named), which can end an epoch a batch early, and a fresh dataset per
epoch keeps every later epoch on its own order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastfood.loaders.request import LoaderRequest
from fastfood.train import distribute
from fastfood.train.position import Position
from fastfood.train.setup import Plan


def decodes_on_gpu(kind: str) -> bool:
    """Whether this loader kind decodes on a GPU here (DALI with a GPU visible to TF)."""
    import tensorflow as tf

    return kind == "dali" and bool(tf.config.list_physical_devices("GPU"))


class _Feed:
    """What both feeds share: the strategy, the plan, one pipeline's request, the files."""

    def __init__(self, strategy: Any, plan: Plan, files: Sequence[str], labels: Sequence[int],
                 request: LoaderRequest):
        self.strategy, self.plan = strategy, plan
        self.files, self.labels = list(files), list(labels)
        self.request = request.but(batch_size=plan.per_replica_batch, pipelines=plan.pipelines)
        self.long_lived = request.kind == "dali"
        self.builds = 0  # datasets made so far (the tests count them)

    def _distribute(self, **request: Any) -> Any:
        from fastfood import loaders

        def dataset_fn(shard: tuple[int, int], size: int, device: str) -> Any:
            req = self.request.but(shard=shard, batch_size=size, endless=self.long_lived,
                                   device=device if self.plan.on_device else "cpu", **request)
            return loaders.build_request(req, self.files, self.labels)

        self.builds += 1
        return distribute.distribute(self.strategy, dataset_fn, self.plan.per_replica_batch,
                                     placement=self.plan.placement, on_device=self.plan.on_device)


class TrainFeed(_Feed):
    """Iterators over the training batches, positioned anywhere in the run."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._iterator: Any = None
        self._next: Position | None = None

    def at(self, pos: Position) -> Any:
        """An iterator whose next element is the batch of `pos` (a position at which the
        previous epoch's iterator ran out continues the long-lived one)."""
        if self.long_lived and self._next == pos:
            self._next = pos.next_epoch()
            return self._iterator
        epochs = self.plan.num_epochs - pos.epoch if self.long_lived else 1
        data = self._distribute(training=True, epoch=pos.epoch, epochs=max(1, epochs),
                                skip_batches=pos.batch_in_epoch * self.plan.batches_per_step)
        self._iterator = iter(data)
        self._next = Position(pos.step + self.plan.steps_per_epoch - pos.batch_in_epoch, pos.epoch + 1) \
            if self.long_lived else None
        return self._iterator


class EvalFeed(_Feed):
    """One validation pass at a time; DALI's pipelines are made on the first pass and kept."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._iterator: Any = None
        self._steps: int | None = None

    def replace_files(self, files: Sequence[str], labels: Sequence[int]) -> None:
        """Evaluate on another file list from the next pass on (bad files left out)."""
        self.files, self.labels, self._iterator = list(files), list(labels), None

    def batches(self) -> tuple[Any, int | None]:
        """(iterable of distributed batches, steps to take from it or None for all)."""
        if self.long_lived and self._iterator is not None:
            return self._iterator, self._steps
        data = self._distribute(training=False)
        if not self.long_lived:
            return data, None
        from fastfood import loaders
        from fastfood.loaders import dali as dali_loader

        good = len(loaders.preflight(self.files, self.request.max_pixels)[0])
        self._steps = dali_loader.steps(good, self.request.but(training=False,
                                                               shard=(0, self.plan.shards)))
        self._iterator = iter(data)
        return self._iterator, self._steps
