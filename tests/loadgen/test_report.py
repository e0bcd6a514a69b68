"""The report's figures are LoadGen's: tiles from its trace equal the percentiles its detail log states."""

from __future__ import annotations

import json

import pytest

from loadgen.backends import create_backend
from loadgen.harness import run
from loadgen.report import parse_detail
from loadgen.settings import RunSettings
from tests.loadgen.conftest import NULL_QPS, IndexTask


@pytest.mark.parametrize("scenario", ["Server", "SingleStream"])
def test_tiles_match_loadgen_percentiles(scenario, quick_conf, tmp_path):
    rs = RunSettings(model="resnet50", scenario=scenario, qps=NULL_QPS[scenario], user_conf=quick_conf)
    result = run(IndexTask(), create_backend("null"), rs, tmp_path)
    detail = parse_detail(tmp_path / "mlperf_log_detail.txt")
    for p in ("50.0", "90.0", "95.0", "99.0", "99.9"):
        assert result.tiles[p] == pytest.approx(detail[f"result_{float(p):.2f}_percentile_latency_ns"] / 1e9)
    assert list(result.tiles) == ["50.0", "80.0", "90.0", "95.0", "99.0", "99.9"]
    assert result.tiles["50.0"] <= result.tiles["80.0"] <= result.tiles["90.0"]
    assert result.mean_s == pytest.approx(detail["result_mean_latency_ns"] / 1e9)
    line = result.line()
    assert line.startswith(f"TestScenario.{scenario} qps=") and ", tiles=50.0:" in line and ",80.0:" in line


def test_results_json_and_histogram(quick_conf, tmp_path):
    rs = RunSettings(model="resnet50", scenario="Offline", qps=NULL_QPS["Offline"], user_conf=quick_conf)
    run(IndexTask(), create_backend("null"), rs, tmp_path, command=["infer", "--scenario", "Offline"])
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["scenario"] == "Offline" and data["mode"] == "performance" and data["validity"] == "VALID"
    assert data["environment"]["command"] == ["infer", "--scenario", "Offline"]
    assert data["environment"]["cpu_cores"] >= 1 and data["environment"]["cpu_model"]
    assert "mlcommons-loadgen" in data["environment"]["packages"]
    assert "git_revision" in data["environment"] and "gpu" in data["environment"]
    assert data["loadgen"]["result_validity"] == "VALID"
    png = (tmp_path / "latency_histogram.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_without_trace_tiles_fall_back_to_loadgen_summary(quick_conf, tmp_path):
    rs = RunSettings(model="resnet50", scenario="Server", qps=NULL_QPS["Server"], user_conf=quick_conf)
    result = run(IndexTask(), create_backend("null"), rs, tmp_path, trace=False)
    assert "80.0" not in result.tiles and "99.0" in result.tiles
    assert not (tmp_path / "latency_histogram.png").exists()
