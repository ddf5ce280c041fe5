"""How many CPU threads and how much decoder memory each DALI pipeline gets.

DALI's defaults are sized for one pipeline owning a machine: a thread per core, and
nvJPEG buffers padded for ImageNet's largest images. With one pipeline per GPU each taking
every core, a 16-core, 8-GPU host runs 128 decode threads fighting for 16 cores, and the
per-thread pinned-host and device paddings add up to several GB per pipeline. Here the
cores are split between the pipelines of this process and capped, and the paddings are
sized for the data's images (Food-101's are at most 512 px a side). The cores are the ones
this process may use (`fastfood.cpus`: affinity and cgroup quota), not the
machine's. No TensorFlow, no DALI.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastfood.cpus import usable_cpus

MAX_THREADS = 8  # past this, one pipeline's decode threads stop paying for themselves
MIN_PADDING = 4 << 20  # a floor, so small images do not leave nvJPEG growing buffers


@dataclass(frozen=True)
class Budget:
    """One pipeline's share: decode threads, nvJPEG device and pinned-host paddings (bytes)."""

    num_threads: int
    device_memory_padding: int
    host_memory_padding: int


def budget(*, pipelines: int = 1, requested_threads: int = 0, cores: int | None = None,
           max_side: int = 512) -> Budget:
    """The share of one of ``pipelines`` pipelines in this process.

    ``requested_threads`` (--num-threads) wins when given. Paddings: one decoded RGB image
    of ``max_side`` squared, doubled for the resize's working copy, never below 4 MiB.
    """
    cores = cores or usable_cpus()
    if requested_threads > 0:
        threads = requested_threads
    else:
        threads = max(1, min(MAX_THREADS, cores // max(1, pipelines)))
    image = max_side * max_side * 3
    padding = max(MIN_PADDING, 2 * image)
    return Budget(threads, padding, padding)
