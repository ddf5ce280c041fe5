"""How many CPUs this process may really use: its affinity and its cgroup's CPU quota.

`os.cpu_count()` counts the machine's CPUs. In a container, under a batch scheduler or
`taskset`, a process may run on fewer (its affinity mask, `os.sched_getaffinity`) and be
given less time than those (the cgroup's quota: cgroup v2 `cpu.max` "QUOTA PERIOD", v1
`cpu.cfs_quota_us` / `cpu.cfs_period_us`; a quota of 1.5 periods is 1.5 CPUs of time).
Sizing threads by the machine then oversubscribes what the process has. No TensorFlow.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def quota_from_cpu_max(text: str) -> float | None:
    """CPUs of time in a cgroup v2 `cpu.max` ("max 100000": no limit -> None)."""
    parts = text.split()
    if len(parts) < 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def quota_from_cfs(quota_text: str, period_text: str) -> float | None:
    """CPUs of time from cgroup v1's cfs quota and period (quota -1: no limit -> None)."""
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cgroup_quota(root: Path = CGROUP_ROOT, self_cgroup: str | None = None) -> float | None:
    """The smallest CPU quota on this process's cgroup path, v2 or v1; None when none."""
    if self_cgroup is None:
        self_cgroup = _read(Path("/proc/self/cgroup")) or ""
    quotas: list[float] = []
    for line in self_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # v2: walk up from the cgroup to the root
            folder = root / path.lstrip("/")
            while True:
                text = _read(folder / "cpu.max")
                got = quota_from_cpu_max(text) if text else None
                if got:
                    quotas.append(got)
                if folder == root or root not in folder.parents:
                    break
                folder = folder.parent
        elif "cpu" in controllers.split(","):  # v1
            for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
                base = root / mount
                for folder in (base / path.lstrip("/"), base):
                    quota, period = (_read(folder / "cpu.cfs_quota_us"),
                                     _read(folder / "cpu.cfs_period_us"))
                    got = quota_from_cfs(quota, period) if quota and period else None
                    if got:
                        quotas.append(got)
    if not quotas and not self_cgroup:  # no /proc/self/cgroup: look at the root only
        text = _read(root / "cpu.max")
        got = quota_from_cpu_max(text) if text else None
        quotas += [got] if got else []
    return min(quotas) if quotas else None


def usable_cpus(affinity: int | None = None, quota: float | None = None, *,
                read_quota: bool = True) -> int:
    """CPUs this process may use: its affinity, capped by the cgroup quota rounded up."""
    if affinity is None:
        try:
            affinity = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not on Linux
            affinity = os.cpu_count() or 1
    if quota is None and read_quota:
        quota = cgroup_quota()
    cpus = affinity if quota is None else min(affinity, math.ceil(quota))
    return max(1, cpus)
