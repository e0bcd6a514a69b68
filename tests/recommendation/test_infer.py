"""DLRM under LoadGen: every scenario with null, pytorch and onnxruntime; aggregation; the AUC tool; checkpoints."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from loadgen.data import DataError
from recommendation import accuracy, infer, models

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
    assert got["rows"] == len(label) and got["auc"] == pytest.approx(expected, abs=1e-6)


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
    assert got["auc"] == pytest.approx(roc_auc_score(rows[:, 1], rows[:, 0])) and got["rows"] == 37
    assert got["samples"] == 4


class NotATensor:
    def __reduce__(self):
        return (print, ("this would run",))


def test_reference_checkpoint_loads_safely_and_code_is_refused(processed, tmp_path):
    from recommendation import data

    sizes = data.table_sizes(processed, 5000)
    model = models.build("mini", sizes)
    good = tmp_path / "tb_like.pt"
    torch.save({"epoch": 0, "iter": 10, "train_acc": np.float64(0.78), "test_acc": 0.79,
                "state_dict": model.state_dict(), "opt_state_dict": {"state": {}, "param_groups": []}}, good)
    loaded, meta = models.load(good)
    assert meta["arch"] == "mini" and loaded.table_sizes == sizes
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    bad = tmp_path / "evil.pt"
    torch.save({"state_dict": model.state_dict(), "extra": NotATensor()}, bad, pickle_module=pickle)
    with pytest.raises(models.CheckpointError, match="refused"):
        models.load(bad)
    from recommendation import export

    out = tmp_path / "converted"
    assert export.main(export.get_args_parser().parse_args(["--checkpoint", str(good), "--out", str(out),
                                                            "--convert-only"])) == 0
    converted, _ = models.load(out)
    torch.testing.assert_close(converted.state_dict()["emb_l.3.weight"], model.state_dict()["emb_l.3.weight"])


def test_training_reaches_the_target_and_the_log_passes_the_compliance_checker(tmp_path):
    import subprocess

    from recommendation import train

    out = tmp_path / "train"
    args = train.get_args_parser().parse_args(["--output", str(out), "--quiet", "--processed-dir",
                                               str(tmp_path / "processed")])
    assert train.main(args) == 0
    result = json.loads((out / "train_result.json").read_text())
    assert result["reached_target"] and result["auc"] >= 0.8025
    log = out / "mlperf_train_log.txt"
    for extra in ([], ["--config", "training_3.1.0/closed_dlrm.yaml"]):
        ruleset = "3.1.0" if extra else "2.1.0"
        proc = subprocess.run([sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", "training",
                               "--ruleset", ruleset, *extra, "--log_output", str(tmp_path / "cc.log"), str(log)],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0 and "SUCCESS" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_one_training_step(raw, tmp_path):
    from recommendation import train

    args = train.get_args_parser().parse_args(["--raw-dir", str(raw), "--max-steps", "1", "--output",
                                               str(tmp_path), "--quiet", "--processed-dir", str(tmp_path / "p"),
                                               "--no-mlperf-bin-loader", "--preprocess-workers", "1"])
    assert train.main(args) == 0
    assert json.loads((tmp_path / "train_result.json").read_text())["steps"] == 1
    assert Path(tmp_path / "model.safetensors").is_file()
