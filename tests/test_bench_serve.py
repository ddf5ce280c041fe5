"""`fastfood bench --what serve` at tiny settings: the figures are there and the server
behaved (no speed assertions: those are for BENCHMARKS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fastfood.cli import cli


@pytest.mark.slow
def test_bench_serve_reports_throughput_latency_memory_and_overload(
        tmp_path: Path, sample_dir: Path) -> None:
    out = tmp_path / "bench.json"
    res = CliRunner().invoke(cli, ["bench", "--what", "serve", "--data", str(sample_dir),
                                   "--width", "0.0625", "--image-size", "32",
                                   "--json", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    assert result["errors"] == []
    serve = result["serve"]
    assert serve["model"] == {"width": 0.0625, "image_size": 32, "classes": 8,
                              "weights": "untrained"}
    assert serve["offline_img_s"] > 0 and serve["ratio_to_offline"] > 0
    for clients in ("clients_16", "clients_1"):
        row = serve[clients]
        assert row["img_s"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"], row
    assert serve["clients_16"]["rounds"][0]["statuses"] == {"200": 128}
    assert serve["clients_1"]["statuses"] == {"200": 20}
    memory = serve["memory_mb"]
    assert 0 < memory["rest_after_start"] <= memory["peak_16_clients"]
    flood = serve["overload"]
    assert flood["clients"] == 4 * flood["queue_bound"]
    assert set(flood["statuses"]) <= {"200", "503"}, flood  # refusals, never errors
    assert flood["retry_after_missing"] == 0
    assert flood["alive_after"] and flood["served_after"] and flood["admitted_after"] == 0
    assert serve["exit_code"] == 0
    assert "Serve" in res.output
