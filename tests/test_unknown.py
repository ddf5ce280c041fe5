"""--min-confidence: predict and serve answer 'unknown' exactly for the images whose top
probability is under the threshold, in JSON and in text; bad thresholds are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support.cli import run_cli
from support.server import client_for, sample_files


@pytest.fixture(scope="module")
def files(sample_dir: Path) -> list[str]:
    return sample_files(sample_dir, n=8)[:8]


@pytest.fixture(scope="module")
def top_probs(trained_run: Path, files: list[str]) -> list[float]:
    from fastfood.predict import Predictor

    return [p.top_k[0].prob for p in Predictor.load(trained_run).predict_files(files, top_k=1)]


def test_predict_marks_exactly_the_files_under_the_threshold(
        trained_run: Path, files: list[str], top_probs: list[float],
        capsys: pytest.CaptureFixture[str]) -> None:
    threshold = float(np.median(top_probs))
    expected = [p < threshold for p in top_probs]
    assert any(expected) and not all(expected)
    code, out, err = run_cli(["predict", *files, "--run-dir", str(trained_run), "--json",
                              "--top-k", "2", "--min-confidence", str(threshold)], capsys)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["unknown"] for line in lines] == expected
    assert all(len(line["top_k"]) == 2 for line in lines)  # the guesses are still there
    code, out, _ = run_cli(["predict", *files, "--run-dir", str(trained_run),
                            "--min-confidence", str(threshold)], capsys)
    assert code == 0 and out.count("unknown") == sum(expected)
    code, out, _ = run_cli(["predict", *files, "--run-dir", str(trained_run), "--json"], capsys)
    assert all("unknown" not in json.loads(line) for line in out.splitlines())


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_bad_thresholds_are_refused(trained_run: Path, files: list[str], value: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["predict", files[0]], ["evaluate"]):
        code, _, err = run_cli([*argv, "--run-dir", str(trained_run), "--min-confidence", value],
                               capsys)
        assert code == 2 and "--min-confidence" in err, err


def test_server_query_parameter_and_default(trained_run: Path, files: list[str],
                                            top_probs: list[float]) -> None:
    from fastfood.server.app import create_app
    from fastfood.server.model import ServedModel
    from fastfood.server.settings import ServeSettings

    model = ServedModel.load(trained_run)
    threshold = float(np.median(top_probs))
    upload = [("file", (Path(f).name + str(i), Path(f).read_bytes()))
              for i, f in enumerate(files)]
    with client_for(create_app(model, ServeSettings(min_confidence=threshold))) as c:
        answers = c.post("/v1/predict", files=upload).json()["predictions"]
        assert [a["unknown"] for a in answers] == [p < threshold for p in top_probs]
        answers = c.post("/v1/predict?min_confidence=0", files=upload).json()["predictions"]
        assert not any(a["unknown"] for a in answers)
        answers = c.post("/v1/predict?min_confidence=1", files=upload).json()["predictions"]
        assert all(a["unknown"] for a in answers)
        bad = c.post("/v1/predict?min_confidence=high", content=Path(files[0]).read_bytes())
        assert bad.status_code == 400 and "min_confidence" in bad.json()["error"]
        info = c.get("/v1/model").json()
        assert info["limits"]["min_confidence"] == threshold and info["temperature"] == 1.0
    with client_for(create_app(model, ServeSettings())) as c:
        answer = c.post("/v1/predict", content=Path(files[0]).read_bytes()).json()
        assert "unknown" not in answer["predictions"][0]
