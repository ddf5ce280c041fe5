"""What went wrong when a training step raised, said as one line with its own exit code.

A TensorFlow ``OpError`` from a step can come from the input pipeline (a file that fails
to decode), from the device (out of memory), from the compiler (XLA, ptxas), from the
collectives (NCCL, a worker of the cluster gone) or from anywhere else. Each gets its own
message, exit code and checkpoint policy, so "fix or remove the file" is only ever said
about a file. Pure: no TensorFlow import, testable with any exception object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastfood.errors import FastfoodError, first_line

# Exit codes, from sysexits.h where one fits.
EXIT_INPUT = 65  # EX_DATAERR: a data file is bad
EXIT_PEER = 69  # EX_UNAVAILABLE: a worker of the cluster is gone
EXIT_SOFTWARE = 70  # EX_SOFTWARE: TensorFlow/XLA/NCCL failed
EXIT_OOM = 71  # EX_OSERR: out of device or host memory

_TASK = re.compile(r"/job:(\w+)/replica:\d+/task:(\d+)")
_INPUT_HINTS = ("decode", "jpeg", "png", "image", "nvimgcodec", "dali", "reader",
                "no such file", "not found", "invalid marker", "corrupt")
_PEER_TYPES = {"UnavailableError", "DeadlineExceededError", "AbortedError", "CancelledError"}


class TrainingFailed(FastfoodError):
    """A run that stopped on an error, with its own exit code."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Failure:
    """The kind of a failure and what to tell the user."""

    kind: str  # input | peer | oom | xla | nccl | other
    detail: str  # the file, the worker, or the first line of the error
    exit_code: int
    can_save: bool  # whether this worker can still write a checkpoint


def classify(err: BaseException, *, files: tuple[str, ...] = (), multi_worker: bool = False,
             self_task: tuple[str, int] | None = None,
             addresses: dict[tuple[str, int], str] | None = None,
             leader: tuple[str, int] | None = None) -> Failure:
    """Sort an exception raised by a step (see the module docstring).

    `self_task`: this process's (job, index); `addresses`: the cluster's (job, task) ->
    host:port, to name a lost worker fully; `leader`: the task that hosts TensorFlow's
    coordination service (chief 0, else worker 0), named when its heartbeat RPC fails.
    A worker that stops (dies, or is stopped: SIGSTOP, a frozen host) stops sending
    heartbeats, and TensorFlow aborts the others' collectives within its heartbeat
    timeout (about 10 s measured with TensorFlow 2.21) naming it; when the stopped one is
    the leader, the others only see their heartbeat RPC to it time out.
    """
    name = type(err).__name__
    text = str(getattr(err, "message", err))
    low = text.lower()
    if multi_worker and (name in _PEER_TYPES or "collective" in low or "peer" in low
                         or "socket closed" in low or "connection reset" in low):
        tasks = [(job, int(task)) for job, task in _TASK.findall(text)
                 if self_task is None or (job, int(task)) != self_task]
        suffix = ""
        if not tasks and leader and leader != self_task and "coordinationservice" in low:
            tasks, suffix = [leader], ", the cluster's coordination service leader"
        if tasks:
            job, task = tasks[0]
            where = (addresses or {}).get((job, task))
            who = f"{job} {task}" + (f" ({where})" if where else "") + suffix
        else:
            who = "a peer worker"
        return Failure("peer", who, EXIT_PEER, can_save=False)
    if name == "ResourceExhaustedError" or "out of memory" in low or "oom" in low.split():
        return Failure("oom", first_line(err), EXIT_OOM, can_save=True)
    if "nccl" in low:
        return Failure("nccl", first_line(err), EXIT_SOFTWARE, can_save=False)
    if "xla" in low or "ptxas" in low or "libdevice" in low or "jit compil" in low:
        return Failure("xla", first_line(err), EXIT_SOFTWARE, can_save=True)
    culprit = next((f for f in files if f and f in text), None)
    if culprit or (name in {"InvalidArgumentError", "NotFoundError", "DataLossError",
                            "UnknownError", "InternalError", "RuntimeError"}
                   and any(h in low for h in _INPUT_HINTS)):
        return Failure("input", culprit or first_line(err), EXIT_INPUT, can_save=True)
    return Failure("other", first_line(err), EXIT_SOFTWARE, can_save=True)


# kind -> (what happened, what to do); {where}, {detail} and {resume} are filled in.
_ADVICE = {
    "input": ("the input pipeline failed {where}: cannot decode {detail}",
              "Fix or remove the file, then: {resume}"),
    "peer": ("lost {detail} of the cluster {where}",
             "Restart every worker with the same TF_CONFIG and: {resume}"),
    "oom": ("out of memory {where} ({detail})",
            "Lower --batch-size or --image-size, then: {resume}"),
    "xla": ("XLA compilation failed {where} ({detail})",
            "Retry with --no-xla, or run `fastfood doctor` to check ptxas/libdevice: {resume}"),
    "nccl": ("NCCL (GPU collectives) failed {where} ({detail})",
             "Check the GPUs and interconnect (`fastfood doctor`), then: {resume}"),
    "other": ("training failed {where}: {detail}", "After fixing it: {resume}"),
}


def explain(failure: Failure, *, step: int, epoch: int, checkpoint: str, run_dir: str,
            previous: str = "") -> str:
    """The one line for the user: what failed, what was saved, what to do next."""
    where = f"at step {step} (epoch {epoch + 1})"
    resume = f"fastfood train --resume --run-dir {run_dir}"
    if checkpoint:
        saved = f"checkpoint {checkpoint} saved"
    elif previous:
        saved = f"no checkpoint written now; the last one, {previous}, is intact"
    else:
        saved = "no checkpoint was written yet (the run starts from scratch)"
    what, todo = _ADVICE[failure.kind]
    return (f"{what.format(where=where, detail=failure.detail)}; {saved}. "
            f"{todo.format(resume=resume)}")
