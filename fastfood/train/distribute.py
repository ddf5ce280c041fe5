"""Which tf.distribute strategy to train under, and how each replica gets its own input.

One code path for one device and many: the default strategy on one device,
MirroredStrategy over several local GPUs, MultiWorkerMirroredStrategy when TF_CONFIG
describes a cluster. Every replica reads its own shard of the files through its own
loader (so a DALI pipeline can sit on its replica's GPU); the loss is averaged over the
global batch and the optimizer sums gradients across replicas, so the update equals the
one-device update on the same global batch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable

from fastfood.errors import FastfoodError

DatasetFn = Callable[[tuple[int, int], int], Any]  # (shard, per_replica_batch) -> tf.data.Dataset


@dataclass(frozen=True)
class Layout:
    """How the global batch is split: replicas in sync and input pipelines feeding them."""

    kind: str  # default | mirrored | multi-worker
    num_replicas: int
    num_pipelines: int  # per-replica pipelines (mirrored) or one per worker (multi-worker)
    replicas_per_pipeline: int  # >1 only for a multi-worker cluster with several GPUs a worker

    def per_replica_batch(self, global_batch: int) -> int:
        if global_batch % self.num_replicas:
            raise FastfoodError(
                f"--batch-size {global_batch} must be a multiple of the {self.num_replicas} "
                "replicas training in sync"
            )
        return global_batch // self.num_replicas


def make_strategy(devices: list[str] | None = None) -> Any:
    """The strategy for this machine (or cluster); `devices` forces a MirroredStrategy.

    GPU memory growth is switched on first so TensorFlow leaves room for DALI's own
    allocations on the same GPU.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised (a second run in the same process)
            pass
    if os.environ.get("TF_CONFIG"):
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as err:
            raise FastfoodError(f"TF_CONFIG is not valid JSON: {err}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    if devices:
        return tf.distribute.MirroredStrategy(devices=devices)
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def layout(strategy: Any) -> Layout:
    """Replica and pipeline counts of a strategy."""
    import tensorflow as tf

    replicas = int(strategy.num_replicas_in_sync)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        spec = strategy.cluster_resolver.cluster_spec()
        workers = max(1, sum(spec.num_tasks(job) for job in ("chief", "worker") if job in spec.jobs))
        return Layout("multi-worker", replicas, workers, max(1, replicas // workers))
    if replicas > 1:
        return Layout("mirrored", replicas, replicas, 1)
    return Layout("default", 1, 1, 1)


def describe(strategy: Any) -> str:
    """One line for the start-up banner."""
    lay = layout(strategy)
    if lay.kind == "default":
        return "one device"
    devices = ", ".join(strategy.extended.worker_devices)
    if lay.kind == "mirrored":
        return f"MirroredStrategy over {lay.num_replicas} replicas ({devices})"
    return (
        f"MultiWorkerMirroredStrategy: {lay.num_pipelines} workers, "
        f"{lay.num_replicas} replicas in all"
    )


def distribute(strategy: Any, dataset_fn: DatasetFn, global_batch: int, *,
               on_device: bool = False) -> Any:
    """An iterable whose elements are one global batch, split across the replicas.

    `dataset_fn(shard, batch)` builds one pipeline: the shard (index, count) of the files
    it reads and its per-replica batch size. `on_device` places each pipeline on its
    replica's device (DALI with device='mixed'); otherwise pipelines run on the host and
    TensorFlow prefetches their batches to the replica devices.
    """
    import tensorflow as tf

    lay = layout(strategy)
    per_replica = lay.per_replica_batch(global_batch)
    if lay.kind == "default":
        return dataset_fn((0, 1), per_replica)

    def fn(ctx: Any) -> Any:
        return dataset_fn((ctx.input_pipeline_id, ctx.num_input_pipelines), per_replica)

    if lay.kind == "mirrored":
        options = tf.distribute.InputOptions(
            experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA,
            experimental_place_dataset_on_device=on_device,
            experimental_fetch_to_device=not on_device,
        )
    else:
        options = tf.distribute.InputOptions()
    return strategy.distribute_datasets_from_function(fn, options)


def worker_id(strategy: Any) -> tuple[bool, int]:
    """(is_chief, task index): only the chief writes logs and the run's checkpoints.

    Other workers of a multi-worker cluster still take part in every save (the save is a
    collective) but write into a scratch folder of their own.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True, 0
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    has_chief = "chief" in resolver.cluster_spec().jobs
    chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)
    return chief, task_id
