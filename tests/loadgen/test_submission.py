"""The submission tree: every file of the checker's layout from a mini run, the accuracy log cut as the official
tool cuts it, the v5.1 layout, and the errors a user meets."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from loadgen import submission
from loadgen.backends import create_backend
from loadgen.harness import run
from loadgen.settings import RunSettings
from tests.loadgen.test_compliance import Sut

SCENARIOS = ("Offline", "SingleStream")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A resnet50 run folder as infer.py --output leaves it: two scenarios, each with its performance, accuracy,
    TEST01 and TEST04 runs (the null backend behind a 2 ms-a-sample task), seeds of v6.0."""
    out = tmp_path_factory.mktemp("runs")
    backend = create_backend("null")
    for scenario in SCENARIOS:
        sut = Sut()
        base = dict(model="resnet50", scenario=scenario, qps=400, time_s=0, count=300, rng_seeds="v6.0")
        run(sut, backend, RunSettings(**base, accuracy=True), out / scenario / "accuracy", max_batchsize=8)
        sut.performance_mode = True
        run(sut, backend, RunSettings(**base), out / scenario / "performance", max_batchsize=8)
        for test in ("TEST01", "TEST04"):
            run(sut, backend, RunSettings(**base, compliance=test), out / scenario / test, max_batchsize=8)
            from loadgen.compliance import verify

            verify(test, out / scenario)
    return out


def build(run_folder, tmp_path, name="resnet50-mini", **kw):
    options = dict(org="Demo", system_name="cpu-box", division="open") | kw
    return submission.build([submission.find_run(run_folder, name)], tmp_path / "tree", **options)


def test_tree_has_every_file_of_the_v60_layout(run_folder, tmp_path):
    written = build(run_folder, tmp_path, source_root=".")
    root = tmp_path / "tree" / "open" / "Demo"
    assert written["root"] == str(root)
    for scenario in SCENARIOS:
        folder = root / "results" / "cpu-box" / "resnet50-mini" / scenario
        expected = ["performance/run_1/mlperf_log_summary.txt", "performance/run_1/mlperf_log_detail.txt",
                    "accuracy/mlperf_log_summary.txt", "accuracy/mlperf_log_detail.txt",
                    "accuracy/mlperf_log_accuracy.json", "accuracy/accuracy.txt", "measurements.json", "user.conf",
                    "README.md", "TEST01/verify_accuracy.txt", "TEST01/verify_performance.txt",
                    "TEST01/performance/run_1/mlperf_log_detail.txt", "TEST01/performance/run_1/mlperf_log_summary.txt",
                    "TEST01/accuracy/mlperf_log_accuracy.json", "TEST01/accuracy/accuracy.txt",
                    "TEST04/verify_performance.txt", "TEST04/performance/run_1/mlperf_log_detail.txt",
                    "TEST04/performance/run_1/mlperf_log_summary.txt"]
        for name in expected:
            assert (folder / name).is_file() and (folder / name).stat().st_size, f"{scenario}/{name}"
        measurements = json.loads((folder / "measurements.json").read_text())
        assert all(measurements[field] for field in submission.MEASUREMENTS_FIELDS)
        accuracy = (folder / "accuracy" / "accuracy.txt").read_text().splitlines()
        assert accuracy[0].startswith("right=100.000%") and accuracy[-1].startswith("hash=")
        assert "Not valid for submission" in (folder / "README.md").read_text()  # shortened runs say so
    assert json.loads((root / "model_mapping.json").read_text()) == {"resnet50-mini": "resnet"}
    system = json.loads((root / "systems" / "cpu-box.json").read_text())
    assert set(submission.system.FIELDS) <= set(system) and len(submission.system.FIELDS) == 35
    assert system["division"] == "open" and system["system_type"] == "datacenter,edge"
    assert system["framework"].startswith("null ")  # the runs' backend
    assert (root / "src" / "README.md").is_file() and (root / "src" / "loadgen" / "harness.py").is_file()
    # v6.0 wants all four scenarios of resnet for a datacenter,edge system: the two this folder lacks are named.
    assert written["missing_scenarios"] == {"resnet50-mini": ["MultiStream", "Server"]}


def test_accuracy_log_is_cut_to_its_first_and_last_4_kib_with_the_whole_log_hash(run_folder, tmp_path):
    build(run_folder, tmp_path)
    source = run_folder / "Offline" / "accuracy" / "mlperf_log_accuracy.json"
    whole = source.read_bytes()
    assert len(whole) > submission.MAX_ACCURACY_LOG  # 300 responses: the cut applies
    cut = (tmp_path / "tree/open/Demo/results/cpu-box/resnet50-mini/Offline/accuracy/mlperf_log_accuracy.json")
    kept = cut.read_bytes()
    assert len(kept) <= submission.MAX_ACCURACY_LOG
    assert kept.startswith(whole[:4096]) and kept.endswith(whole[-4096:])
    text = cut.with_name("accuracy.txt").read_text()
    assert f"hash={hashlib.sha256(whole).hexdigest()}" in text.splitlines()


def test_small_accuracy_log_is_kept_whole(tmp_path):
    log = tmp_path / "small.json"
    log.write_text('[\n{ "seq_id" : 0, "qsl_idx" : 0, "data" : "00" }\n]\n')
    digest = submission.truncate_accuracy_log(log, tmp_path / "out.json")
    assert (tmp_path / "out.json").read_bytes() == log.read_bytes()
    assert digest == hashlib.sha256(log.read_bytes()).hexdigest()


def test_v51_layout_puts_measurements_and_compliance_beside_results(run_folder, tmp_path):
    build(run_folder, tmp_path, version="v5.1", system_type="edge")
    root = tmp_path / "tree" / "open" / "Demo"
    measurements = root / "measurements" / "cpu-box" / "resnet50-mini" / "Offline"
    assert {p.name for p in measurements.iterdir()} == {"user.conf", "README.md",
                                                         "cpu-box_resnet50-mini_Offline.json"}
    assert (root / "compliance/cpu-box/resnet50-mini/Offline/TEST01/verify_accuracy.txt").is_file()
    assert (root / "code" / "README.md").is_file() and not (root / "src").exists()
    assert not (root / "results/cpu-box/resnet50-mini/Offline/TEST01").exists()


def test_closed_division_takes_only_the_checker_model_names(run_folder, tmp_path):
    with pytest.raises(ValueError, match="closed division takes the checker's model names"):
        build(run_folder, tmp_path, division="closed")
    written = build(run_folder, tmp_path, division="closed", name="resnet")
    assert not written["model_mapping"]


def test_bad_inputs_are_refused(run_folder, tmp_path):
    build(run_folder, tmp_path)
    with pytest.raises(ValueError, match="exists already"):
        build(run_folder, tmp_path)
    with pytest.raises(ValueError, match="does not take retinanet"):
        submission.build([submission.Run(run_folder, "retinanet", "retinanet")], tmp_path / "t2", org="o",
                         system_name="s", division="open", system_type="edge")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(submission.SubmissionError, match="no runs"):
        submission.find_run(empty)


def test_a_run_folder_missing_its_accuracy_run_is_named(run_folder, tmp_path):
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(run_folder / "Offline", partial / "Offline", ignore=shutil.ignore_patterns("accuracy"))
    with pytest.raises(submission.SubmissionError, match="Offline: no accuracy run"):
        submission.build([submission.find_run(partial)], tmp_path / "tree", org="o", system_name="s",
                         division="open")


def test_system_overrides_and_checks(tmp_path):
    from loadgen.submission import system

    described = system.describe(division="open", submitter="o", system_name="s", system_type="edge", runs=[],
                                overrides={"cooling": "air", "status": "preview"})
    assert described["cooling"] == "air" and "cooling" not in system.unknown_fields(described)
    assert "is_network" not in described  # any value of it makes the v6.0 checker ask for network fields
    assert described["accelerators_per_node"] != 0  # the checker reads a falsy value as "empty"
    with pytest.raises(ValueError, match="status"):
        system.describe(division="open", submitter="o", system_name="s", system_type="edge", runs=[],
                        overrides={"status": "shipping"})
    bad = tmp_path / "info.json"
    bad.write_text('{"colour": "blue"}')
    with pytest.raises(ValueError, match="colour"):
        system.read_overrides(bad)


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--org", "o", "--system", "s"], 2, "--runs"),
    (["--runs", "/nonexistent", "--org", "o", "--system", "s"], 2, "no such folder"),
    (["--runs", "=x", "--org", "o", "--system", "s"], 2, "a name before"),
])
def test_cli_usage_errors_are_one_line(argv, code, message):
    proc = subprocess.run([sys.executable, "-m", "loadgen.submission", *argv], capture_output=True, text=True)
    assert proc.returncode == code and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cli_writes_the_tree(run_folder, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "loadgen.submission", "--runs", f"resnet50-mini={run_folder}",
                           "--org", "Demo", "--system", "box", "--output", str(tmp_path / "t")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "open/Demo" in proc.stdout and "no MultiStream, Server run" in proc.stderr
    assert (tmp_path / "t/open/Demo/systems/box.json").is_file()
