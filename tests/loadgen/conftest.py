"""Fixtures for the loadgen tests: a task whose samples are their own indices, quick LoadGen settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loadgen.harness import InMemoryTask

# Rates per scenario for the null backend: Server's target, the expected rate of the others (with quick_conf's
# query count and no minimum duration, any rate gives a VALID run).
NULL_QPS = {"SingleStream": 200_000, "MultiStream": 200_000, "Server": 2_000, "Offline": 1_000_000}


class IndexTask(InMemoryTask):
    """Sample i is the int64 array [i]; through the null backend each response carries its own index.

    Records the most samples ever held at once, to check that only LoadGen's loaded set is in memory.
    """

    def __init__(self, total: int = 64, performance: int = 16) -> None:
        super().__init__(lambda i: np.array([i], dtype=np.int64), total, performance)
        self.most_loaded = 0

    def load(self, indices) -> None:
        super().load(indices)
        self.most_loaded = max(self.most_loaded, len(self.loaded))


@pytest.fixture
def quick_conf(tmp_path: Path) -> str:
    """A user.conf for short runs that LoadGen judges VALID on a fast machine as well as on a busy one.

    - No minimum duration: LoadGen plans its queries from the expected rate, and a machine faster than that rate
      runs out of queries before a minimum duration and is INVALID (the null backend runs Offline at over 1 M
      samples/s on a quiet 2-core machine). A query count is met whatever the speed.
    - 1000 queries, so Server's and MultiStream's early-stopping estimate of the tail latency is met (100 is not).
    - Server validity also needs the 99th-percentile latency under the bound: ResNet-50's 15 ms is missed when the
      host stalls the process for a few milliseconds, so these runs allow 100 ms.
    """
    path = tmp_path / "quick.conf"
    path.write_text("*.*.min_duration = 0\n*.*.min_query_count = 1000\n*.Server.target_latency = 100\n")
    return str(path)


def accuracy_entries(log: Path) -> list[dict]:
    return json.loads(log.read_text())


def decode(entry: dict, dtype=np.int64) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(entry["data"]), dtype=dtype)
