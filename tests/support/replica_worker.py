"""`fastfood ...` as a cluster worker with two replicas on two logical CPUs, per-replica input.

What a GPU cluster's worker does (several devices, one DALI pipeline per device built by
hand) cannot otherwise run on a CPU machine: TensorFlow gives a MultiWorkerMirroredStrategy
worker ONE CPU device whatever the logical devices (`_initialize_local_devices` in
tensorflow/python/distribute/collective_all_reduce_strategy.py counts GPUs and TPUs only).
So, for tests only, this entry point

- splits the CPU into two logical devices and makes the strategy use both (a patch of
  that TensorFlow method, checked to exist so that a TensorFlow without it fails loudly);
- makes the run's plan place the input as a GPU worker's is placed with DALI decoding on
  its GPUs (`placement='replicas'`, one pipeline per local replica); nothing else of the
  run changes;
- prints `SHARD i n` for every pipeline this process builds, so a test can see which
  files each replica read;

then runs fastfood's own command line with the arguments given.
"""

from __future__ import annotations

import sys

import tensorflow as tf
from tensorflow.python.distribute import collective_all_reduce_strategy as _cars

LOCAL_DEVICES = 2

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * LOCAL_DEVICES)

_extended = _cars.CollectiveAllReduceExtended
assert hasattr(_extended, "_initialize_local_devices"), "TensorFlow changed: update this patch"


def _local_cpus(self, cluster_resolver, worker_device):  # noqa: ANN001 - TensorFlow's signature
    return tuple(f"{worker_device}/device:CPU:{i}" for i in range(LOCAL_DEVICES)), "CPU"


_extended._initialize_local_devices = _local_cpus

from fastfood.train import distribute, setup  # noqa: E402

_plan = setup.plan


def _replicas_plan(*args, placement=None, **kwargs):  # noqa: ANN001, ANN002, ANN003
    return _plan(*args, placement=placement or "replicas", **kwargs)


setup.plan = _replicas_plan
_init = distribute.LocalReplicas.__init__


def _spying_init(self, strategy, dataset_fn, per_replica, on_device):  # noqa: ANN001
    def spy(shard, batch, device):  # noqa: ANN001
        print(f"SHARD {shard[0]} {shard[1]}", flush=True)
        return dataset_fn(shard, batch, device)

    _init(self, strategy, spy, per_replica, on_device)


distribute.LocalReplicas.__init__ = _spying_init

from fastfood.cli import main  # noqa: E402

main(sys.argv[1:])
