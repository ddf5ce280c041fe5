"""Start a training cluster of `fastfood train` processes on 127.0.0.1 (TF_CONFIG), for tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def start_workers(args: list[str], logs: Path, n: int = 2, *, chief: bool = False,
                  entry: Path | None = None) -> list[subprocess.Popen]:
    """`n` processes running `fastfood train ARGS`, each with its own TF_CONFIG and log file
    (logs/worker<i>.log, i in start order).

    `chief`: the first process is the `chief` job and the others `worker` 0.. (the form
    TensorFlow's docs and most launchers write); else all are `worker` 0... `entry`: a
    script to run instead of fastfood's command line (it gets `train ARGS`).
    """
    ports = free_ports(n)
    addresses = [f"127.0.0.1:{p}" for p in ports]
    cluster = ({"chief": addresses[:1], "worker": addresses[1:]} if chief
               else {"worker": addresses})
    tasks = ([("chief", 0)] + [("worker", i) for i in range(n - 1)] if chief
             else [("worker", i) for i in range(n)])
    command = [str(entry)] if entry else ["-c", "from fastfood.cli import main; main()"]
    procs = []
    logs.mkdir(parents=True, exist_ok=True)
    for i, (job, index) in enumerate(tasks):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                      "task": {"type": job, "index": index}}),
               "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
        out = open(logs / f"worker{i}.log", "w")
        procs.append(subprocess.Popen(
            [sys.executable, *command, "train", *args],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))
    return procs


def wait_all(procs: list[subprocess.Popen], timeout: float) -> list[int | None]:
    deadline = time.monotonic() + timeout
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            codes.append(None)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    return codes


def logged_steps(run_dir: Path) -> dict[int, float]:
    """{step: loss} of the training lines of a run's metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line being written
        if rec.get("kind") == "train":
            out[int(rec["step"])] = float(rec["values"]["loss"] if "values" in rec else rec["loss"])
    return out


def wait_for_step(run_dir: Path, step: int, procs: list[subprocess.Popen], timeout: float) -> int:
    """Poll the chief's metrics until a step >= `step` is logged; the step seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = max(logged_steps(run_dir), default=0)
        if seen >= step:
            return seen
        if any(p.poll() is not None for p in procs):
            raise AssertionError("a worker exited before the step was reached")
        time.sleep(0.1)
    raise AssertionError(f"step {step} not reached in {timeout} s")
