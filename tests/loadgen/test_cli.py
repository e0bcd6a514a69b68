"""Bad usage: one line on stderr, exit status 2."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

BAD = {
    "unknown-backend": ["--backend", "caffe"],
    "unknown-scenario": ["--profile", "null", "--scenario", "Offline,Batch"],
    "negative-qps": ["--profile", "null", "--qps", "-5"],
    "missing-model-file": ["--backend", "onnxruntime", "--model", "/nonexistent/model.onnx"],
    "missing-model-flag": ["--backend", "onnxruntime"],
    "unknown-profile": ["--profile", "resnet9000"],
    "missing-user-conf": ["--profile", "null", "--user-conf", "/nonexistent/user.conf"],
    "find-peak-offline": ["--profile", "null", "--scenario", "Offline", "--find-peak-performance"],
    "zero-batch": ["--profile", "null", "--max-batchsize", "0"],
}


@pytest.mark.parametrize("argv", BAD.values(), ids=BAD.keys())
def test_bad_usage_is_one_line_and_exit_2(argv, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "loadgen", *argv, "--output", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], proc.stderr


def test_profile_values_yield_to_typed_flags():
    from loadgen.__main__ import PROFILES, get_args_parser
    from loadgen.cli import parse_args

    args = parse_args(get_args_parser(), ["--profile", "null", "--input-shape", "3,8,8"], PROFILES)
    assert args.backend == "null" and args.input_shape == [3, 8, 8]


def test_every_help_string_states_its_default():
    from loadgen.__main__ import get_args_parser

    for action in get_args_parser()._actions:
        if action.help and action.dest != "help" and action.help != argparse.SUPPRESS:
            assert "(default: " in action.help and action.help.endswith(")"), action.dest


def test_python_m_loadgen_runs_two_scenarios_under_no_models_rules(tmp_path):
    # Each run in a spawned child; the factory lives in loadgen/__main__.py, which spawn does not import again.
    import json

    from loadgen.report import parse_detail

    proc = subprocess.run([sys.executable, "-m", "loadgen", "--profile", "null", "--scenario", "Offline,SingleStream",
                           "--accuracy", "--dataset-size", "64", "--output", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("accuracy run;") == 2
    for scenario in ("Offline", "SingleStream"):
        result = json.loads((tmp_path / scenario / "accuracy" / "results.json").read_text())
        assert result["model"] == "synthetic" and result["figures"]["queries"] == 64
        # mlperf.conf has no rules for "synthetic"; resnet50's would request 1024 performance samples.
        detail = parse_detail(tmp_path / scenario / "accuracy" / "mlperf_log_detail.txt")
        assert detail["requested_performance_sample_count_override"] == 0


def test_demo_steps_stop_at_the_first_failure_with_one_line_naming_it(capsys):
    from types import SimpleNamespace

    from loadgen.cli import demo_command, demo_steps

    ran = []
    command = SimpleNamespace(get_args_parser=lambda: argparse.ArgumentParser(),
                              main=lambda args: ran.append("command") or 0)
    steps = [("first", demo_command(command, [])), ("second", lambda: ran.append("second") or 3),
             ("third", lambda: ran.append("third") or 0)]
    assert demo_steps("toy", steps) == 3
    assert ran == ["command", "second"]
    out, err = capsys.readouterr()
    assert out.splitlines() == ["== toy demo: first", "== toy demo: second"]
    assert err == "toy demo: second failed (exit 3)\n"


def test_compliance_runs_are_verified_through_the_cli(tmp_path):
    # The performance and accuracy runs of a scenario, then TEST01 through the CLI: its logs and both
    # verification files in <output>/Offline/TEST01/, with the v6.0 seeds asked for.
    base = [sys.executable, "-m", "loadgen", "--profile", "null", "--scenario", "Offline", "--qps", "20000",
            "--time", "0", "--count", "2000", "--dataset-size", "256", "--rng-seeds", "v6.0", "--output",
            str(tmp_path)]
    for extra in ([], ["--accuracy"]):
        assert subprocess.run(base + extra, capture_output=True, text=True).returncode == 0
    proc = subprocess.run(base + ["--compliance", "TEST01"], capture_output=True, text=True)
    folder = tmp_path / "Offline" / "TEST01"
    # The performance check compares two runs of the null backend, whose rate a busy machine moves by more than
    # the 10 % the rule allows; what this test checks is that the CLI ran and verified the test.
    assert proc.returncode in (0, 1), proc.stderr
    assert (folder / "verify_accuracy.txt").read_text().splitlines()[-1] == "TEST PASS"
    assert (folder / "verify_performance.txt").read_text().splitlines()[-1].startswith("TEST ")
    assert "TEST01 accuracy: TEST PASS" in proc.stdout
    assert '"value": 2465351861681999779' in (folder / "mlperf_log_detail.txt").read_text()


def test_find_server_qps_records_its_search_through_the_cli(tmp_path):
    # Each run of the search in a process of its own; the record and the plot beside the runs' folders.
    proc = subprocess.run([sys.executable, "-m", "loadgen", "--profile", "null", "--scenario", "Server",
                           "--find-server-qps", "--search-time", "0.5", "--search-precision", "0.5", "--time", "1",
                           "--max-time", "0", "--no-trace", "--output", str(tmp_path)],
                          capture_output=True, text=True, timeout=280)
    folder = tmp_path / "Server-qps-search"
    assert proc.returncode in (0, 1), proc.stderr  # 1 when a busy machine confirms no rate: the record says so
    import json

    record = json.loads((folder / "server_qps_search.json").read_text())
    phases = [step["phase"] for step in record["steps"]]
    assert phases[:2] == ["offline", "offline"] and "coarse" in phases and record["offline_qps"] > 0
    assert (folder / "server_qps_search.png").is_file()
    for step in record["steps"]:
        assert (tmp_path / "Server-qps-search" / step["folder"].split("/")[-1] / "results.json").is_file()
    if proc.returncode == 0:
        assert "confirm" in phases and record["steps"][-1]["valid"] and "Server QPS" in proc.stdout
