"""Settings: built-in mlperf.conf, retired-model rules, --config, user.conf and quick flags, in LoadGen's order."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loadgen.settings import ConfError, RunSettings, build_test_settings, merged_user_conf, parse_conf

MS = 1_000_000


def settings_for(tmp_path, **kw):
    return build_test_settings(RunSettings(**kw), tmp_path)


def test_builtin_rules_apply(tmp_path):
    s = settings_for(tmp_path, model="resnet50", scenario="Server")
    assert s.server_target_latency_ns == 15 * MS  # resnet50's Server bound in LoadGen's mlperf.conf
    assert s.performance_sample_count_override == 1024


def test_builtin_rules_apply_to_every_run_in_a_process(tmp_path):
    # LoadGen reads its built-in file only at the first conf_type=1 call of a process; a second run must not
    # silently lose the rules.
    for n in range(2):
        s = settings_for(tmp_path, model="resnet50", scenario="SingleStream")
        assert s.min_duration_ms == 600_000, f"run {n}"


@pytest.mark.parametrize(("model", "scenario", "attr", "value"), [
    ("mobilenet", "Server", "server_target_latency_ns", 10 * MS),
    ("mobilenet", "Offline", "performance_sample_count_override", 1024),
    ("ssd-resnet34", "Server", "server_target_latency_ns", 100 * MS),
    ("gnmt", "Server", "server_target_latency_ns", 250 * MS),
    ("gnmt", "Server", "server_target_latency_percentile", 0.97),
    ("gnmt", "MultiStream", "multi_stream_target_latency_percentile", 0.97),
    ("gnmt", "Server", "min_query_count", 90112),
    ("dlrm", "Server", "server_target_latency_ns", 30 * MS),  # v1's rule, not DLRM-v2's 60 ms built in
], ids=lambda v: str(v))
def test_retired_models_get_their_rule_values(tmp_path, model, scenario, attr, value):
    assert getattr(settings_for(tmp_path, model=model, scenario=scenario), attr) == pytest.approx(value)


def test_user_conf_overrides_retired_rules_and_config(tmp_path):
    dev = tmp_path / "dev.conf"
    dev.write_text("*.Server.target_latency = 40\n*.Server.target_qps = 7\n")
    user = tmp_path / "user.conf"
    user.write_text("mobilenet.Server.target_latency = 20  # wins over --config and the retired rule\n")
    s = settings_for(tmp_path, model="mobilenet", scenario="Server", config=str(dev), user_conf=str(user))
    assert s.server_target_latency_ns == 20 * MS
    assert s.server_target_qps == 7  # from --config, which user.conf left alone


def test_config_overrides_builtin_wildcards(tmp_path):
    dev = tmp_path / "dev.conf"
    dev.write_text("resnet50.Server.target_latency = 42\n")
    assert settings_for(tmp_path, model="resnet50", scenario="Server", config=str(dev)).server_target_latency_ns \
        == 42 * MS


def test_quick_flags_override_confs(tmp_path):
    s = settings_for(tmp_path, model="resnet50", scenario="Server", count=100, time_s=2, qps=50,
                     max_latency_s=0.05, performance_sample_count=9)
    assert (s.min_query_count, s.max_query_count) == (100, 100)
    assert (s.min_duration_ms, s.max_duration_ms) == (2000, 2000)
    assert s.server_target_qps == 50 and s.server_target_latency_ns == 50 * MS
    assert s.performance_sample_count_override == 9
    lifted = settings_for(tmp_path, model="resnet50", scenario="Server", time_s=2, max_time_s=0)
    assert (lifted.min_duration_ms, lifted.max_duration_ms) == (2000, 0)


def test_each_scenario_of_a_command_gets_one_user_conf(tmp_path, quick_conf):
    # LoadGen flags a second user conf in one process; the CLI runs each scenario in its own process.
    proc = subprocess.run([sys.executable, "-m", "loadgen", "--profile", "null", "--model-name", "mobilenet",
                           "--scenario", "Offline,Server", "--qps", "1000", "--user-conf", quick_conf,
                           "--output", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("TestScenario.") == 2
    for scenario in ("Offline", "Server"):
        run_dir = tmp_path / scenario / "performance"
        detail = (run_dir / "mlperf_log_detail.txt").read_text()
        assert "Multiple conf files are used" not in detail and '"error_invalid_config"' not in detail
        assert f"*.{scenario}.performance_sample_count_override = 1024" in (run_dir / "user.conf").read_text()


def test_merge_follows_loadgen_precedence():
    text = merged_user_conf("m", [("a", "*.*.min_duration = 1\nm.Server.min_duration = 2\n"),
                                  ("b", "*.Offline.min_duration = 3\n")])
    entries = parse_conf(text)
    assert entries[("*", "Server", "min_duration")] == "2"
    assert entries[("*", "Offline", "min_duration")] == "3"
    assert entries[("*", "SingleStream", "min_duration")] == "1"


@pytest.mark.parametrize("line", ["resnet50.Server = 3", "a.b.c = fast", "a.b.c 3"])
def test_bad_conf_lines_name_file_and_line(line):
    with pytest.raises(ConfError, match=r"user\.conf:2:"):
        parse_conf("# ok\n" + line + "\n", "user.conf")


@pytest.mark.parametrize("kw", [dict(scenario="Batch"), dict(qps=-1), dict(count=0), dict(time_s=-2),
                                dict(find_peak_performance=True), dict(user_conf="/nonexistent/user.conf")],
                         ids=["scenario", "qps", "count", "time", "find-peak-offline", "user-conf"])
def test_bad_settings_are_refused(kw):
    base = dict(model="resnet50", scenario="Offline")
    with pytest.raises(ValueError):
        RunSettings(**(base | kw))


def test_audit_config_is_read_by_loadgen(tmp_path):
    from loadgen.backends import create_backend
    from loadgen.harness import run
    from tests.loadgen.conftest import IndexTask

    audit = tmp_path / "audit.config"
    audit.write_text("*.*.mode = 2\n*.Offline.min_query_count = 123\n")
    rs = RunSettings(model="resnet50", scenario="Offline", qps=1000, time_s=0, audit_config=str(audit))
    run(IndexTask(total=200, performance=200), create_backend("null"), rs, tmp_path / "out")
    from loadgen.report import parse_detail

    assert "Found Audit Config file" in (tmp_path / "out" / "mlperf_log_detail.txt").read_text()
    # Offline issues max(min_query_count, 1.1 * duration * qps) samples; with no duration the audit's 123 rules.
    assert parse_detail(tmp_path / "out" / "mlperf_log_detail.txt")["effective_samples_per_query"] == 123


@pytest.mark.parametrize("round_", ["v5.1", "v6.0", "v6.1"])
def test_rng_seeds_of_each_round_reach_the_detail_log(tmp_path, round_):
    from loadgen.backends import create_backend
    from loadgen.harness import run
    from loadgen.report import parse_detail
    from loadgen.settings import RNG_SEEDS
    from tests.loadgen.conftest import IndexTask

    rs = RunSettings(model="resnet50", scenario="Offline", qps=1000, time_s=0, count=64, rng_seeds=round_)
    run(IndexTask(total=64, performance=64), create_backend("null"), rs, tmp_path / "out")
    detail = parse_detail(tmp_path / "out" / "mlperf_log_detail.txt")
    logged = tuple(int(detail[f"effective_{key}_rng_seed"]) for key in ("qsl", "sample_index", "schedule"))
    assert logged == RNG_SEEDS[round_]


def test_submission_runs_use_the_full_rules_and_v60_seeds(tmp_path):
    from loadgen.settings import RNG_SEEDS

    s = settings_for(tmp_path, model="retinanet", scenario="Offline", submission=True)
    assert (s.min_duration_ms, s.min_query_count, s.performance_sample_count_override) == (600_000, 24576, 64)
    assert (s.qsl_rng_seed, s.sample_index_rng_seed, s.schedule_rng_seed) == RNG_SEEDS["v6.0"]


@pytest.mark.parametrize("kw", [dict(count=10), dict(time_s=5), dict(max_time_s=0), dict(max_latency_s=0.1),
                                dict(performance_sample_count=8), dict(samples_per_query=2)])
def test_submission_runs_refuse_shortening_flags(kw):
    with pytest.raises(ValueError, match="--submission"):
        RunSettings(model="resnet50", scenario="Offline", submission=True, **kw)


def test_submission_runs_refuse_a_user_conf_that_relaxes_the_rules(tmp_path):
    conf = tmp_path / "user.conf"
    conf.write_text("resnet50.Offline.target_qps = 100\n")  # a target QPS is the submitter's to set
    settings_for(tmp_path, model="resnet50", scenario="Offline", submission=True, user_conf=str(conf))
    conf.write_text("resnet50.Offline.target_qps = 100\n*.*.min_duration = 1000\n")
    with pytest.raises(ValueError, match="minimum duration"):
        settings_for(tmp_path, model="resnet50", scenario="Offline", submission=True, user_conf=str(conf))


def test_submission_refuses_a_dataset_smaller_than_the_performance_sample_count(tmp_path):
    from loadgen.backends import create_backend
    from loadgen.harness import run
    from tests.loadgen.conftest import IndexTask

    rs = RunSettings(model="retinanet", scenario="Offline", submission=True)
    with pytest.raises(ValueError, match="holds 10 samples, fewer than .* 64"):
        run(IndexTask(total=10, performance=10), create_backend("null"), rs, tmp_path / "out")
