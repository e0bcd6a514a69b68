"""Run settings -> ``mlperf_loadgen.TestSettings``.

Layers, lowest first, as LoadGen itself orders mlperf.conf under user.conf:

1. LoadGen's built-in mlperf.conf (``FromConfig(..., conf_type=0)``).
2. Rule values of retired models that the built-in file no longer knows (:data:`RETIRED_RULES`).
3. ``--config``: a development override in mlperf.conf format.
4. ``--user-conf``.
5. The quick flags (``--count``, ``--time``, ``--qps``, ``--max-latency``, ...).

LoadGen accepts one user conf per run (a second ``conf_type=1`` call is logged as "Multiple conf files are used",
which is not valid for submission), and ``conf_type=0`` ignores its path and always reads the built-in file.
So layers 2-4 are resolved here, with LoadGen's own lookup precedence, into one generated ``user.conf`` that is
loaded once and kept beside the logs. audit.config is LoadGen's to read when the test starts.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import mlperf_loadgen as lg

SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
MODES = ("performance", "accuracy")

# Rule values of models that LoadGen's built-in mlperf.conf no longer carries (or, for dlrm, carries with
# DLRM-v2's 60 ms). Keys are mlperf.conf's "scenario.key" with times in ms and percentiles in %.
# Sources: the MLPerf inference mlperf.conf of v0.5 and v0.7 (mobilenet, gnmt) and v1.1 (ssd-mobilenet,
# ssd-resnet34, dlrm), and the inference rules of those rounds.
RETIRED_RULES: Mapping[str, Mapping[str, float]] = {
    "mobilenet": {"*.performance_sample_count_override": 1024, "Server.target_latency": 10},
    "ssd-mobilenet": {"*.performance_sample_count_override": 256, "Server.target_latency": 10},
    "ssd-resnet34": {"*.performance_sample_count_override": 64, "Server.target_latency": 100,
                     "MultiStream.target_latency": 528},
    # gnmt: no performance sample count (the QSL's, the whole test set, which fits in memory); the 97th
    # percentile and 90,112 queries of its Server and MultiStream rules.
    "gnmt": {"Server.target_latency": 250, "Server.target_latency_percentile": 97, "Server.min_query_count": 90112,
             "MultiStream.target_latency": 100, "MultiStream.target_latency_percentile": 97,
             "MultiStream.min_query_count": 90112},
    "dlrm": {"*.performance_sample_count_override": 204800, "Server.target_latency": 30},
}

# The RNG seeds of each inference round: the submission checker of a round refuses logs with other seeds. LoadGen
# 6.0.17's built-in mlperf.conf holds v6.1's, and neither user.conf nor audit.config can change them (LoadGen reads
# seeds from its built-in file only), so a run for another round sets them on the TestSettings. Values from the
# rounds' mlperf.conf files (qsl_rng_seed, sample_index_rng_seed, schedule_rng_seed).
RNG_SEEDS: Mapping[str, tuple[int, int, int]] = {
    "v5.1": (1780908523862526354, 14771362308971278857, 18209322760996052031),
    "v6.0": (2465351861681999779, 14276810075590677512, 3936089224930324775),
    "v6.1": (2085463073848966840, 2747215439041700203, 16159082839903944936),
}
# The round a full-rules run is for when no --rng-seeds is given: the newest one whose checker still knows the
# models of this suite that it knows at all (resnet and retinanet; v6.1 dropped retinanet).
SUBMISSION_ROUND = "v6.0"

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|0[xX][0-9a-fA-F]+|\.\d+)$")


class ConfError(ValueError):
    """A conf file line LoadGen would reject: names the file and line."""


def parse_conf(text: str, source: str = "<conf>") -> dict[tuple[str, str, str], str]:
    """Parse mlperf.conf syntax (``model.scenario.key = value``, ``#`` comments) as LoadGen does.

    Later lines win for the same key. Values must be numbers, as LoadGen requires.
    """
    entries: dict[tuple[str, str, str], str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        parts = key.split(".")
        if not sep or len(parts) != 3 or not all(parts):
            raise ConfError(f"{source}:{lineno}: expected 'model.scenario.key = value', got {raw.strip()!r}")
        if not _NUMBER.match(value):
            raise ConfError(f"{source}:{lineno}: value needs to be an integer or a float, got {value!r}")
        entries[(parts[0], parts[1], parts[2])] = value
    return entries


def resolve_conf(entries: Mapping[tuple[str, str, str], str], model: str) -> dict[tuple[str, str], str]:
    """What LoadGen would look up for ``model``: {(scenario, key): value} with scenario in SCENARIOS.

    LoadGen's precedence: ``model.scenario.key`` > ``*.scenario.key`` > ``model.*.key`` > ``*.*.key``.
    """
    keys = {k for (_, _, k) in entries}
    resolved: dict[tuple[str, str], str] = {}
    for scenario in SCENARIOS:
        for key in keys:
            for m, s in ((model, scenario), ("*", scenario), (model, "*"), ("*", "*")):
                if (m, s, key) in entries:
                    resolved[(scenario, key)] = entries[(m, s, key)]
                    break
    return resolved


def merged_user_conf(model: str, layers: Iterable[tuple[str, str]]) -> str:
    """Resolve each (source, text) layer for ``model`` and merge them, later layers winning.

    The result names every key as ``*.<scenario>.<key>``, so LoadGen's lookup returns the merged value.
    """
    merged: dict[tuple[str, str], str] = {}
    sources: list[str] = []
    for source, text in layers:
        merged.update(resolve_conf(parse_conf(text, source), model))
        sources.append(source)
    lines = [f"# Generated for model {model!r} from: {', '.join(sources) or 'nothing'}"]
    lines += [f"*.{scenario}.{key} = {value}" for (scenario, key), value in sorted(merged.items())]
    return "\n".join(lines) + "\n"


def retired_rules_conf(model: str) -> str:
    rules = RETIRED_RULES.get(model, {})
    # repr keeps integers whole: LoadGen reads "3.9039e+06" with strtoull as 3.
    return "".join(f"{model}.{key} = {value!r}\n" for key, value in rules.items())


# RunSettings fields that shorten or relax a run, with their flags: a --submission run refuses them. (--qps stays:
# it is the Server target QPS and the other scenarios' expected rate, which user.conf may set as well.)
SHORTENING: Mapping[str, str] = {
    "count": "--count", "time_s": "--time", "max_time_s": "--max-time", "max_latency_s": "--max-latency",
    "samples_per_query": "--samples-per-query", "performance_sample_count": "--performance-sample-count",
    "config": "--config",
}


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """One LoadGen run: a scenario in one mode. ``__post_init__`` only validates."""

    model: str
    scenario: str
    accuracy: bool = False
    find_peak_performance: bool = False
    count: int | None = None
    time_s: float | None = None
    max_time_s: float | None = None
    qps: float | None = None
    max_latency_s: float | None = None
    samples_per_query: int | None = None
    performance_sample_count: int | None = None
    config: str | None = None
    user_conf: str | None = None
    audit_config: str = "audit.config"
    rng_seeds: str | None = None  # a round of RNG_SEEDS; None keeps LoadGen's built-in seeds
    submission: bool = False  # full rules: nothing shortened (see SHORTENING)
    compliance: str | None = None  # a compliance test (loadgen.compliance.TESTS): its audit.config replaces ours

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r} (choose from {', '.join(SCENARIOS)})")
        if not self.model:
            raise ValueError("a model name for mlperf.conf is required, e.g. resnet50")
        for name in ("count", "qps", "max_latency_s", "samples_per_query", "performance_sample_count"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name in ("time_s", "max_time_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name.removesuffix('_s').replace('_', '-')} must be >= 0, got {value}")
        if self.find_peak_performance and self.scenario != "Server":
            raise ValueError("--find-peak-performance applies to the Server scenario only")
        if self.find_peak_performance and self.accuracy:
            raise ValueError("--find-peak-performance and --accuracy exclude each other")
        if self.compliance is not None:
            if self.compliance not in ("TEST01", "TEST04"):
                raise ValueError(f"unknown compliance test {self.compliance!r} (choose from TEST01, TEST04)")
            if self.accuracy or self.find_peak_performance:
                raise ValueError("a compliance test is a performance run: drop --accuracy and --find-peak-performance")
        if self.rng_seeds is not None and self.rng_seeds not in RNG_SEEDS:
            raise ValueError(f"unknown --rng-seeds {self.rng_seeds!r} (choose from {', '.join(RNG_SEEDS)})")
        if self.submission:
            typed = [flag for name, flag in SHORTENING.items() if getattr(self, name) is not None]
            if typed:
                raise ValueError(f"--submission runs under LoadGen's own rules; drop {', '.join(typed)}")
        for name in ("config", "user_conf"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"{name.replace('_', '-')} file not found: {path}")

    @property
    def mode(self) -> str:
        """The run's folder name: ``accuracy``, ``performance`` or the compliance test's."""
        return self.compliance or ("accuracy" if self.accuracy else "performance")


def user_conf_text(rs: RunSettings) -> str | None:
    """The one user.conf LoadGen will read for this run (layers 2-4 of the module docstring); None if empty."""
    if rs.model not in RETIRED_RULES and rs.config is None and rs.user_conf is None:
        return None
    layers = [(f"retired rules of {rs.model}", retired_rules_conf(rs.model))]
    for path in (rs.config, rs.user_conf):
        if path is not None:
            layers.append((path, Path(path).read_text()))
    return merged_user_conf(rs.model, layers)


def build_test_settings(rs: RunSettings, conf_dir: str | os.PathLike):
    """Build LoadGen's TestSettings; writes the merged ``user.conf`` (if any layer has one) into ``conf_dir``.

    LoadGen counts user confs per process: the second ``conf_type=1`` call of a process is logged as an error
    whatever TestSettings it is on. So a process should build one run's settings with a user conf; the CLI runs
    each scenario in a process of its own, as the reference harness did.
    """
    ns = 1_000_000_000
    s = lg.TestSettings()
    # Load the built-in rules explicitly: a conf_type=1 call loads them only on its first use in a process,
    # so a second run in the same process would otherwise silently lose them.
    s.FromConfig("", rs.model, rs.scenario, 0)
    text = user_conf_text(rs)
    if text is not None:
        conf_path = Path(conf_dir) / "user.conf"
        conf_path.write_text(text)
        if s.FromConfig(str(conf_path), rs.model, rs.scenario, 1) != 0:
            raise ConfError(f"LoadGen rejected {conf_path}")

    s.scenario = getattr(lg.TestScenario, rs.scenario)
    if rs.accuracy:
        s.mode = lg.TestMode.AccuracyOnly
    elif rs.find_peak_performance:
        s.mode = lg.TestMode.FindPeakPerformance
    else:
        s.mode = lg.TestMode.PerformanceOnly

    if rs.time_s is not None:
        s.min_duration_ms = s.max_duration_ms = int(rs.time_s * 1000)
    if rs.max_time_s is not None:  # 0 lifts the cap: LoadGen's max_duration of 0 means none
        s.max_duration_ms = int(rs.max_time_s * 1000)
    if rs.count is not None:
        s.min_query_count = s.max_query_count = rs.count
    if rs.qps is not None:
        s.server_target_qps = rs.qps
        s.offline_expected_qps = rs.qps
        s.single_stream_expected_latency_ns = max(1, int(ns / rs.qps))
        s.multi_stream_expected_latency_ns = max(1, int(ns / rs.qps))
    if rs.max_latency_s is not None:
        s.server_target_latency_ns = int(rs.max_latency_s * ns)
        s.multi_stream_expected_latency_ns = int(rs.max_latency_s * ns)
    if rs.samples_per_query is not None:
        s.multi_stream_samples_per_query = rs.samples_per_query
    if rs.performance_sample_count is not None:
        s.performance_sample_count_override = rs.performance_sample_count
    seeds = rs.rng_seeds or (SUBMISSION_ROUND if rs.submission else None)
    if seeds is not None:
        s.qsl_rng_seed, s.sample_index_rng_seed, s.schedule_rng_seed = RNG_SEEDS[seeds]
    if rs.submission:
        check_full_rules(rs, s)
    return s


def check_full_rules(rs: RunSettings, s) -> None:
    """Refuse a --submission run whose user.conf relaxes one of the built-in rules that the checker reads:
    the minimum duration, the minimum query count and the performance sample count."""
    builtin = lg.TestSettings()
    builtin.FromConfig("", rs.model, rs.scenario, 0)
    for retired_key, value in RETIRED_RULES.get(rs.model, {}).items():
        scenario, key = retired_key.split(".", 1)
        if key in ("min_query_count", "performance_sample_count_override") and scenario in ("*", rs.scenario):
            setattr(builtin, key, int(value))
    for key, what in (("min_duration_ms", "minimum duration"), ("min_query_count", "minimum query count"),
                      ("performance_sample_count_override", "performance sample count")):
        if getattr(s, key) < getattr(builtin, key):
            raise ValueError(f"--submission: user.conf lowers the {what} ({key} {getattr(s, key)} < "
                             f"{getattr(builtin, key)}, LoadGen's rule for {rs.model} {rs.scenario})")
