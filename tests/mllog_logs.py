"""Reading training logs in tests: their mllog events, the MLPerf compliance checker on them, and closed-division
excerpts (a real run's own lines up to run_start, then an evaluation block that reaches the closed target, which
no test-sized run can)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def mllog_events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG" in line]


def checker(log: Path, ruleset: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", "training",
                           "--ruleset", ruleset, "--log_output", str(log.with_suffix(".cc")), str(log)],
                          capture_output=True, text=True, timeout=120)


def closed_excerpt(real_log: Path, out: Path, accuracy: Any, eval_epoch: int, **change) -> Path:
    """``real_log``'s lines up to run_start, values of the keys in ``change`` replaced, then one block of
    ``eval_epoch`` epochs and an evaluation logging ``accuracy``, and run_stop with status success."""
    lines = []
    for event in mllog_events(real_log):
        if event["key"] in change:
            event["value"] = change[event["key"]]
        lines.append(event)
        if event["key"] == "run_start":
            break
    t, meta = lines[-1]["time_ms"], lines[-1]["metadata"]

    def add(kind, key, value=None, **md):
        lines.append({"namespace": "", "time_ms": t + len(lines), "event_type": kind, "key": key, "value": value,
                      "metadata": {**meta, **md}})

    add("INTERVAL_START", "block_start", first_epoch_num=0, epoch_count=eval_epoch)
    add("INTERVAL_START", "epoch_start", epoch_num=0)
    add("INTERVAL_END", "epoch_stop", epoch_num=0)
    add("INTERVAL_END", "block_stop", first_epoch_num=0, epoch_count=eval_epoch)
    add("INTERVAL_START", "eval_start", epoch_num=eval_epoch)
    add("POINT_IN_TIME", "eval_accuracy", accuracy, epoch_num=eval_epoch)
    add("INTERVAL_END", "eval_stop", epoch_num=eval_epoch)
    add("INTERVAL_END", "run_stop", status="success")
    out.write_text("".join(f":::MLLOG {json.dumps(e)}\n" for e in lines))
    return out
