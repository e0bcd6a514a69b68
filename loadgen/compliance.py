"""MLPerf inference compliance tests TEST01 and TEST04: their audit.config and their verification.

Written from the published rules (the inference repository's ``compliance/`` READMEs and the submission
checker's expectations), not from their scripts:

- **TEST01** checks that performance mode really infers: a performance run with LoadGen's accuracy log sampling a
  subset of the responses (audit.config mode 2, a sampling target per model), whose responses must equal the
  accuracy run's for the same samples, and whose performance must be within 10 % of the performance run's. Where
  responses are not bit-identical (a non-deterministic backend), the rule's second path compares the accuracy of
  the sampled responses with the accuracy run's on the same samples: within 1 % passes.
- **TEST04** checks that the system does not cache results: a performance run that issues one sample over and
  over (``performance_issue_same``) may be at most 10 % faster than the performance run.

Each verification writes the file the submission checker reads (``verify_accuracy.txt``,
``verify_performance.txt``), in the published format: counters and scores, then ``TEST PASS`` or ``TEST FAIL``.
The submission checker requires TEST01 of resnet and retinanet and TEST04 of resnet (closed division).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

TESTS = ("TEST01", "TEST04")

# TEST01's audit.config: mode 2 (performance), the published accuracy-log seed and a sampling target per model
# (the number of responses LoadGen aims to log), as the inference repository's per-model audit.config files set them.
ACCURACY_LOG_RNG_SEED = 720381539243781796
TEST01_SAMPLING_TARGET: Mapping[str, int] = {"resnet50": 4096, "mobilenet": 4096, "retinanet": 256,
                                             "ssd-mobilenet": 1024, "ssd-resnet34": 256, "dlrm": 4096}
TEST01_DEFAULT_SAMPLING_TARGET = 256
# The sample TEST04 repeats: the fourth of the loaded set, as the published audit.config has it.
TEST04_SAME_INDEX = 3
# Which tests the submission checker requires of a model (closed division); open submissions need none.
REQUIRED: Mapping[str, tuple[str, ...]] = {"resnet50": ("TEST01", "TEST04"), "retinanet": ("TEST01",)}
# TEST01's performance tolerance, TEST04's margin: 10 %, 20 % for latencies under 200 us (SingleStream) or
# 1.6 ms (MultiStream), where timer noise is a larger share.
THRESHOLD, SHORT_LATENCY_THRESHOLD = 0.10, 0.20
SHORT_LATENCY_NS = {"SingleStream": 200_000, "MultiStream": 1_600_000}
# TEST01's second path: the sampled responses' accuracy within 1 % of the accuracy run's on the same samples.
ACCURACY_DELTA_PERCENT = 1.0
PASS, FAIL = "TEST PASS", "TEST FAIL"


def audit_config(test: str, model: str) -> str:
    """The audit.config text of ``test`` for ``model`` (LoadGen reads it with model ``*``)."""
    if test == "TEST01":
        target = TEST01_SAMPLING_TARGET.get(model, TEST01_DEFAULT_SAMPLING_TARGET)
        return (f"# TEST01 for {model}: a performance run that logs about {target} responses for verification\n"
                f"*.*.mode = 2\n*.*.accuracy_log_rng_seed = {ACCURACY_LOG_RNG_SEED}\n"
                f"*.*.accuracy_log_sampling_target = {target}\n")
    if test == "TEST04":
        return ("# TEST04: a performance run that issues the same sample every time (a caching system would gain)\n"
                "*.*.mode = 2\n*.*.performance_issue_unique = 0\n*.*.performance_issue_same = 1\n"
                f"*.*.performance_issue_same_index = {TEST04_SAME_INDEX}\n")
    raise ValueError(f"unknown compliance test {test!r} (choose from {', '.join(TESTS)})")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One verification: whether it passed and the lines of its file (ending in TEST PASS or TEST FAIL)."""

    passed: bool
    lines: tuple[str, ...]

    def write(self, path: Path) -> None:
        from loadgen.data import write_atomic

        write_atomic(path, "\n".join(self.lines) + "\n")


def _entries(path: Path) -> list[dict[str, Any]]:
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable LoadGen accuracy log ({exc})") from exc
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "qsl_idx" in e and "data" in e
                                                for e in entries):
        raise ValueError(f"{path}: not a LoadGen accuracy log (a JSON list of qsl_idx/data responses)")
    return entries


def verify_accuracy(accuracy_log: Path, compliance_log: Path) -> Verdict:
    """TEST01's first path: each response logged in performance mode equals the accuracy run's for that sample.

    Whole responses are compared, byte for byte. Passes when some samples were compared and none differ.
    """
    reference: dict[int, str] = {}
    duplicates = acc_mismatch = 0
    for entry in _entries(accuracy_log):
        idx, data = int(entry["qsl_idx"]), str(entry["data"]).upper()
        if idx in reference:
            duplicates += 1
            acc_mismatch += reference[idx] != data
        else:
            reference[idx] = data
    logged = _entries(compliance_log)
    matched = mismatched = missing = 0
    for entry in logged:
        idx, data = int(entry["qsl_idx"]), str(entry["data"]).upper()
        if idx not in reference:
            missing += 1
            continue
        matched += 1
        mismatched += reference[idx] != data
    passed = matched > 0 and mismatched == 0 and missing == 0
    return Verdict(passed, (
        "Verifying accuracy (TEST01): responses logged in performance mode against the accuracy run's.",
        f"accuracy run log: {accuracy_log}", f"compliance run log: {compliance_log}",
        f"num_acc_log_entries = {len(reference) + duplicates}", f"num_acc_log_duplicate_keys = {duplicates}",
        f"num_acc_log_data_mismatch = {acc_mismatch}", f"num_perf_log_entries = {len(logged)}",
        f"num_perf_log_qsl_idx_match = {matched}", f"num_perf_log_data_mismatch = {mismatched}",
        f"num_missing_qsl_idxs = {missing}", PASS if passed else FAIL))


def baseline_log(accuracy_log: Path, compliance_log: Path, out: Path) -> Path:
    """The accuracy run's responses for the samples the compliance run logged (TEST01's second path), as a
    LoadGen accuracy log at ``out``."""
    from loadgen.data import write_atomic

    wanted = {int(e["qsl_idx"]) for e in _entries(compliance_log)}
    kept = [e for e in _entries(accuracy_log) if int(e["qsl_idx"]) in wanted]
    write_atomic(out, json.dumps(kept, indent=0) + "\n")
    return out


def accuracy_delta_percent(baseline: float, compliance: float) -> float:
    """The rule's delta between the two accuracies, in percent: ``|1 - baseline / compliance| * 100``."""
    if not compliance:
        return float("inf")
    return abs(1 - baseline / compliance) * 100


def score(detail: Mapping[str, Any], test: str) -> tuple[str, float]:
    """A run's score for the performance checks: (what it is, value). Throughput for Offline and Server;
    for SingleStream and MultiStream LoadGen's early-stopping latency estimate (ns), which TEST04 turns into a
    rate (1e9 / latency) so that "faster" always means a higher score."""
    scenario = detail.get("effective_scenario")
    keys = {"Offline": "result_samples_per_second", "Server": "result_completed_samples_per_sec",
            "SingleStream": "early_stopping_latency_ss", "MultiStream": "early_stopping_latency_ms"}
    if scenario not in keys or keys[scenario] not in detail:
        raise ValueError(f"no {keys.get(scenario, 'score')} in the detail log of a {scenario} run")
    value = float(detail[keys[scenario]])
    if test == "TEST04" and scenario in SHORT_LATENCY_NS:
        return f"1e9 / {keys[scenario]}", 1e9 / value
    return keys[scenario], value


def verify_performance(reference_detail: Path, test_detail: Path, test: str) -> Verdict:
    """The performance check of TEST01 (within the threshold either way) or TEST04 (not more than the threshold
    faster), on two LoadGen detail logs of the same scenario; both runs must be VALID."""
    from loadgen.report import parse_detail

    head = f"Verifying performance ({test}): the compliance run against the performance run."
    lines = [head, f"reference: {reference_detail}", f"test: {test_detail}"]
    ref, got = parse_detail(Path(reference_detail)), parse_detail(Path(test_detail))
    for name, detail in (("reference", ref), ("test", got)):
        if detail.get("result_validity") != "VALID":
            return Verdict(False, (*lines, f"{FAIL}: the {name} run is {detail.get('result_validity', 'missing')}"))
    if ref.get("effective_scenario") != got.get("effective_scenario"):
        return Verdict(False, (*lines, f"{FAIL}: the scenarios differ ({ref.get('effective_scenario')} and "
                                       f"{got.get('effective_scenario')})"))
    scenario = ref["effective_scenario"]
    if scenario == "Server" and ref.get("effective_target_latency_ns") != got.get("effective_target_latency_ns"):
        return Verdict(False, (*lines, f"{FAIL}: the Server latency bounds differ"))
    what, ref_score = score(ref, test)
    _, test_score = score(got, test)
    threshold = THRESHOLD
    latency_ns = ref.get({"SingleStream": "early_stopping_latency_ss",
                          "MultiStream": "early_stopping_latency_ms"}.get(scenario, ""))
    if latency_ns is not None and float(latency_ns) <= SHORT_LATENCY_NS[scenario]:
        threshold = SHORT_LATENCY_THRESHOLD
    if test == "TEST04":
        passed = test_score < ref_score * (1 + threshold)
        rule = f"the test score may be at most {100 * threshold:g} % above the reference's"
    else:
        passed = ref_score * (1 - threshold) <= test_score <= ref_score * (1 + threshold)
        rule = f"the test score must be within {100 * threshold:g} % of the reference's"
    lines += [f"score: {what}", f"reference score = {ref_score:g}", f"test score = {test_score:g}",
              f"rule: {rule}", PASS if passed else f"{FAIL}: test score out of bounds"]
    return Verdict(passed, tuple(lines))


@dataclasses.dataclass(frozen=True)
class Report:
    """What :func:`verify` found: the test, its verdicts and the files it wrote."""

    test: str
    accuracy: Verdict | None
    accuracy_fallback: str | None  # TEST01's second path, when the first failed: its finding, one line
    performance: Verdict

    @property
    def passed(self) -> bool:
        accuracy_ok = self.accuracy is None or self.accuracy.passed or (
            self.accuracy_fallback is not None and self.accuracy_fallback.startswith("PASS"))
        return accuracy_ok and self.performance.passed


def verify(test: str, scenario_dir: Path, metric: Callable[[Path], tuple[str, float]] | None = None) -> Report:
    """Verify the compliance run in ``<scenario_dir>/<test>`` against ``<scenario_dir>/performance`` (and, for
    TEST01, ``<scenario_dir>/accuracy``); write ``verify_performance.txt`` (and ``verify_accuracy.txt``) there.

    ``metric(log)`` gives the headline accuracy of an accuracy log as (the accuracy tool's line, value): with it,
    TEST01's second path runs when responses differ, writing ``accuracy/{baseline,compliance}_accuracy.txt``.
    """
    scenario_dir = Path(scenario_dir)
    run, perf, acc = scenario_dir / test, scenario_dir / "performance", scenario_dir / "accuracy"
    performance = verify_performance(perf / "mlperf_log_detail.txt", run / "mlperf_log_detail.txt", test)
    performance.write(run / "verify_performance.txt")
    if test != "TEST01":
        return Report(test, None, None, performance)
    accuracy = verify_accuracy(acc / "mlperf_log_accuracy.json", run / "mlperf_log_accuracy.json")
    accuracy.write(run / "verify_accuracy.txt")
    fallback = None
    if not accuracy.passed and metric is not None:
        from loadgen.data import write_atomic

        folder = run / "accuracy"
        folder.mkdir(exist_ok=True)
        try:
            base_line, base = metric(baseline_log(acc / "mlperf_log_accuracy.json", run / "mlperf_log_accuracy.json",
                                                  folder / "mlperf_log_accuracy_baseline.json"))
            test_line, value = metric(run / "mlperf_log_accuracy.json")
        except ValueError as exc:
            fallback = f"FAIL: the sampled responses' accuracy could not be computed ({exc})"
        else:
            write_atomic(folder / "baseline_accuracy.txt", base_line + "\n")
            write_atomic(folder / "compliance_accuracy.txt", test_line + "\n")
            delta = accuracy_delta_percent(base, value)
            verdict = "PASS" if delta <= ACCURACY_DELTA_PERCENT else "FAIL"
            fallback = (f"{verdict}: the sampled responses differ from the accuracy run's; their accuracy "
                        f"{value:g} against {base:g} on the same samples, delta {delta:.3f} % (at most "
                        f"{ACCURACY_DELTA_PERCENT:g} %)")
    return Report(test, accuracy, fallback, performance)
