"""`fastfood bench` and the benchmarks/ scripts at tiny settings: the JSON they write.

No speed assertions: only that every figure asked for is there, positive, and labelled
with the machine and the settings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fastfood.cli import cli, main

from support.scripts import load_script

TINY = ["--batch-size", "8", "--image-size", "32", "--train-image-size", "32",
        "--width", "0.0625", "--steps", "1", "--warmup", "1", "--repeats", "1"]


def real_loaders() -> list[str]:
    from fastfood.loaders import dali_available

    return ["dali", "tfdata"] if dali_available() else ["tfdata"]


@pytest.fixture(scope="module")
def bench_data(tmp_path_factory) -> Path:
    md = load_script("make_dataset")
    out = tmp_path_factory.mktemp("benchdata") / "ds"
    md.make_dataset(out, n=24, seed=0, num_classes=3, workers=1)
    return out


def check_machine(result: dict) -> None:
    m = result["machine"]
    assert m["cpu_model"] and isinstance(m["cpu_flags"], list) and m["cores"] >= 1
    assert isinstance(m["gpus"], list)
    for lib in ("python", "tensorflow", "keras"):
        assert m["versions"][lib]


@pytest.mark.slow
def test_bench_on_the_default_sample_writes_loader_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTFOOD_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "bench.json"
    kinds = real_loaders() + ["synthetic"]
    res = CliRunner().invoke(cli, ["bench", "--what", "loaders", "--loaders", ",".join(kinds),
                                   "--json", str(out), *TINY], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    check_machine(result)
    assert result["settings"]["num_files"] > 16 and "sample" in result["settings"]["data"]
    assert result["errors"] == []
    for kind in kinds:
        row = result["loaders"][kind]
        assert row["train_img_s"] > 0 and row["eval_img_s"] > 0, row
        assert row["train"]["repeats"] == 1
    # The eval pass covers every file; training drops the last partial batch.
    assert result["loaders"]["tfdata"]["eval"]["images_per_pass"] == result["settings"]["num_files"]
    for kind in kinds:
        assert kind in res.output
    assert str(out) in res.output.replace("\n", "")


@pytest.mark.slow
def test_bench_train_e2e_predict_figures(bench_data, tmp_path):
    out = tmp_path / "b.json"
    loaders = real_loaders() + ["synthetic"]
    res = CliRunner().invoke(cli, [
        "bench", "--data", str(bench_data), "--what", "train,e2e,predict",
        "--loaders", ",".join(loaders), "--precision", "fp32", "--json", str(out), *TINY,
    ], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    check_machine(result)
    assert result["errors"] == []
    s = result["settings"]
    assert (s["width"], s["train_image_size"], s["batch_size"]) == (0.0625, 32, 8)
    train = result["train"]
    assert set(train) == {f"fp32/{k}" for k in loaders + ["keras_fit"]}
    for name, row in train.items():
        assert row["img_s"] > 0 and row["policy"] == "float32", (name, row)
    for kind in real_loaders():
        assert train[f"fp32/{kind}"]["ratio_to_synthetic"] > 0
    assert train["fp32/synthetic"]["ratio_to_keras_fit"] > 0
    assert all(result["predict"][f"fp32/{k}"]["img_s"] > 0 for k in loaders)
    assert "REDUCED" in result["labels"]["train"]


def test_bench_rejects_bad_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--what", "loaders,nonsense"])
    assert exc.value.code == 2
    assert "--what" in capsys.readouterr().err


def test_settings_check_themselves_for_an_api_caller_too():
    from fastfood.benchmark.suite import BenchSettings
    from fastfood.errors import FastfoodError

    with pytest.raises(FastfoodError, match="--repeats must be at least 1, got 0"):
        BenchSettings(repeats=0)
    with pytest.raises(FastfoodError, match="--loaders: auto is not one of"):
        BenchSettings(loaders=("auto",))


def test_settings_resolve_per_machine():
    from fastfood.benchmark.suite import BenchSettings

    cpu = BenchSettings().resolved(has_gpu=False, fast_mixed=False)
    assert cpu.precisions == ("fp32",) and cpu.width < 1 and cpu.train_image_size < 224
    gpu = BenchSettings().resolved(has_gpu=True, fast_mixed=True)
    assert gpu.precisions == ("fp32", "mixed") and gpu.width == 1.0
    assert gpu.train_image_size == 224
    mine = BenchSettings(precisions=("mixed",), width=0.5).resolved(False, False)
    assert mine.precisions == ("mixed",) and mine.width == 0.5


@pytest.mark.slow
def test_loader_benchmark_script(bench_data, tmp_path):
    script = load_script("loaders")
    out = tmp_path / "loaders.json"
    kinds = ["limit", "seed", "keras", "pil", "synthetic"] + real_loaders()
    script.main(["--data", str(bench_data), "--loaders", ",".join(kinds), "--batch-size", "8",
                 "--image-size", "32", "--warmup", "0", "--repeats", "1", "--json", str(out)])
    result = json.loads(out.read_text())
    check_machine(result)
    rows = result["loaders"]
    for kind in kinds:
        assert "error" not in rows[kind], rows[kind]
        assert rows[kind]["train_img_s"] > 0, (kind, rows[kind]["train"])
        assert rows[kind]["eval_img_s"] > 0, (kind, rows[kind]["eval"])
    # Every pipeline read the same files; eval covers all of them.
    for kind in ("seed", "keras", "pil", "limit", *real_loaders()):
        assert rows[kind]["eval"]["images_per_pass"] == 24, kind
    for kind, key in (("seed", "eval_vs_limit"), ("tfdata", "train_vs_seed"),
                      ("tfdata", "eval_vs_best_peer")):
        assert rows[kind][key] > 0, (kind, key, rows)
    targets = result["targets"]
    assert set(targets) == {"train", "eval"}
    assert isinstance(targets["eval"]["eval_vs_limit_met"], bool)
    chart = out.with_suffix(".png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_script_targets():
    script = load_script("train")
    result = {"train": {
        "mixed/synthetic": {"img_s": 30.0, "ratio_to_keras_fit": 1.5},
        "mixed/keras_fit": {"img_s": 20.0},
        "mixed/dali": {"img_s": 27.0, "ratio_to_synthetic": 0.9, "ratio_to_keras_fit": 1.35},
        "fp32/synthetic": {"img_s": 9.0, "ratio_to_keras_fit": 0.9},
        "fp32/tfdata": {"error": "boom"},
    }}
    rows = {r["what"]: r for r in script.targets(result)}
    assert rows["mixed: fastfood step / Keras fit"]["met"] is True
    assert rows["mixed: dali loader / synthetic input"]["met"] is False
    assert rows["fp32: fastfood step / Keras fit"] == {
        "what": "fp32: fastfood step / Keras fit", "ratio": 0.9, "target": 1.0, "met": False}
    assert len(rows) == 3


@pytest.mark.slow
def test_op_costs_script(bench_data, tmp_path):
    # Its own process: it pins TensorFlow to one thread, which must not leak into other tests.
    out = tmp_path / "ops.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "archive" / "op_costs.py"
    subprocess.run([sys.executable, str(script), "--data", str(bench_data), "--n", "8",
                    "--image-size", "32", "--repeats", "1", "--json", str(out)],
                   check=True, capture_output=True, timeout=300)
    ops = json.loads(out.read_text())["ops"]
    for name in ("pil/decode", "tf/decode (accurate IDCT)",
                 "tf/resize centre antialiased bilinear"):
        assert ops[name]["ms_per_image_min"] > 0
    from fastfood.loaders import dali_available

    if dali_available():
        assert ops["dali/slice+resize_aa"]["ms_per_image_median"] > 0
