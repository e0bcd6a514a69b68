"""The highest Server target QPS that LoadGen judges VALID at the model's latency bound, found by search.

LoadGen's own FindPeakPerformance mode searches too, but within one process and one set of settings; a submitter
needs the rate to write into user.conf and a run under the full rules that shows it holds. The search here:

1. **Offline**: a short run measures what the system does with no latency bound: the ceiling for Server.
2. **Coarse**: bisection in log space over short Server runs, between a rate whose latency LoadGen found within the
   bound and one where it did not, until the two are within ``precision`` of each other. A short run is judged on
   LoadGen's "performance constraints satisfied" (its latency percentile against the bound) and not on its full
   verdict: LoadGen's early-stopping estimate cannot be met by a short run at a p99 bound (with no late query at
   all it needs about 460 queries, with 1 % late ones tens of thousands), so every short run would be INVALID.
3. **Confirm**: a run at the rate found under the run's own settings (LoadGen's rules unless the user shortened
   them); LoadGen judges it with its early-stopping estimate of the latency percentile. If it is INVALID the rate
   steps down by ``precision`` and the run is repeated, a few times at most.

Every run is a :class:`Step`; the record and its plot go beside the runs' own folders. ``measure`` runs one
LoadGen run and is the caller's, so the search itself needs no LoadGen (the CLI runs each in a process of its own).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Step:
    """One LoadGen run of the search: its phase (offline, coarse, confirm), target and achieved rates, verdict."""

    phase: str
    target_qps: float
    qps: float | None  # LoadGen's: completed samples/s (Offline) or scheduled samples/s (Server)
    valid: bool  # LoadGen's verdict
    within_bound: bool  # LoadGen's "performance constraints satisfied" and minimum duration met
    early_stopping_met: bool | None
    percentile_latency_s: float | None  # at the bound's percentile (Server), None for Offline
    folder: str


ROUGH_SAMPLES = 128

# measure(phase, target_qps, seconds, run name) -> Step: one LoadGen run at ``target_qps`` lasting ``seconds``
# (its query count sized to fill them), or with seconds None under the run's own settings (a confirming run).
Measure = Callable[[str, float, "float | None", str], Step]


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """The search's knobs; ``__post_init__`` only validates."""

    search_s: float = 10.0  # each coarse and Offline run
    precision: float = 0.02  # the coarse search stops when its rates within and over the bound are this close
    confirm_tries: int = 3
    floor_fraction: float = 1 / 64  # give up below this fraction of the Offline rate

    def __post_init__(self) -> None:
        if not self.search_s > 0:
            raise ValueError(f"search time must be > 0, got {self.search_s}")
        if not 0 < self.precision < 1:
            raise ValueError(f"search precision must be in (0, 1), got {self.precision}")
        if self.confirm_tries < 1:
            raise ValueError(f"confirming runs must be >= 1, got {self.confirm_tries}")


@dataclasses.dataclass
class Search:
    """What the search found and every run it made, in order."""

    offline_qps: float
    server_qps: float | None  # the confirmed rate; None if no rate was confirmed
    coarse_qps: float | None  # the highest rate of the coarse search within the bound
    steps: list[Step]

    @property
    def ratio(self) -> float | None:
        return None if self.server_qps is None or not self.offline_qps else self.server_qps / self.offline_qps

    def as_json(self, settings: SearchSettings) -> dict[str, Any]:
        return {"offline_qps": self.offline_qps, "server_qps": self.server_qps, "coarse_qps": self.coarse_qps,
                "server_over_offline": self.ratio, "settings": dataclasses.asdict(settings),
                "steps": [dataclasses.asdict(s) for s in self.steps]}


def search(measure: Measure, settings: SearchSettings, progress: Callable[[Step], None] = lambda step: None,
           ) -> Search:
    """Run the three phases (module docstring) with ``measure``; ``progress`` sees each step as it ends."""
    steps: list[Step] = []

    def run(phase: str, qps: float, seconds: float | None) -> Step:
        step = measure(phase, qps, seconds, f"{len(steps):02d}-{phase}-{qps:.6g}")
        steps.append(step)
        progress(step)
        return step

    # A first Offline run of about a hundred samples learns the rate; the next, sized by it to last search_s,
    # measures it (once more if it ended early: LoadGen judges such a run INVALID for its duration).
    offline = run("offline", ROUGH_SAMPLES / settings.search_s, settings.search_s).qps or 0.0
    for _ in range(2):
        if not offline:
            break
        sized = run("offline", offline, settings.search_s)
        offline = sized.qps or 0.0
        if sized.valid:
            break
    if not offline:
        return Search(offline_qps=0.0, server_qps=None, coarse_qps=None, steps=steps)

    hi = offline * 1.05  # Server above the Offline rate is possible only by noise; a run over the bound proves it
    lo = offline / 2
    hi_over = False  # whether a run at hi was over the bound
    while not run("coarse", lo, settings.search_s).within_bound:
        hi, lo, hi_over = lo, lo / 2, True
        if lo < offline * settings.floor_fraction:
            return Search(offline_qps=offline, server_qps=None, coarse_qps=None, steps=steps)
    if not hi_over and run("coarse", hi, settings.search_s).within_bound:
        lo = hi  # at or above Offline: nothing higher to look for
    else:
        while hi / lo > 1 + settings.precision:
            mid = math.sqrt(lo * hi)
            if run("coarse", mid, settings.search_s).within_bound:
                lo = mid
            else:
                hi = mid
    coarse = lo

    qps = coarse
    for _ in range(settings.confirm_tries):
        step = run("confirm", qps, None)
        if step.valid and step.early_stopping_met is not False:
            return Search(offline_qps=offline, server_qps=qps, coarse_qps=coarse, steps=steps)
        qps /= 1 + settings.precision
    return Search(offline_qps=offline, server_qps=None, coarse_qps=coarse, steps=steps)


def step_from_run(phase: str, target_qps: float, folder: Path) -> Step:
    """A :class:`Step` from a finished run's LoadGen detail log; a run that left none is INVALID with no figures."""
    from loadgen.report import _qps, parse_detail

    detail_log = Path(folder) / "mlperf_log_detail.txt"
    detail = parse_detail(detail_log) if detail_log.is_file() else {}
    percentile = detail.get("effective_target_latency_percentile")
    latency = None
    if percentile is not None and detail.get("effective_scenario") == "Server":
        value = detail.get(f"result_{100 * float(percentile):.2f}_percentile_latency_ns")
        latency = None if value is None else float(value) / 1e9
    met = detail.get("early_stopping_met")
    return Step(phase=phase, target_qps=target_qps, qps=_qps(detail, None),
                valid=detail.get("result_validity") == "VALID",
                within_bound=bool(detail.get("result_perf_constraints_met")) and bool(
                    detail.get("result_min_duration_met")),
                early_stopping_met=None if met is None else bool(met),
                percentile_latency_s=latency, folder=str(folder))


def plot(path: Path, found: Search, title: str, bound_s: float | None) -> None:
    """The search on one chart: each Server run's latency at the bound's percentile over its target rate,
    within and over the bound marked (coarse runs round, confirming runs square), with the bound, the Offline
    rate and the rate found."""
    from loadgen.plots import _figure, _save

    fig, ax = _figure()
    for ok, colour, label in ((True, "#228833", "within the bound"), (False, "#ee6677", "over the bound")):
        runs = [s for s in found.steps if s.phase != "offline" and s.within_bound == ok and s.percentile_latency_s]
        for phase, marker in (("coarse", "o"), ("confirm", "s")):
            chosen = [s for s in runs if s.phase == phase]
            if chosen:
                ax.scatter([s.target_qps for s in chosen], [s.percentile_latency_s * 1e3 for s in chosen],
                           color=colour, marker=marker, label=f"{phase} run, {label}")
    if bound_s:
        ax.axhline(bound_s * 1e3, color="#000000", ls="--", lw=1, label=f"latency bound {bound_s * 1e3:g} ms")
    ax.axvline(found.offline_qps, color="#4477aa", ls=":", lw=1, label=f"Offline {found.offline_qps:.1f}/s")
    if found.server_qps:
        ax.axvline(found.server_qps, color="#228833", ls="--", lw=1, label=f"Server {found.server_qps:.1f}/s")
    ax.set_yscale("log")
    ax.set_xlabel("Server target QPS")
    ax.set_ylabel("latency at the bound's percentile (ms)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    _save(fig, path)
