"""Which tf.distribute strategy to train under, and how each replica gets its own input.

One code path for one device and many: the default strategy on one device,
MirroredStrategy over several local GPUs, MultiWorkerMirroredStrategy when TF_CONFIG
describes a cluster (NCCL collectives on GPUs). Every replica reads its own shard of the
files through its own loader; the loss is averaged over the global batch and the
optimizer sums gradients across replicas, so the update equals the one-device update on
the same global batch.

Input placement (`distribute`, by the run plan's `placement`), for a loader that decodes on
the GPU (DALI, `on_device`):
- one device (single): the dataset is made for `/gpu:0` and its iterator under `tf.device`;
- MirroredStrategy (mirrored): DALI's documented recipe, `distribute_datasets_from_function` with
  PER_REPLICA replication, the dataset placed on the replica's device and not fetched
  again, the GPU index taken from the replica's device;
- MultiWorkerMirroredStrategy (replicas), which refuses PER_REPLICA input: this worker builds one
  pipeline per local GPU itself, each iterator made under its GPU, and hands the step
  one batch per local replica through `experimental_distribute_values_from_function`.
Host-side loaders (tf.data, DALI's CPU backend; worker) go through `distribute_datasets_from_function`
and TensorFlow copies their batches to the replicas.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable

from fastfood.errors import FastfoodError

# (shard, per-pipeline batch, device '' | 'gpu:N') -> tf.data.Dataset
DatasetFn = Callable[[tuple[int, int], int, str], Any]


@dataclass(frozen=True)
class Layout:
    """The replicas in sync, the workers holding them, and this process's share."""

    kind: str  # default | mirrored | multi-worker
    num_replicas: int
    workers: int = 1
    local_replicas: int = 1  # replicas (devices) in this process


def make_strategy(devices: list[str] | None = None) -> Any:
    """The strategy for this machine (or cluster); `devices` forces a MirroredStrategy.

    GPU memory growth is asked for again first (`fastfood.gpu_memory`; the commands did
    at import) for library callers, so TensorFlow leaves room for DALI on the same GPU.
    """
    import tensorflow as tf

    from fastfood import gpu_memory

    gpu_memory.allow_growth()
    gpus = tf.config.list_physical_devices("GPU")
    if os.environ.get("TF_CONFIG"):
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as err:
            raise FastfoodError(f"TF_CONFIG is not valid JSON: {err}") from None
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=communication_options(bool(gpus)))
    if devices:
        return tf.distribute.MirroredStrategy(devices=devices)
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def communication_options(gpus: bool) -> Any:
    """NCCL for GPU clusters (TensorFlow's AUTO may pick ring over gRPC), else AUTO."""
    import tensorflow as tf

    impl = tf.distribute.experimental.CommunicationImplementation
    return tf.distribute.experimental.CommunicationOptions(
        implementation=impl.NCCL if gpus else impl.AUTO)


def layout(strategy: Any) -> Layout:
    """Replica and worker counts of a strategy."""
    import tensorflow as tf

    replicas = int(strategy.num_replicas_in_sync)
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    if replicas == 1 and not multi_worker:
        return Layout("default", 1)
    local = len(strategy.extended.worker_devices)
    if multi_worker:
        spec = strategy.cluster_resolver.cluster_spec()
        workers = max(1, sum(spec.num_tasks(job) for job in ("chief", "worker")
                             if job in spec.jobs))
        return Layout("multi-worker", replicas, workers, local)
    return Layout("mirrored", replicas, 1, local)


def describe(strategy: Any) -> str:
    """One line for the start-up banner."""
    lay = layout(strategy)
    if lay.kind == "default":
        return "one device"
    devices = ", ".join(strategy.extended.worker_devices)
    if lay.kind == "mirrored":
        return f"MirroredStrategy over {lay.num_replicas} replicas ({devices})"
    return (
        f"MultiWorkerMirroredStrategy: {lay.workers} workers, "
        f"{lay.num_replicas} replicas in all"
    )


def gpu_device(device: str) -> str:
    """'gpu:N' for a TensorFlow device string naming GPU N, else ''."""
    import tensorflow as tf

    spec = tf.DeviceSpec.from_string(device or "")
    if spec.device_type == "GPU":
        return f"gpu:{spec.device_index or 0}"
    return ""


def distribute(strategy: Any, dataset_fn: DatasetFn, per_replica_batch: int, *,
               placement: str, on_device: bool = False) -> Any:
    """An iterable whose elements are one global batch, split across the replicas.

    `dataset_fn(shard, batch, device)` builds one pipeline: the shard (index, count) of
    the files it reads, its batch size (`per_replica_batch`: every pipeline's batch goes to
    one replica), and the GPU it should decode on ('' for the host). `placement` is the
    run plan's (fastfood.train.setup.PLACEMENTS); `on_device` places each pipeline on its
    replica's GPU (DALI with device='mixed').
    """
    import tensorflow as tf

    lay = layout(strategy)
    if placement == "single":
        device = "gpu:0" if on_device else ""
        return Single(dataset_fn((0, 1), per_replica_batch, device), device)
    if placement == "replicas":
        return LocalReplicas(strategy, dataset_fn, per_replica_batch, on_device)

    def fn(ctx: Any) -> Any:
        device = ""
        if on_device and placement == "mirrored":
            device = gpu_device(strategy.extended.worker_devices[
                ctx.input_pipeline_id % lay.local_replicas])
        return dataset_fn((ctx.input_pipeline_id, ctx.num_input_pipelines), per_replica_batch,
                          device)

    if placement == "mirrored":
        options = tf.distribute.InputOptions(
            experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA,
            experimental_place_dataset_on_device=on_device,
            experimental_fetch_to_device=not on_device,
        )
    else:
        options = tf.distribute.InputOptions()
    return strategy.distribute_datasets_from_function(fn, options)


class Single:
    """One device's dataset, whose iterator is made under the dataset's own device."""

    def __init__(self, dataset: Any, device: str):
        self.dataset, self.device = dataset, device

    def __iter__(self) -> Any:
        import tensorflow as tf

        with tf.device(f"/{self.device}" if self.device else "/cpu:0"):
            return iter(self.dataset)


class LocalReplicas:
    """A worker's per-replica pipelines, built by hand (MWMS refuses PER_REPLICA input).

    Each local replica reads the shard numbered by its replica id in the sync group, of
    as many shards as replicas, made and iterated under its own device; the step gets one
    batch per replica through `experimental_distribute_values_from_function`. The ids are
    TensorFlow's own (the task index is not one: a cluster with a chief numbers the
    chief's replicas first, so worker 0's start after them).
    """

    def __init__(self, strategy: Any, dataset_fn: DatasetFn, per_replica: int, on_device: bool):
        self.strategy = strategy
        self.devices = list(strategy.extended.worker_devices)
        self.ids = replica_ids(strategy)
        total = layout(strategy).num_replicas
        self.datasets = [
            dataset_fn((rid, total), per_replica, gpu_device(device) if on_device else "")
            for rid, device in zip(self.ids, self.devices)
        ]

    def __iter__(self) -> "_LocalIterator":
        import tensorflow as tf

        iterators = []
        for dataset, device in zip(self.datasets, self.devices):
            with tf.device(device):
                iterators.append(iter(dataset))
        return _LocalIterator(self.strategy, iterators, self.ids)


def replica_ids(strategy: Any) -> list[int]:
    """The replica ids in the sync group of this process's replicas, in device order, as
    TensorFlow numbers them (`ValueContext.replica_id_in_sync_group`)."""
    values = strategy.experimental_distribute_values_from_function(
        lambda ctx: ctx.replica_id_in_sync_group)
    return [int(v) for v in strategy.experimental_local_results(values)]


class _LocalIterator:
    """`next()` gives a distributed (images, labels): each replica's batch from its iterator."""

    def __init__(self, strategy: Any, iterators: list, ids: list[int]):
        self.strategy, self.iterators = strategy, iterators
        self.local = {rid: r for r, rid in enumerate(ids)}

    def __iter__(self) -> "_LocalIterator":
        return self

    def __next__(self) -> Any:
        batches = [None] * len(self.iterators)

        def value(ctx: Any) -> Any:
            r = self.local[ctx.replica_id_in_sync_group]
            batches[r] = batches[r] or next(self.iterators[r])
            return batches[r]

        images = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: value(ctx)[0])
        labels = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: value(ctx)[1])
        return images, labels


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


def task(strategy: Any) -> tuple[str, int]:
    """This process's (job, index) in the cluster: ('chief', 0), ('worker', 1), ...;
    ('worker', 0) outside one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return "worker", 0
    return str(resolver.task_type), int(resolver.task_id or 0)


def coordination_leader(strategy: Any) -> tuple[str, int]:
    """The task that hosts TensorFlow's coordination service: chief 0 when the cluster has
    a chief, else worker 0 (as `multi_worker_util.coordination_leader` picks it)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    has_chief = resolver is not None and "chief" in resolver.cluster_spec().jobs
    return ("chief", 0) if has_chief else ("worker", 0)
