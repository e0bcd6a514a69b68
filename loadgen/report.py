"""LoadGen's logs -> the reference's summary line, one results JSON and a latency histogram (``loadgen.plots``).

Every figure comes from LoadGen: the detail log (``mlperf_log_detail.txt``) for validity, throughput, mean and
the percentiles LoadGen reports, and the trace (``mlperf_log_trace.json``) for the per-sample latencies behind
the 80th-percentile tile and the histogram. Percentiles use LoadGen's own rule, ``sorted[int(n * p)]``, so the
tiles LoadGen also reports are equal to its figures.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.accuracy import Accuracy
from loadgen.environment import environment
from loadgen.plots import write_histogram
from loadgen.settings import RunSettings

# The reference harness's tiles (percent).
TILES = (50.0, 80.0, 90.0, 95.0, 99.0, 99.9)
_MLLOG = ":::MLLOG "
_SAMPLE_EVENT = re.compile(rb'^\{"name":"Sample","cat":"default","ph":"b".*?"complete_ns":(\d+)')


@dataclasses.dataclass
class Result:
    """One run's figures, all from LoadGen. Times are seconds."""

    scenario: str
    mode: str
    valid: bool | None
    invalid_reasons: list[str]
    qps: float | None
    mean_s: float | None
    time_s: float | None
    queries: int | None
    tiles: dict[str, float]
    accuracy: Accuracy | None
    output_dir: str
    files: dict[str, str]
    loadgen_errors: list[str] = dataclasses.field(default_factory=list)

    def line(self) -> str:
        """The reference harness's line, e.g. ``TestScenario.Offline qps=..., mean=..., tiles=50.0:...``."""
        # Each metric by its name and in its own scale: top1=76.000%, mAP=37.500%, BLEU=24.000.
        acc = f", {self.accuracy.text()}" if self.accuracy is not None else ""
        tiles = ",".join(f"{p}:{v:.4f}" for p, v in self.tiles.items())
        return (f"TestScenario.{self.scenario} qps={_fmt(self.qps, '.2f')}, mean={_fmt(self.mean_s, '.4f')}, "
                f"time={_fmt(self.time_s, '.3f')}{acc}, queries={self.queries}, tiles={tiles}")


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def parse_detail(path: Path) -> dict[str, Any]:
    """LoadGen's detail log as {key: value}; repeated keys keep every value, in order, under ``key + '[]'``."""
    out: dict[str, Any] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith(_MLLOG):
                continue
            try:
                entry = json.loads(line[len(_MLLOG):])
            except json.JSONDecodeError:
                continue
            key, value = entry.get("key"), entry.get("value")
            out.setdefault(key + "[]", []).append(value)
            out[key] = value
    return out


def trace_latencies(path: Path) -> np.ndarray:
    """Per-sample latencies (ns) from LoadGen's trace: the ``complete_ns`` of each Sample begin event."""
    values = []
    with open(path, "rb") as fh:
        for line in fh:
            m = _SAMPLE_EVENT.match(line)
            if m:
                values.append(int(m.group(1)))
    return np.asarray(values, dtype=np.int64)


def loadgen_percentile(sorted_ns: np.ndarray, percent: float) -> float:
    """LoadGen's rule (results.cc): the element at index int(n * p) of the sorted latencies."""
    return float(sorted_ns[int(len(sorted_ns) * percent / 100.0)])


def _tiles(detail: dict[str, Any], latencies: np.ndarray | None) -> dict[str, float]:
    tiles = {}
    ordered = np.sort(latencies) if latencies is not None and len(latencies) else None
    for p in TILES:
        key = f"result_{p:.2f}_percentile_latency_ns"
        if ordered is not None:
            tiles[str(p)] = loadgen_percentile(ordered, p) / 1e9
        elif key in detail:
            tiles[str(p)] = float(detail[key]) / 1e9
    return tiles


def _first(detail: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        if key in detail and detail[key] is not None:
            return float(detail[key])
    return None


def _duration_s(detail: dict[str, Any]) -> float | None:
    """Run time by LoadGen's clock: from its power_begin mark to its power_end mark (ms resolution)."""
    try:
        begin, end = (datetime.datetime.strptime(detail[k], "%m-%d-%Y %H:%M:%S.%f")
                      for k in ("power_begin", "power_end"))
    except (KeyError, TypeError, ValueError):
        return None
    return (end - begin).total_seconds()


def _qps(detail: dict[str, Any], time_s: float | None) -> float | None:
    """Samples per second as LoadGen reports it; MultiStream reports none, so there it is LoadGen's query
    count times its samples per query over LoadGen's run time."""
    qps = _first(detail, "result_samples_per_second", "result_completed_samples_per_sec",
                 "result_qps_with_loadgen_overhead")
    if qps is None and time_s and "result_query_count" in detail and "effective_samples_per_query" in detail:
        qps = detail["result_query_count"] * detail["effective_samples_per_query"] / time_s
    return qps


def write_json_atomic(path: Path, data: Any) -> None:
    """``data`` as indented JSON, written whole or not at all (:func:`loadgen.data.write_atomic`)."""
    from loadgen.data import write_atomic

    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def summarize(out: Path, rs: RunSettings, *, task=None, backend=None, wall_s: float | None = None,
              command: Sequence[str] | None = None, extra: dict | None = None) -> Result:
    """Read LoadGen's logs in ``out``; write results.json (and latency_histogram.png); return the figures."""
    detail = parse_detail(out / "mlperf_log_detail.txt")
    trace = out / "mlperf_log_trace.json"
    latencies = trace_latencies(trace) if trace.is_file() and trace.stat().st_size else None
    files = {name: str(out / name) for name in ("mlperf_log_summary.txt", "mlperf_log_detail.txt",
                                                "mlperf_log_accuracy.json", "mlperf_log_trace.json", "user.conf")
             if (out / name).is_file()}
    accuracy = None
    if rs.accuracy and task is not None:
        accuracy = task.accuracy(out / "mlperf_log_accuracy.json")
        if accuracy is not None and not isinstance(accuracy, Accuracy):
            raise TypeError(f"{type(task).__name__}.accuracy() must return loadgen.accuracy.Accuracy or None, "
                            f"got {type(accuracy).__name__}")
    validity = detail.get("result_validity")
    reasons = [str(r) for r in detail.get("result_invalid_reason[]", [])]
    if rs.accuracy:
        valid = None  # LoadGen judges performance runs only
    else:
        valid = validity == "VALID"
    time_s = _duration_s(detail)
    mean_ns = _first(detail, "result_mean_latency_ns")
    queries = detail.get("result_query_count")
    if queries is None and latencies is not None:
        queries = len(latencies)  # accuracy runs: LoadGen reports no figures, its trace has every sample
    result = Result(
        scenario=rs.scenario, mode=rs.mode, valid=valid, invalid_reasons=reasons, qps=_qps(detail, time_s),
        mean_s=None if mean_ns is None else mean_ns / 1e9, time_s=time_s,
        queries=None if queries is None else int(queries), tiles=_tiles(detail, latencies), accuracy=accuracy,
        output_dir=str(out), files=files,
        loadgen_errors=[str(e) for e in detail.get("error_invalid_config[]", []) + detail.get("error_runtime[]", [])])
    if accuracy is not None:
        from loadgen.data import write_atomic

        write_atomic(out / "accuracy.txt", task.accuracy_text(accuracy) + "\n")
        files["accuracy.txt"] = str(out / "accuracy.txt")
    if latencies is not None and len(latencies):
        png = out / "latency_histogram.png"
        write_histogram(png, latencies, f"{rs.model} {rs.scenario} {rs.mode}", result.tiles)
        files["latency_histogram"] = str(png)
    loadgen_figures = {k: v for k, v in detail.items()
                       if isinstance(k, str) and (k.startswith("result_") or k.startswith("effective_"))
                       and not k.endswith("[]")}
    record = {
        "status": "ok",
        "scenario": rs.scenario,
        "mode": rs.mode,
        "model": rs.model,
        "validity": None if rs.accuracy else validity,
        "invalid_reasons": reasons,
        "line": result.line(),
        "figures": {"qps": result.qps, "mean_s": result.mean_s, "time_s": result.time_s,
                    "queries": result.queries, "tiles_s": result.tiles,
                    "accuracy": None if accuracy is None else accuracy.as_json(),
                    "metrics": None if accuracy is None else accuracy.metrics_json(),
                    "samples_traced": None if latencies is None else int(len(latencies))},
        "loadgen": loadgen_figures,
        "loadgen_errors": result.loadgen_errors,
        "settings": dataclasses.asdict(rs),
        "backend": None if backend is None else {"name": backend.name, "version": backend.version(),
                                                 "device": backend.config.device},
        "harness": dict(extra or {}, wall_s=wall_s),
        "environment": environment(command),
        "files": files,
    }
    write_json_atomic(out / "results.json", record)
    from loadgen import results

    results.record_run("inference", record, out / "results.json")
    return result


def write_failure(out: Path, rs: RunSettings, error: str, detail: str | None,
                  command: Sequence[str] | None) -> None:
    """A results.json that says the run failed, and why, in place of figures."""
    record = {"status": "failed", "scenario": rs.scenario, "mode": rs.mode, "model": rs.model, "error": error,
              "traceback": detail, "settings": dataclasses.asdict(rs), "environment": environment(command)}
    write_json_atomic(out / "results.json", record)
    from loadgen import results

    results.record_run("inference", record, out / "results.json")
