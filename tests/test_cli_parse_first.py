"""Usage errors answer before TensorFlow is imported; real runs import it quietly.

`fastfood train` and `fastfood bench` used to import TensorFlow before click parsed the line,
so a mistyped flag took seconds to report; every command is checked here. Each case runs
`fastfood.cli.main` in a fresh interpreter and reports whether `tensorflow` is in
`sys.modules` when main() returns: a structural check, no clock involved (BENCHMARKS.md has
the measured time).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import REPO, env

# Print {"code": exit code, "tensorflow": imported?} as the last stdout line.
PROBE = (
    "import json, sys\n"
    "from fastfood.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "    code = 0\n"
    "except SystemExit as exit_:\n"
    "    code = exit_.code\n"
    "print(json.dumps({'code': code, 'tensorflow': 'tensorflow' in sys.modules}))\n"
)

USAGE_ERRORS = [
    ["train", "--epochs", "x"],
    ["train", "--batch-size", "1.5"],
    ["train", "--no-such-flag"],
    ["train", "--loader", "nope"],
    ["train", "--precision", "fp8"],
    ["train", "--lr"],  # a flag without its value
    ["train", "stray-argument"],
    ["bench", "--repeats", "x"],
    ["bench", "--no-such-flag"],
    ["bench", "--width", "thin"],
    ["bench", "--json"],
    ["doctor", "--no-such-flag"],
    ["predict", "--top-k", "many", "x.jpg"],
    ["evaluate", "--split", "holdout"],
    ["export", "--no-such-flag"],
    ["data", "food101", "--md5"],
    ["data", "imagenet"],
]


def probe(argv: list[str], cwd: Path) -> tuple[dict, str]:
    """(the probe's report, stderr) of `fastfood ARGV` in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=120)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(lines[-1]), proc.stderr


@pytest.mark.parametrize("argv", USAGE_ERRORS, ids=" ".join)
def test_usage_error_answers_before_tensorflow_is_imported(argv: list[str],
                                                           tmp_path: Path) -> None:
    report, err = probe(argv, tmp_path)
    assert report["code"] == 2, (report, err)
    assert err.count("Error:") == 1, err  # click's usage message
    assert report["tensorflow"] is False, f"{argv} imported TensorFlow before answering"


def test_flag_value_errors_checked_by_fastfood_also_answer_before_tensorflow(
        tmp_path: Path) -> None:
    """Values click accepts but fastfood refuses (one-line FastfoodError) come first too."""
    for argv, flag in ((["train", "--epochs", "0"], "--epochs"),
                       (["train", "--test-fraction", "1"], "--test-fraction"),
                       (["data", "food101", "--url", "ftp://x/y"], "--url"),
                       (["bench", "--what", "everything"], "--what")):
        report, err = probe(argv, tmp_path)
        assert report["code"] == 2 and f"fastfood: error: {flag}" in err, (report, err)
        assert report["tensorflow"] is False, argv


def test_help_needs_no_tensorflow(tmp_path: Path) -> None:
    for argv in (["train", "--help"], ["bench", "--help"], ["data", "food101", "--help"],
                 ["--help"]):
        report, _ = probe(argv, tmp_path)
        assert report == {"code": 0, "tensorflow": False}, (argv, report)


def test_a_real_train_imports_tensorflow_without_its_startup_noise(tmp_path: Path) -> None:
    """The probe sees TensorFlow loaded once the command runs (so it can tell), and the
    CUDA-stub start-up lines stay off stderr on that path."""
    from support.cli import TINY
    from support.images import write_images

    for name, seed in (("a", 1), ("b", 2)):
        write_images(tmp_path / "data" / name, 4, seed=seed)
    argv = ["train", "--data", str(tmp_path / "data"), *TINY, "--loader", "tfdata",
            "--max-steps", "1", "--run-dir", str(tmp_path / "run")]
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=tmp_path,
                          env=env(TF_CPP_MIN_LOG_LEVEL="0"), capture_output=True, text=True,
                          timeout=300)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "tensorflow": True}, (report, proc.stderr)
    for noise in ("cuda drivers", "cuInit", "absl::InitializeLog"):
        assert noise not in proc.stderr, proc.stderr


def test_probe_runs_this_checkout(tmp_path: Path) -> None:
    """The subprocesses import the fastfood under test (PYTHONPATH points at this tree)."""
    code = "import fastfood, sys; print(fastfood.__file__)"
    out = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True,
                         text=True, timeout=60, cwd=tmp_path).stdout.strip()
    assert Path(out).resolve().is_relative_to(REPO), out
