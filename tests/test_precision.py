"""Inference precision: the choice by hardware, batch norm folded into the convolutions,
bf16 against float32 on a trained run, and --precision on predict, evaluate and serve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fastfood.errors import FastfoodError
from fastfood.inference.precision import choose
from fastfood.machine import Hardware, cpu_has_bf16

from support.cli import run_cli
from support.runs import untrained_run

# /proc/cpuinfo flags lines, shortened: an AVX2-only EPYC (Zen 2), a Zen 4 EPYC with
# AVX512-BF16, a Sapphire Rapids Xeon with AMX.
ZEN2 = "flags\t\t: fpu sse2 avx avx2 fma bmi2 sha_ni\n"
ZEN4 = "flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni\n"
SPR = "flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile amx_int8\n"

# bf16 against float32 on the trained test run: at most this share of top-1 answers may
# differ (1 of its 48 val images; the 30-step run has near-ties), and no probability by
# more than this.
TOP1_DIFFER_AT_MOST = 1 / 48
MAX_PROB_DIFF = 0.05


def test_auto_follows_the_hardware() -> None:
    cpu = lambda flags: Hardware(cpu_bf16=cpu_has_bf16(flags))  # noqa: E731
    assert choose("auto", cpu(ZEN2)).name == "fp32"  # emulated bf16 would be slower
    assert choose("auto", cpu(ZEN4)).name == "bf16"
    assert choose("auto", cpu(SPR)).name == "bf16"
    # A handful of images on a CPU: float32 (measured faster at batch 1, see the module).
    assert choose("auto", cpu(ZEN4), images=1).name == "fp32"
    assert choose("auto", cpu(ZEN4), images=100).name == "bf16"
    gpu = lambda cap: Hardware(gpu_capabilities=(cap,), gpu_names=("G",))  # noqa: E731
    assert choose("auto", gpu((9, 0)), images=1).name == "bf16"
    assert choose("auto", gpu((7, 5))).name == "fp16"
    assert choose("auto", gpu((6, 1))).name == "fp32"
    # The oldest GPU decides; an explicit value is taken whatever the hardware.
    mixed = Hardware(gpu_capabilities=((8, 0), (7, 0)), gpu_names=("A100", "V100"))
    assert choose("auto", mixed).name == "fp16" and "V100" in choose("auto", mixed).reason
    for name, policy in (("fp32", "float32"), ("bf16", "mixed_bfloat16"),
                         ("fp16", "mixed_float16")):
        assert choose(name, cpu(ZEN2)).policy == policy
    with pytest.raises(FastfoodError, match="--precision 'fp64'"):
        choose("fp64", cpu(ZEN4))


def test_folded_batch_norm_gives_the_same_logits() -> None:
    """A BN net with non-trivial statistics, folded into the plain layout: same logits."""
    import keras

    from fastfood.model import norm_of, vgg19
    from fastfood.model.fold import fold_into

    keras.utils.set_random_seed(0)
    bn = vgg19(3, image_size=32, width=0.125, norm="batch")
    rng = np.random.default_rng(0)
    for layer in bn.layers:
        if layer.name.endswith("_bn"):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype(np.float32))
            layer.beta.assign(rng.normal(0, 0.3, n).astype(np.float32))
            layer.moving_mean.assign(rng.normal(0, 0.5, n).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, n).astype(np.float32))
    plain = fold_into(bn, vgg19(3, image_size=32, width=0.125, norm="none"))
    assert norm_of(bn) == "batch" and norm_of(plain) == "none"
    x = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    want = bn(x, training=False).numpy()
    got = plain(x, training=False).numpy()
    assert np.abs(want).max() > 0.1  # not a degenerate all-zero net
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.slow
def test_bf16_answers_as_fp32_on_a_trained_run(trained_run: Path, sample_dir: Path) -> None:
    """The trained (BN) test run in bf16 and in float32: the same top-1 within the stated
    tolerance; the bf16 model is folded and computes in bfloat16."""
    from fastfood.data import load
    from fastfood.inference.agreement import compare
    from fastfood.predict import Predictor

    files = list(load(sample_dir).val.files)
    answers = {}
    for name in ("fp32", "bf16"):
        predictor = Predictor.load(trained_run, precision=name)
        assert predictor.precision.name == name and predictor.batch_norm_folded
        compute = {layer.dtype_policy.compute_dtype for layer in predictor.model.layers
                   if layer.weights}
        assert compute == {"float32" if name == "fp32" else "bfloat16"}
        probs = []
        for p in predictor.predict_files(files, top_k=8, batch_size=16, loader="tfdata"):
            row = np.zeros(8, np.float32)
            row[[g.index for g in p.top_k]] = [g.prob for g in p.top_k]
            probs.append(row)
        answers[name] = np.stack(probs)
    got = compare(answers["bf16"], answers["fp32"])
    assert got["sample"] == 48
    assert got["top1_differs"] <= TOP1_DIFFER_AT_MOST * 48, got
    assert got["max_prob_diff"] <= MAX_PROB_DIFF, got
    assert got["max_prob_diff"] > 0  # it did compute in another precision


def test_predict_flag(trained_run: Path, sample_dir: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    from fastfood.data import load

    files = list(load(sample_dir).val.files[:2])
    for asked, ran in (("bf16", "bf16"), ("auto", "fp32")):  # auto: 2 images stay fp32
        code, out, err = run_cli(["predict", *files, "--run-dir", str(trained_run), "--json",
                                  "--precision", asked], capsys)
        assert code == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        assert [x["precision"] for x in lines] == [ran, ran]
        assert f"precision {ran} (" in err
    code, out, err = run_cli(["predict", files[0], "--run-dir", str(trained_run),
                              "--precision", "fp64"], capsys)
    assert code == 2 and "--precision" in err and not out


@pytest.mark.slow
def test_evaluate_flag_and_agreement(trained_run: Path, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    code, out, err = run_cli(["evaluate", "--run-dir", str(trained_run), "--json",
                              "--precision", "bf16", "--agreement-sample", "20"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["precision"]["precision"] == "bf16" and result["precision"]["batch_norm_folded"]
    agreement = result["agreement"]
    assert agreement["reference"] == "fp32" and agreement["sample"] == 20
    assert agreement["of"] == result["n"] == 48
    assert agreement["top1_differs"] <= 1 and 0 < agreement["max_prob_diff"] <= MAX_PROB_DIFF
    assert json.loads((trained_run / "eval_val.json").read_text())["agreement"] == agreement
    assert "precision bf16" in err

    code, out, err = run_cli(["evaluate", "--run-dir", str(trained_run), "--json",
                              "--precision", "fp32"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["precision"]["precision"] == "fp32" and result["agreement"] is None

    for argv in (["--precision", "half"], ["--agreement-sample", "-1"]):
        code, out, err = run_cli(["evaluate", "--run-dir", str(trained_run), *argv], capsys)
        assert code == 2 and argv[0] in err and not out, err


def test_serve_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`fastfood serve --precision X` loads the model at X, and /v1/model says which."""
    from starlette.testclient import TestClient

    from fastfood.server.app import create_app
    from fastfood.server.model import ServedModel
    from fastfood.server.settings import ServeSettings

    from fastfood.inference.runs import inference_model

    run = untrained_run(tmp_path / "run", ["a", "b"])  # random init: batch norm
    # A handful of images is not worth the fold (module doc of inference_model); batches are.
    assert not inference_model(run, "fp32", images=1).folded
    model = ServedModel.load(run, precision="bf16")
    assert model.batch_norm_folded
    with TestClient(create_app(model, ServeSettings())) as client:
        described = client.get("/v1/model").json()
    assert described["precision"]["precision"] == "bf16"
    assert described["precision"]["policy"] == "mixed_bfloat16"
    assert {layer.dtype_policy.compute_dtype for layer in model.forward.model.layers
            if layer.weights} == {"bfloat16"}

    # The command hands its flag to the loader (stopped there: no server is started).
    asked = []

    def load(run_dir, model_path=None, precision="fp32"):
        asked.append(precision)
        raise FastfoodError("stopped after the load")

    monkeypatch.setattr(ServedModel, "load", load)
    for flag in (["--precision", "fp16"], []):
        code, _, err = run_cli(["serve", "--run-dir", str(run), "--port", "0", *flag], capsys)
        assert code == 2 and "stopped after the load" in err
    assert asked == ["fp16", "auto"]
    code, out, err = run_cli(["serve", "--run-dir", str(run), "--precision", "int8"], capsys)
    assert code == 2 and "--precision" in err and not asked[2:]
