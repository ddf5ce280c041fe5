"""Shared pieces for the predict, evaluate and export tests (no tests in here).

The trained run is made ONCE per test session (a module-level memo, since a session fixture
imported into several modules would otherwise be built once per module): a real
`fastfood.train` run on the built-in sample, width 0.125 at 64 px, 30 steps.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
ODD = REPO.parent / "shared" / "testdata" / "odd-jpegs"
# Per the corpus README: what TensorFlow cannot decode at all.
UNDECODABLE = {"truncated_jpeg.jpg", "ultrahdr.jpg", "text_named_as.jpg", "empty.jpg"}
# Plain files every path must answer.
PLAIN = {"hopper.jpg", "rgb.jpg", "flower.jpg", "hopper_gray.jpg", "pil_sample_cmyk.jpg",
         "png_named_as.jpg", "hopper_orientation_6.jpg", "icc_profile_big.jpg"}

_memo: dict[str, Any] = {}


def trained_run(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    """A run directory trained by fastfood.train for 30 steps on the sample (made once)."""
    if "run" not in _memo:
        from fastfood.config import DataConfig, LoaderConfig, ModelConfig, RunConfig, TrainConfig
        from fastfood.train import train_and_evaluate

        run_dir = tmp_path_factory.mktemp("trained") / "run"
        config = RunConfig(
            data=DataConfig(root=str(sample_dir)),
            loader=LoaderConfig(kind="tfdata", batch_size=32, image_size=64),
            model=ModelConfig(image_size=64, width=0.125, weights="none"),
            train=TrainConfig(max_steps=30, lr=0.01, precision="fp32", xla="off",
                              run_dir=str(run_dir), save_every=1000),
        )
        summary = train_and_evaluate(config, stream=io.StringIO())
        assert summary.get("exit_code", 0) == 0, summary
        _memo["run"] = run_dir
    return _memo["run"]


def untrained_run(path: Path, classes: list[str], **kwargs: Any) -> Path:
    """A run directory with random weights (tiny model), in the trainer's layout."""
    from fastfood.serve.untrained import write_untrained_run

    kwargs.setdefault("image_size", 32)
    kwargs.setdefault("width", 0.125)
    return write_untrained_run(path, classes, **kwargs)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`fastfood ARGV` in this process: (exit code, stdout, stderr), as the shell sees them."""
    from fastfood.cli import main

    try:
        main(list(argv))
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def run_cli_subprocess(argv: list[str], cwd: Path, env: dict[str, str] | None = None,
                       timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`fastfood ARGV` as a separate process (the real console entry point)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    code = "import sys; from fastfood.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def corrupt_files(folder: Path) -> dict[str, Path]:
    """Files that pass the loaders' preflight but fail to decode in TensorFlow."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    jpeg = bytearray((ODD / "hopper.jpg").read_bytes())
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 4] = 12  # 12-bit samples: libjpeg as built into TF refuses them
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(out, "PNG")
    png = bytearray(out.getvalue())
    idat = png.find(b"IDAT")
    for k in range(idat + 6, idat + 16):
        png[k] ^= 0x5A  # scramble the deflate stream, keep the chunk layout and IEND
    paths = {"jpeg12": folder / "precision12.jpg", "png": folder / "bad_idat.png"}
    paths["jpeg12"].write_bytes(bytes(jpeg))
    paths["png"].write_bytes(bytes(png))
    return paths


def assert_same_top_k(indices_a: list[int], probs_a: list[float], indices_b: list[int],
                      probs_b: list[float], atol: float = 1e-4) -> None:
    """Two top-k answers agree up to float rounding.

    Probabilities position by position within `atol`; the same class at every position
    except where two neighbours are within `atol` of each other (rounding may swap those).
    """
    import numpy as np

    np.testing.assert_allclose(probs_a, probs_b, atol=atol)
    for i, (a, b) in enumerate(zip(indices_a, indices_b)):
        if a == b:
            continue
        near = [j for j in (i - 1, i + 1) if 0 <= j < len(probs_a)
                and abs(probs_a[j] - probs_a[i]) <= atol]
        assert near, f"position {i}: class {a} vs {b}, probs {probs_a} vs {probs_b}"
