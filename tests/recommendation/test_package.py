"""Five short DLRM runs (train.py --runs 5) -> a training results package that mlperf_logging's package checker
accepts in the open division, with the olympic score its result summarizer computes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from loadgen.training import package


@pytest.fixture(scope="module")
def five_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("dlrm") / "runs"
    # A target the first evaluations reach (AUC 0.5 after 20 steps): five runs to their target in seconds.
    proc = subprocess.run([sys.executable, "-m", "recommendation.train", "--config", "mini", "--runs", "5",
                           "--test-freq", "20", "--target", "0.5", "--quiet", "--output", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_runs_write_results_and_the_olympic_score(five_runs):
    out, stdout = five_runs
    assert sorted(p.name for p in out.glob("result_*.txt")) == [f"result_{i}.txt" for i in range(5)]
    record = json.loads((out / "olympic.json").read_text())
    assert [run["seed"] for run in record["runs"]] == [1, 2, 3, 4, 5]  # each run logs its own seed
    times = sorted(run["seconds"] for run in record["runs"])
    assert record["score_s"] == pytest.approx(sum(times[1:4]) / 3)
    assert f"olympic score: {record['score_s']:.1f} s" in stdout and stdout.count("reached the target") == 5


def test_package_passes_the_package_checker_and_the_summarizer_agrees(five_runs, tmp_path):
    out, _ = five_runs
    made = package.build([out], tmp_path / "pkg", org="SuiteTest", system_name="cpu-box", source_root=".")
    assert (made["benchmark"], made["division"], made["runs"], made["ruleset"]) == ("dlrm", "open", 5, "2.1.0")
    results = tmp_path / "pkg" / "results" / "cpu-box" / "dlrm"
    assert sorted(p.name for p in results.iterdir()) == [f"result_{i}.txt" for i in range(5)]
    system = json.loads((tmp_path / "pkg" / "systems" / "cpu-box.json").read_text())
    assert set(system) == set(package.FIELDS) and all(isinstance(v, str) for v in system.values())
    assert (tmp_path / "pkg" / "benchmarks" / "dlrm" / "implementations" / "mlperf-suite" / "README.md").is_file()
    passed, verdict = package.check(tmp_path / "pkg", "2.1.0")
    assert passed, verdict
    proc = subprocess.run([sys.executable, "-m", "mlperf_logging.result_summarizer", str(tmp_path / "pkg"),
                           "training", "2.1.0", "--csv", str(tmp_path / "summary.csv")], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (row,) = list(csv.DictReader(open(tmp_path / "summary.csv")))
    assert float(row["dlrm"]) * 60 == pytest.approx(made["score_s"], rel=1e-6)  # minutes there, seconds here


def test_package_refuses_the_wrong_number_of_runs(five_runs, tmp_path):
    out, _ = five_runs
    partial = tmp_path / "four"
    partial.mkdir()
    for i in range(4):
        (partial / f"result_{i}.txt").write_bytes((out / f"result_{i}.txt").read_bytes())
    with pytest.raises(package.PackageError, match="exactly 5 runs"):
        package.build([partial], tmp_path / "pkg", org="o", system_name="s")


@pytest.mark.slow
def test_runs_under_torchrun_score_on_rank_0(tmp_path):
    # Every rank runs each run (a collective job); rank 0 alone gathers the logs and scores.
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "recommendation.train", "--config", "mini", "--runs", "3", "--test-freq", "20",
                           "--target", "0.5", "--quiet", "--threads", "1", "--output", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "olympic.json").read_text())
    assert [run["seed"] for run in record["runs"]] == [1, 2, 3] and record["score_s"] is not None
    assert proc.stdout.count("olympic score:") == 1
