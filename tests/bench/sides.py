"""What the figure modules share: timing two sides of a ratio in short phases that alternate, and the LoadGen
Offline harness against a raw loop doing the same work.

This shared machine's speed drifts by 10-30 % from one stretch of seconds to the next, so a figure never compares
one long run of each side: each side runs many short phases, each right after the other side's (neither always
first), so that both see the same stretches, and its rate is its samples over its total time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from loadgen.harness import run
from loadgen.settings import RunSettings


def alternate(rounds: int, first: Callable[[int], float], second: Callable[[int], float]) -> tuple[float, float]:
    """Total seconds of each side over ``rounds`` rounds: each side's phase (called with the round's number,
    returning its timed seconds) once a round, the two back to back, ``first`` first in even rounds and
    ``second`` first in odd ones."""
    totals = [0.0, 0.0]
    for r in range(rounds):
        for side in (0, 1) if r % 2 == 0 else (1, 0):
            totals[side] += (first, second)[side](r)
    return totals[0], totals[1]


def timed_steps(batches: Iterable, step: Callable[[Any], None], timed: int, untimed: int = 2) -> float:
    """Seconds for ``timed`` calls of ``step``, one a batch, after ``untimed`` untimed ones, from a fresh iterator
    over ``batches`` (a DataLoader's worker processes start with it, in the untimed steps, and stop when it is
    dropped, so they never run during the other side's phase). ValueError when ``batches`` runs out first."""
    start, done = 0.0, 0
    for i, batch in enumerate(batches):
        if i == untimed:
            start = time.perf_counter()
        step(batch)
        if i == untimed + timed - 1:
            return time.perf_counter() - start
        done = i + 1
    raise ValueError(f"{done} batches, fewer than the {untimed} untimed and {timed} timed steps of a phase")


def raw_seconds(backend, task, batches: list[np.ndarray]) -> float:
    """Seconds for what the harness's worker does for each of ``batches``, without LoadGen: the task's inputs
    (normalising the loaded images), the backend's forward pass, the task's post-processing (``task`` holds the
    samples, loaded beforehand)."""
    start = time.perf_counter()
    for indices in batches:
        task.postprocess(backend.predict(task.inputs(indices)), indices)
    return time.perf_counter() - start


def offline_harness_and_raw(task, backend, model: str, work: Path, batch: int, rounds: int,
                            phase_batches: int) -> tuple[float, float]:
    """(harness, raw) samples/s of ``task`` on ``backend``: ``rounds`` rounds of an Offline LoadGen run of
    ``phase_batches`` batches of ``batch`` (one worker, no trace; LoadGen knows the model as ``model``) and a raw
    loop over as many batches drawn at random from the loaded samples, the raw loop first in even rounds."""
    count, per_round = task.total_count, phase_batches * batch
    rng = np.random.default_rng(0)  # batches drawn at random from the loaded set, as LoadGen's Offline draws them
    task.load(range(count))
    raw_seconds(backend, task, [rng.integers(0, count, batch)])  # warm-up
    # LoadGen's Offline query holds max(count, 1.1 x qps x duration) samples: a 1 ms duration leaves exactly
    # ``per_round``, the raw phase's number.
    rs = RunSettings(model=model, scenario="Offline", qps=1.0, time_s=0.001, count=per_round,
                     performance_sample_count=count)

    def raw_phase(r: int) -> float:
        task.load(range(count))  # untimed, as LoadGen's loading is; each harness run unloads at its end
        return raw_seconds(backend, task, [rng.integers(0, count, batch) for _ in range(phase_batches)])

    def harness_phase(r: int) -> float:
        result = run(task, backend, rs, work / f"offline_{r}", max_batchsize=batch, workers=1, trace=False)
        return per_round / result.qps

    raw_s, harness_s = alternate(rounds, raw_phase, harness_phase)
    return rounds * per_round / harness_s, rounds * per_round / raw_s
