"""The Server QPS search: a rate LoadGen shows VALID, one step above it over the latency bound, on a SUT whose
capacity is known (the null backend behind a task that takes 2 ms a sample, one sample at a time)."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest

from loadgen import server_qps
from loadgen.backends import create_backend
from loadgen.harness import run
from loadgen.settings import RunSettings
from tests.loadgen.conftest import IndexTask

SERVICE_S = 0.002  # a sample's time: capacity about 500 samples/s, less sleep's overshoot


class TwoMillisecondTask(IndexTask):
    def predict(self, backend, inputs):
        time.sleep(SERVICE_S * len(inputs[0]))  # sleeping needs no CPU, so a busy machine keeps the capacity
        return backend.predict(inputs)


def search_in_process(tmp_path, knobs: server_qps.SearchSettings) -> server_qps.Search:
    task, backend = TwoMillisecondTask(total=256, performance=256), create_backend("null")
    # A 50 ms bound at p99: 25 service times, so the rate found is the SUT's, not a host's stall.
    base = RunSettings(model="resnet50", scenario="Server", max_latency_s=0.05)

    def measure(phase, qps, seconds, name):
        if seconds is None:  # the confirming run: long enough for LoadGen's early-stopping estimate
            seconds, queries = 3.0, max(1000, math.ceil(qps * 3.3))
        else:
            queries = max(1, math.ceil(qps * seconds * 1.1))
        rs = dataclasses.replace(base, scenario="Offline" if phase == "offline" else "Server", qps=qps,
                                 time_s=seconds, max_time_s=0, count=queries)
        run(task, backend, rs, tmp_path / name, max_batchsize=1, workers=1, trace=False)
        return server_qps.step_from_run(phase, qps, tmp_path / name)

    return server_qps.search(measure, knobs)


def test_search_finds_a_valid_rate_with_the_step_above_over_the_bound(tmp_path):
    knobs = server_qps.SearchSettings(search_s=1.5, precision=0.1)
    found = search_in_process(tmp_path, knobs)
    assert 150 < found.offline_qps <= 1 / SERVICE_S * 1.02
    assert found.server_qps is not None, found.steps
    confirmed = [s for s in found.steps if s.phase == "confirm" and s.valid]
    assert confirmed and confirmed[-1].target_qps == found.server_qps and confirmed[-1].early_stopping_met
    above = [s for s in found.steps if s.phase == "coarse" and not s.within_bound]
    assert above, "the bisection never saw a rate over the bound"
    step_above = min(above, key=lambda s: s.target_qps)
    assert found.coarse_qps < step_above.target_qps <= found.coarse_qps * (1 + knobs.precision) * 1.001
    assert not step_above.valid  # LoadGen's own verdict on the step above agrees
    assert found.server_qps <= found.offline_qps * 1.05
    record = found.as_json(knobs)
    assert record["server_over_offline"] == pytest.approx(found.server_qps / found.offline_qps)
    assert len(record["steps"]) == len(found.steps)
    server_qps.plot(tmp_path / "search.png", found, "test", 0.05)
    assert (tmp_path / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kw", [dict(search_s=0), dict(precision=0), dict(precision=1.5), dict(confirm_tries=0)])
def test_bad_search_settings_are_refused(kw):
    with pytest.raises(ValueError):
        server_qps.SearchSettings(**kw)
