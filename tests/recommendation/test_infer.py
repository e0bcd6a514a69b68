"""DLRM under LoadGen: every scenario with null, pytorch and onnxruntime; aggregation; the AUC tool."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from loadgen.data import DataError
from recommendation import accuracy, infer

SCENARIOS = ["SingleStream", "MultiStream", "Server", "Offline"]


def _run(argv):
    args = infer.get_args_parser().parse_args(argv)
    return infer.main(args)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("backend", ["null", "pytorch", "onnxruntime"])
def test_every_scenario_and_backend(backend, scenario, raw, processed, exported, tmp_path, capsys):
    argv = ["--backend", backend, "--scenario", scenario, "--raw-dir", str(raw), "--processed-dir",
            str(processed.parent), "--max-ind-range", "5000", "--preprocess-workers", "1", "--model-dir",
            str(exported), "--samples-to-aggregate-fix", "20", "--count", "8", "--time", "0.2", "--max-time", "0",
            "--qps", "200", "--output", str(tmp_path), "--accuracy"]
    assert _run(argv) == 0
    assert f"TestScenario.{scenario}" in capsys.readouterr().out
    result = json.loads((tmp_path / scenario / "accuracy" / "results.json").read_text())
    acc = result["figures"]["accuracy"]
    assert acc["samples"] == 8 and acc["rows"] == 160


def test_accuracy_run_auc_equals_the_model_on_the_test_rows(raw, processed, exported, tmp_path):
    argv = ["--backend", "onnxruntime", "--scenario", "Offline", "--raw-dir", str(raw), "--processed-dir",
            str(processed.parent), "--preprocess-workers", "1", "--model-dir", str(exported),
            "--samples-to-aggregate-min", "5", "--samples-to-aggregate-max", "30", "--output", str(tmp_path),
            "--accuracy", "--mlperf-bin-loader"]
    assert _run(argv) == 0  # --max-ind-range comes from export.json
    from recommendation import data

    dense, sparse, label = data.transform(np.asarray(data.read_rows(data.split_file(processed, "test"))), 5000)
    program = torch.export.load(exported / "dlrm.pt2").module()
    with torch.inference_mode():
        expected = roc_auc_score(label, program(torch.from_numpy(dense), torch.from_numpy(sparse))[:, 0].numpy())
    got = accuracy.auc(tmp_path / "Offline" / "accuracy" / "mlperf_log_accuracy.json")
    assert got["rows"] == len(label) and got["AUC"] == pytest.approx(expected, abs=1e-6)


def test_aggregation_options(tmp_path):
    fixed = infer.aggregation_sizes(1000, fix=128)
    assert fixed.sum() == 1000 and set(fixed[:-1]) == {128} and fixed[-1] == 1000 - 7 * 128
    uniform = infer.aggregation_sizes(100_000, low=100, high=700, seed=1)
    assert uniform.sum() == 100_000 and uniform[:-1].min() >= 100 and uniform.max() <= 700
    assert abs(uniform[:-1].mean() - 400) < 15
    quantiles = tmp_path / "dist_quantile.txt"
    quantiles.write_text(", ".join(["100"] * 50 + ["700"] * 50))
    drawn = infer.aggregation_sizes(100_000, quantile_file=str(quantiles), seed=1)
    assert drawn.sum() == 100_000 and set(drawn[:-1]) == {100, 700}
    again = infer.aggregation_sizes(100_000, quantile_file=str(quantiles), seed=1)
    np.testing.assert_array_equal(drawn, again)  # seeded, as --numpy-rand-seed
    with pytest.raises(DataError, match="go together"):
        infer.aggregation_sizes(10, low=5)


def test_auc_tool_matches_scikit_learn_and_counts_a_sample_once(tmp_path):
    rng = np.random.default_rng(0)
    samples = [np.stack([rng.random(n), rng.integers(0, 2, n)], 1).astype(np.float32) for n in (5, 9, 3, 20)]
    entries = [{"seq_id": i, "qsl_idx": i, "data": s.tobytes().hex(), "size": s.nbytes} for i, s in enumerate(samples)]
    entries.append(dict(entries[1], seq_id=9))  # LoadGen's padding repeats a sample
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text(json.dumps(entries))
    rows = np.concatenate(samples)
    got = accuracy.auc(log)
    assert got["AUC"] == pytest.approx(roc_auc_score(rows[:, 1], rows[:, 0])) and got["rows"] == 37
    assert got["samples"] == 4


def test_two_scenarios_run_in_their_own_processes(raw, processed, exported, tmp_path, capsys):
    # The task factory goes to a spawned child per scenario; each builds its own CriteoTask and answers in full.
    argv = ["--backend", "null", "--scenario", "Offline,SingleStream", "--raw-dir", str(raw), "--processed-dir",
            str(processed.parent), "--max-ind-range", "5000", "--preprocess-workers", "1", "--model-dir",
            str(exported), "--samples-to-aggregate-fix", "10", "--count", "6", "--output", str(tmp_path),
            "--accuracy"]
    assert _run(argv) == 0
    for scenario in ("Offline", "SingleStream"):
        result = json.loads((tmp_path / scenario / "accuracy" / "results.json").read_text())
        assert result["model"] == "dlrm" and result["figures"]["accuracy"]["samples"] == 6
        assert result["figures"]["metrics"][0]["name"] == "AUC"
