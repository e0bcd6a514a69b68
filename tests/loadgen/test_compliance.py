"""TEST01 and TEST04: their audit.config reaches LoadGen, and each verification passes an honest system and fails
the one it exists to catch. The systems are the null backend behind tasks that take a fixed time a sample (sleep:
no CPU, so a busy machine keeps the figures), one honest and one that cheats."""

from __future__ import annotations

import time

import numpy as np
import pytest

from loadgen import compliance
from loadgen.backends import create_backend
from loadgen.harness import run
from loadgen.report import parse_detail
from loadgen.settings import RunSettings
from tests.loadgen.conftest import IndexTask

SERVICE_S = 0.002


class Sut(IndexTask):
    """Answers sample i with [i] after SERVICE_S a sample. ``cheat`` is what it does in performance mode:
    "answers" (wrong responses), "noise" (right up to float noise, as a non-deterministic backend) or "cache"
    (a sample seen before is answered at once)."""

    def __init__(self, cheat: str | None = None) -> None:
        super().__init__(total=256, performance=256)
        self.cheat, self.performance_mode, self.seen = cheat, False, set()

    def inputs(self, indices):
        return [np.asarray(indices, dtype=np.float64)[:, None]]

    def predict(self, backend, inputs):
        idx = inputs[0][:, 0].astype(int)
        fresh = [i for i in idx if i not in self.seen] if self.cheat == "cache" and self.performance_mode else idx
        time.sleep(SERVICE_S * len(fresh))
        self.seen.update(int(i) for i in idx)
        out = inputs[0].copy()
        if self.performance_mode and self.cheat == "answers":
            out[:] = -1
        if self.performance_mode and self.cheat == "noise":
            out += 1e-9
        return [out]

    def accuracy(self, accuracy_log):
        from loadgen.accuracy import Accuracy, Metric, read_log

        found = read_log(accuracy_log, np.float64)
        right = sum(1 for i, v in found.items() if round(float(v[0])) == i)
        return Accuracy((Metric("right", right / len(found)),))


def runs(tmp_path, sut: Sut, *tests: str):
    """The scenario's accuracy and performance runs, then each compliance test's, as the CLI lays them out."""
    backend, folder = create_backend("null"), tmp_path / "Offline"
    base = dict(model="resnet50", scenario="Offline", qps=400, time_s=0, count=300)
    run(sut, backend, RunSettings(**base, accuracy=True), folder / "accuracy", max_batchsize=8)
    sut.performance_mode = True
    sut.seen.clear()
    run(sut, backend, RunSettings(**base), folder / "performance", max_batchsize=8)
    for test in tests:
        sut.seen.clear()
        run(sut, backend, RunSettings(**base, compliance=test), folder / test, max_batchsize=8)
    return folder


def metric(sut):
    return lambda log: (sut.accuracy(log).text(), sut.accuracy(log).metrics[0].value)


def test_test01_passes_an_honest_system(tmp_path):
    sut = Sut()
    folder = runs(tmp_path, sut, "TEST01")
    detail = parse_detail(folder / "TEST01" / "mlperf_log_detail.txt")
    assert detail["effective_accuracy_log_sampling_target"] == 4096  # resnet50's audit.config reached LoadGen
    assert detail["effective_accuracy_log_rng_seed"] == compliance.ACCURACY_LOG_RNG_SEED
    report = compliance.verify("TEST01", folder, metric(sut))
    assert report.passed and report.accuracy_fallback is None
    text = (folder / "TEST01" / "verify_accuracy.txt").read_text().splitlines()
    assert text[-1] == "TEST PASS" and "num_perf_log_data_mismatch = 0" in text
    assert int(next(t for t in text if t.startswith("num_perf_log_qsl_idx_match")).split("= ")[1]) > 0
    assert (folder / "TEST01" / "verify_performance.txt").read_text().splitlines()[-1] == "TEST PASS"


def test_test01_fails_a_system_that_answers_differently_in_performance_mode(tmp_path):
    sut = Sut(cheat="answers")
    folder = runs(tmp_path, sut, "TEST01")
    report = compliance.verify("TEST01", folder, metric(sut))
    assert not report.passed
    assert (folder / "TEST01" / "verify_accuracy.txt").read_text().splitlines()[-1] == "TEST FAIL"
    assert report.accuracy_fallback.startswith("FAIL")  # the sampled responses' accuracy is 0 against 1
    assert (folder / "TEST01" / "accuracy" / "compliance_accuracy.txt").read_text().startswith("right=0.000%")


def test_test01_second_path_passes_responses_that_differ_only_in_noise(tmp_path):
    sut = Sut(cheat="noise")
    folder = runs(tmp_path, sut, "TEST01")
    report = compliance.verify("TEST01", folder, metric(sut))
    assert not report.accuracy.passed and report.accuracy_fallback.startswith("PASS") and report.passed
    for name in ("baseline_accuracy.txt", "compliance_accuracy.txt"):
        assert (folder / "TEST01" / "accuracy" / name).read_text().startswith("right=100.000%")


def test_test04_passes_an_honest_system_and_fails_a_caching_one(tmp_path):
    honest = runs(tmp_path / "honest", Sut(), "TEST04")
    detail = parse_detail(honest / "TEST04" / "mlperf_log_detail.txt")
    assert detail["effective_performance_issue_same"] and detail["effective_performance_issue_same_index"] == 3
    assert compliance.verify("TEST04", honest).passed
    caching = runs(tmp_path / "caching", Sut(cheat="cache"), "TEST04")
    report = compliance.verify("TEST04", caching)
    assert not report.passed
    assert (caching / "TEST04" / "verify_performance.txt").read_text().splitlines()[-1].startswith("TEST FAIL")


def test_performance_check_needs_valid_runs_of_one_scenario(tmp_path):
    folder = runs(tmp_path, Sut(), "TEST01")
    lines = (folder / "performance" / "mlperf_log_detail.txt").read_text().replace('"VALID"', '"INVALID"')
    (folder / "performance" / "mlperf_log_detail.txt").write_text(lines)
    verdict = compliance.verify_performance(folder / "performance" / "mlperf_log_detail.txt",
                                            folder / "TEST01" / "mlperf_log_detail.txt", "TEST01")
    assert not verdict.passed and "reference run is INVALID" in verdict.lines[-1]


def test_compliance_runs_are_performance_runs():
    with pytest.raises(ValueError, match="performance run"):
        RunSettings(model="resnet50", scenario="Offline", accuracy=True, compliance="TEST01")
    with pytest.raises(ValueError, match="unknown compliance test"):
        RunSettings(model="resnet50", scenario="Offline", compliance="TEST05")
