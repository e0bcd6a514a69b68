"""Several runs of one benchmark's training, and their score as MLPerf training computes it.

The training rules (training_policies, "Benchmark Results"): a benchmark result is the mean of a benchmark's
number of runs after dropping the fastest and the slowest; a single run that does not converge may be treated as
the slowest and dropped; with more than one the result is invalid. The number of runs is 5 for vision and
recommendation, 10 for translation (:data:`RUNS`, as mlperf_logging's package checker enforces them).

A run's time is the mllog's ``run_stop`` minus its ``run_start``, as the result summarizer measures it; a run
converged when its ``run_stop`` says ``success``. Framework-neutral: this module reads logs and numbers only.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Iterator, Sequence
from pathlib import Path

# Runs a package needs per benchmark (mlperf_logging's benchmark_meta / package checker).
RUNS = {"resnet": 5, "ssd": 5, "maskrcnn": 5, "dlrm": 5, "retinanet": 5, "gnmt": 10, "transformer": 10}
MLLOG = ":::MLLOG "


@dataclasses.dataclass(frozen=True)
class RunTime:
    """One run, as its mllog log tells it."""

    log: str
    seconds: float | None  # run_stop - run_start; None if the log has no complete run
    converged: bool
    seed: int | None


def events(log: str | Path) -> Iterator[dict]:
    """The mllog events of a log, in order: every line holding ``:::MLLOG `` (a prefix is allowed, as the
    checkers allow it); a line that does not parse is skipped."""
    with open(log, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            at = line.find(MLLOG)
            if at < 0:
                continue
            try:
                event = json.loads(line[at + len(MLLOG):])
            except ValueError:
                continue
            if isinstance(event, dict):
                yield event


def read_run(log: str | Path) -> RunTime:
    """The time, verdict and seed of the run an mllog log records (the first run_start and the last run_stop)."""
    start = stop = None
    converged = False
    seed = None
    for event in events(log):
        key = event.get("key")
        if key == "run_start" and start is None:
            start = float(event["time_ms"])
        elif key == "run_stop":
            stop = float(event["time_ms"])
            converged = (event.get("metadata") or {}).get("status") == "success"
        elif key == "seed" and seed is None and isinstance(event.get("value"), int):
            seed = event["value"]
    seconds = None if start is None or stop is None else (stop - start) / 1000
    return RunTime(str(log), seconds, converged and seconds is not None, seed)


@dataclasses.dataclass(frozen=True)
class Score:
    """The olympic score of a set of runs: seconds (None when the set has none) and how it was reached."""

    seconds: float | None
    used: tuple[int, ...]  # indices of the runs averaged
    dropped: tuple[int, ...]  # indices dropped: the fastest, the slowest or the one that did not converge
    reason: str


def olympic(runs: Sequence[RunTime]) -> Score:
    """Drop the fastest and the slowest run and average the rest; a run that did not converge is the slowest (one
    at most: more leave no score). Fewer than 3 runs leave nothing to average once two are dropped."""
    failed = [i for i, r in enumerate(runs) if not r.converged]
    if len(failed) > 1:
        return Score(None, (), tuple(failed), f"{len(failed)} runs did not converge; the rules allow one")
    ranked = sorted((i for i, r in enumerate(runs) if r.converged), key=lambda i: runs[i].seconds)
    if len(ranked) + len(failed) < 3:
        return Score(None, (), (), f"{len(runs)} runs: the olympic mean needs at least 3")
    if failed:  # the run that did not converge stands in for the slowest
        used, dropped = ranked[1:], (ranked[0], *failed)
    else:
        used, dropped = ranked[1:-1], (ranked[0], ranked[-1])
    seconds = statistics.fmean(runs[i].seconds for i in used)
    how = "the fastest and " + ("the one that did not converge" if failed else "the slowest") + " dropped"
    return Score(seconds, tuple(used), tuple(dropped), how)
