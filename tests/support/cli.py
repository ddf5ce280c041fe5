"""Running `fastfood` from a test: in this process, or as its own process the way a shell
runs it. TINY is a model that builds and steps in well under a second on a CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Width 0.125, 32 px images, batches of 4: sized for a 2-core CPU.
REPO = Path(__file__).resolve().parents[2]

TINY = ["--weights", "none", "--width", "0.125", "--image-size", "32", "--batch-size", "4",
        "--precision", "fp32", "--no-xla"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`fastfood ARGV` in this process: (exit code, stdout, stderr), as the shell sees them.

    main() turns FastfoodError and click usage errors into an exit code; any other exception
    propagates, which is exactly the case where the real command would print a traceback,
    so the test fails with it.
    """
    from fastfood.cli import main

    try:
        main(list(argv))
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def env(**extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess: quiet TF, no GPU, unbuffered, nothing from ~/."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
            "PYTHONUNBUFFERED": "1", **extra}


def fastfood_argv() -> list[str]:
    """The real console entry point (`fastfood`), or the same main() when it is not installed."""
    script = Path(sys.executable).parent / "fastfood"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from fastfood.cli import main; main()"]


def run_subprocess(argv: list[str], cwd: Path, timeout: float = 300,
                   **extra_env: str) -> subprocess.CompletedProcess[str]:
    """`fastfood ARGV` as its own process: what a user's shell sees."""
    return subprocess.run([*fastfood_argv(), *argv], cwd=cwd, env=env(**extra_env),
                          capture_output=True, text=True, timeout=timeout)


def popen(argv: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    """`fastfood ARGV` in the background; stdout and stderr go to `log` (no pipe to fill)."""
    handle = open(log, "w")
    return subprocess.Popen([*fastfood_argv(), *argv], cwd=cwd, env=env(),
                            stdout=handle, stderr=subprocess.STDOUT, text=True)
