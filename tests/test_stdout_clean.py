"""stdout carries only the answer: with --json, every line is one JSON object.

DALI's TensorFlow plugin prints its report on a file it cannot decode to file descriptor 1,
from C++; TensorFlow and libjpeg print from native code too. The commands run their work
inside `fastfood.cli.stdout.answers_only`, which sends all of that to stderr. Checked here
as the shell sees it (real processes) on the odd-jpegs corpus plus four files made to make
native decoders complain: 12-bit precision declared in the frame header, cut off mid-scan,
a huge declared frame, and a corrupt Huffman table; with both real loaders.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import env, run_subprocess
from support.corpus import ODD
from support.images import (
    body_corrupt_jpeg,
    huge_frame_jpeg,
    truncated_jpeg,
    twelve_bit_jpeg,
    write_images,
)

LOADERS = ["tfdata", pytest.param("dali", marks=pytest.mark.dali)]
# Files made here, added to the corpus: name -> (bytes, words the error must contain).
MADE = {
    "zz_12bit.jpg": (twelve_bit_jpeg, "cannot decode"),
    "zz_truncated.jpg": (truncated_jpeg, "end-of-image"),
    "zz_huge_frame.jpg": (huge_frame_jpeg, "pixel cap"),
    "zz_body_corrupt.jpg": (body_corrupt_jpeg, "cannot decode"),
}


def _skip_without_dali(loader: str) -> None:
    if loader == "dali":
        from fastfood.loaders import dali_available

        if not dali_available():
            pytest.skip("DALI TensorFlow plugin not importable")


def add_odd_files(folder: Path) -> list[str]:
    """Copy the odd-jpegs corpus and the MADE files into `folder`; their names."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(ODD.iterdir()):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".mpo"):
            shutil.copy(path, folder / path.name)
    for name, (make, _) in MADE.items():
        (folder / name).write_bytes(make())
    return sorted(p.name for p in folder.iterdir())


def json_lines(stdout: str) -> list[dict]:
    """Every stdout line parsed as a JSON object (fails naming the first line that is not)."""
    parsed = []
    for number, line in enumerate(stdout.splitlines(), 1):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"stdout line {number} is not JSON: {line!r}")
        assert isinstance(value, dict), (number, line)
        parsed.append(value)
    return parsed


@pytest.fixture(scope="module")
def odd_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stdout") / "odd"
    add_odd_files(folder)
    return folder


@pytest.fixture(scope="module")
def run_and_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny untrained run, and a train/val tree whose val/a holds the odd files."""
    from fastfood.benchmark.untrained import write_untrained_run

    base = tmp_path_factory.mktemp("stdout_run")
    data = base / "data"
    for split, seed in (("train", 1), ("val", 2)):
        write_images(data / split / "a", 4, seed=seed)
        write_images(data / split / "b", 4, seed=seed + 10)
    add_odd_files(data / "val" / "a")
    run = write_untrained_run(base / "run", ["a", "b"], data_root=str(data), image_size=32,
                              width=0.125)
    return run, data


# -- the context manager itself, without TensorFlow -------------------------------------------

CHILD = """
import ctypes, os, sys
from fastfood.cli.stdout import answers_only
libc = ctypes.CDLL(None)
print("before", flush=True)
with answers_only() as out:
    os.write(1, b"native write to fd 1\\n")
    libc.printf(b"native printf, left in the C buffer\\n")
    print("python print to sys.stdout")
    out.write("the answer\\n")
print("after")
"""


def test_answers_only_sends_everything_but_the_answer_to_stderr(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "before\nthe answer\nafter\n"
    for line in ("native write to fd 1", "native printf, left in the C buffer",
                 "python print to sys.stdout"):
        assert line in proc.stderr, proc.stderr


def test_answers_only_in_process_keeps_a_captured_stdout_for_the_answer(capsys) -> None:
    from fastfood.cli.stdout import answers_only

    with answers_only() as out:
        print("chatter")
        out.write("answer\n")
    print("after")
    captured = capsys.readouterr()
    assert captured.out == "answer\nafter\n"
    assert captured.err == "chatter\n"


# -- the commands, as real processes ---------------------------------------------------------

@pytest.mark.parametrize("loader", LOADERS)
def test_predict_json_stdout_is_json_lines_only(loader: str, odd_set: Path,
                                                run_and_data: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    _skip_without_dali(loader)
    from fastfood.inference.files import collect_images

    run, _ = run_and_data
    proc = run_subprocess(["predict", "--run-dir", str(run), "--loader", loader, "--json",
                           "--batch-size", "4", str(odd_set)], cwd=tmp_path)
    answers = json_lines(proc.stdout)
    assert [a["file"] for a in answers] == collect_images([odd_set])  # each once, in order
    errors = {Path(a["file"]).name: a["error"] for a in answers if "error" in a}
    for name, (_, words) in MADE.items():
        assert words in errors.get(name, ""), (name, errors)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    # The native complaint happened, and went to stderr (else this test proves nothing).
    native = "zz_12bit.jpg" if loader == "dali" else "Unsupported JPEG data precision 12"
    assert native in proc.stderr, proc.stderr


@pytest.mark.dali
def test_predict_text_stdout_has_no_native_lines(odd_set: Path,
                                                 run_and_data: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    """Text mode: stdout holds each file's line and its indented answer lines, nothing else."""
    _skip_without_dali("dali")
    from fastfood.inference.files import collect_images

    run, _ = run_and_data
    proc = run_subprocess(["predict", "--run-dir", str(run), "--loader", "dali",
                           "--batch-size", "4", str(odd_set)], cwd=tmp_path)
    files = set(collect_images([odd_set]))
    strays = [line for line in proc.stdout.splitlines()
              if line not in files and not line.startswith("  ")]
    assert not strays, strays
    assert proc.returncode == 1 and "zz_12bit.jpg" in proc.stderr, proc.stderr


@pytest.mark.parametrize("loader", LOADERS)
def test_evaluate_json_stdout_is_one_json_object(loader: str,
                                                 run_and_data: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    _skip_without_dali(loader)
    run, data = run_and_data
    proc = run_subprocess(["evaluate", "--run-dir", str(run), "--loader", loader, "--json",
                           "--batch-size", "4"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (result,) = json_lines(proc.stdout)
    skipped = {Path(s["file"]).name: s["error"] for s in result["skipped"]}
    for name, (_, words) in MADE.items():
        assert words in skipped.get(name, ""), (name, skipped)
    from fastfood.inference.files import collect_images

    assert result["n"] + len(result["skipped"]) == len(collect_images([data / "val"]))


def test_bench_json_dash_prints_one_json_line(run_and_data: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    """`--json -`: the record alone on stdout, the tables on stderr; on the odd files, with
    DALI (when installed) and tf.data."""
    from fastfood.loaders import dali_available

    _, data = run_and_data
    loaders = "dali,tfdata" if dali_available() else "tfdata"
    proc = run_subprocess(["bench", "--data", str(data / "val"), "--what", "loaders",
                           "--loaders", loaders, "--batch-size", "4", "--image-size", "32",
                           "--repeats", "1", "--json", "-"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (result,) = json_lines(proc.stdout)
    assert set(loaders.split(",")) <= set(result["loaders"]), result["loaders"]
    assert "Loaders" in proc.stderr  # the table went to stderr
