"""The olympic score as the training rules define it, from runs read out of mllog logs."""

from __future__ import annotations

import json

import pytest

from loadgen.training.olympic import RunTime, olympic, read_run


def runs(*seconds):
    """Runs of these times; None is a run that did not converge."""
    return [RunTime(f"result_{i}.txt", s if s is not None else 99.0, s is not None, i) for i, s in enumerate(seconds)]


def test_drops_the_fastest_and_the_slowest():
    score = olympic(runs(5.0, 1.0, 3.0, 4.0, 2.0))
    assert score.seconds == pytest.approx(3.0) and set(score.dropped) == {0, 1} and set(score.used) == {2, 3, 4}


def test_one_run_that_did_not_converge_is_the_slowest():
    score = olympic(runs(1.0, 2.0, None, 4.0, 3.0))
    assert score.seconds == pytest.approx(3.0) and set(score.dropped) == {0, 2}
    assert "did not converge" in score.reason


def test_two_runs_that_did_not_converge_leave_no_score():
    score = olympic(runs(1.0, None, None, 4.0, 3.0))
    assert score.seconds is None and "2 runs did not converge" in score.reason


def test_ten_runs_drop_one_at_each_end():
    score = olympic(runs(*[float(i) for i in range(1, 11)]))
    assert score.seconds == pytest.approx(5.5) and len(score.used) == 8


def test_too_few_runs_leave_no_score():
    assert olympic(runs(1.0, 2.0)).seconds is None


def test_read_run_takes_the_log_times_status_and_seed(tmp_path):
    def line(key, value, t, **metadata):
        return ":::MLLOG " + json.dumps({"key": key, "value": value, "time_ms": t, "metadata": metadata}) + "\n"

    log = tmp_path / "result_0.txt"
    log.write_text(line("seed", 7, 10) + line("run_start", None, 1000) + "noise\n"
                   + line("run_stop", None, 4500, status="success"))
    assert read_run(log) == RunTime(str(log), 3.5, True, 7)
    log.write_text(line("run_start", None, 1000) + line("run_stop", None, 4500, status="aborted"))
    assert not read_run(log).converged
    log.write_text(line("run_start", None, 1000))
    assert read_run(log).seconds is None and not read_run(log).converged
