"""Where the training and evaluation batches come from, for the whole run.

The loop asks `TrainFeed.at(epoch, batch)` for an iterator at a position of the run and
`EvalFeed.batches()` for one validation pass; it never asks which loader it got.

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


def decodes_on_gpu(kind: str) -> bool:
    """Whether this loader kind decodes on a GPU here (DALI with a GPU visible to TF)."""
    import tensorflow as tf

    return kind == "dali" and bool(tf.config.list_physical_devices("GPU"))


class TrainFeed:
    """Iterators over the training batches, positioned at (epoch, batch in epoch)."""

    def __init__(self, strategy: Any, files: Sequence[str], labels: Sequence[int],
                 request: LoaderRequest, *, global_batch: int, num_epochs: int,
                 on_device: bool | None = None):
        self.strategy, self.files, self.labels = strategy, list(files), list(labels)
        self.request, self.global_batch, self.num_epochs = request, global_batch, num_epochs
        self.layout = distribute.layout(strategy)
        self.on_device = decodes_on_gpu(request.kind) if on_device is None else on_device
        self.long_lived = request.kind == "dali"
        self.builds = 0  # datasets made so far (the tests count them)
        self._iterator: Any = None
        self._next: tuple[int, int] | None = None

    def at(self, epoch: int, batch: int) -> Any:
        """An iterator whose next element is batch `batch` of epoch `epoch`."""
        if self.long_lived and self._next == (epoch, batch):
            self._next = (epoch + 1, 0)
            return self._iterator
        epochs = self.num_epochs - epoch if self.long_lived else 1
        k = self.layout.replicas_per_pipeline

        def dataset_fn(shard: tuple[int, int], size: int, device: str) -> Any:
            from fastfood import loaders

            req = self.request.but(
                training=True, batch_size=size, shard=shard, epoch=epoch,
                epochs=max(1, epochs), skip_batches=batch * k, endless=self.long_lived,
                pipelines=self.layout.local_replicas,
                device=device if self.on_device else "cpu")
            return loaders.build_request(req, self.files, self.labels)

        data = distribute.distribute(self.strategy, dataset_fn, self.global_batch,
                                     on_device=self.on_device)
        self.builds += 1
        self._iterator = iter(data)
        self._next = (epoch + 1, 0) if self.long_lived else None
        return self._iterator


class EvalFeed:
    """One validation pass at a time; DALI's pipelines are made on the first pass and kept."""

    def __init__(self, strategy: Any, files: Sequence[str], labels: Sequence[int],
                 request: LoaderRequest, *, global_batch: int, on_device: bool | None = None):
        self.strategy, self.files, self.labels = strategy, list(files), list(labels)
        self.request, self.global_batch = request, global_batch
        self.on_device = decodes_on_gpu(request.kind) if on_device is None else on_device
        self.long_lived = request.kind == "dali"
        self.builds = 0
        self._iterator: Any = None
        self._steps: int | None = None

    def replace_files(self, files: Sequence[str], labels: Sequence[int]) -> None:
        """Evaluate on another file list from the next pass on (bad files left out)."""
        self.files, self.labels, self._iterator = list(files), list(labels), None

    def batches(self) -> tuple[Any, int | None]:
        """(iterable of distributed batches, steps to take from it or None for all)."""
        if self.long_lived and self._iterator is not None:
            return self._iterator, self._steps
        from fastfood import loaders
        from fastfood.loaders import dali as dali_loader

        def dataset_fn(shard: tuple[int, int], size: int, device: str) -> Any:
            req = self.request.but(training=False, batch_size=size, shard=shard,
                                   endless=self.long_lived,
                                   pipelines=distribute.layout(self.strategy).local_replicas,
                                   device=device if self.on_device else "cpu")
            return loaders.build_request(req, self.files, self.labels)

        data = distribute.distribute(self.strategy, dataset_fn, self.global_batch,
                                     on_device=self.on_device)
        self.builds += 1
        if not self.long_lived:
            return data, None
        layout = distribute.layout(self.strategy)
        per_pipeline = layout.per_replica_batch(self.global_batch)
        good = len(loaders.preflight(self.files)[0])
        shards = (layout.num_replicas if isinstance(data, distribute.LocalReplicas)
                  else layout.num_pipelines)
        self._steps = dali_loader.steps(good, self.request.but(
            training=False, batch_size=per_pipeline, shard=(0, shards)))
        self._iterator = iter(data)
        return self._iterator, self._steps
