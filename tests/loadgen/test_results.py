"""The results store: every run appends one record; concurrent writers lose nothing; a killed writer leaves it
whole; the CLI lists, shows, compares and exports."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from loadgen import results
from loadgen.backends import create_backend
from loadgen.harness import run
from loadgen.settings import RunSettings
from tests.loadgen.conftest import IndexTask

WRITER = """
import sys
from loadgen import results
db, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    results.append("inference", {"status": "ok", "model": tag, "scenario": "Offline", "mode": "performance",
                                 "figures": {"qps": float(i)}, "environment": {"command": [tag, str(i)]}}, db=db)
print("done", flush=True)
"""


def test_a_run_appends_its_record(tmp_path, monkeypatch):
    db = tmp_path / "store.sqlite"
    monkeypatch.setenv(results.ENV, str(db))
    rs = RunSettings(model="resnet50", scenario="Offline", qps=1000, time_s=0, count=64)
    run(IndexTask(total=64, performance=64), create_backend("null"), rs, tmp_path / "out")
    (row,) = results.rows(db)
    assert (row["kind"], row["benchmark"], row["scenario"], row["mode"], row["backend"]) == \
        ("inference", "resnet50", "Offline", "performance", "null")
    assert row["validity"] == "VALID" and row["figures"]["qps"] > 0
    assert row["source"] == str((tmp_path / "out" / "results.json").resolve())
    assert row["paths"]["mlperf_log_detail.txt"].endswith("mlperf_log_detail.txt")
    assert row["environment"]["packages"]["mlcommons-loadgen"]


def test_two_writers_at_once_lose_nothing(tmp_path):
    db = tmp_path / "store.sqlite"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), tag, "150"], stdout=subprocess.PIPE, text=True)
             for tag in ("a", "b")]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    found = results.rows(db)
    assert len(found) == 300
    for tag in ("a", "b"):
        assert sorted(r["figures"]["qps"] for r in found if r["benchmark"] == tag) == [float(i) for i in range(150)]


def test_a_writer_killed_mid_way_leaves_the_store_whole(tmp_path):
    db = tmp_path / "store.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), "k", "1000000"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill it once it has written some rows
        if db.exists():
            try:
                if len(results.rows(db)) >= 20:
                    break
            except sqlite3.Error:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    found = results.rows(db)
    assert len(found) >= 20
    # Every row is whole, and the rows are the writer's first ones, in order: none lost before the kill.
    assert [r["figures"]["qps"] for r in found] == [float(i) for i in range(len(found))]
    results.append("training", {"benchmark": "dlrm", "reached_target": True, "time_to_train_s": 1.0}, db=db)
    assert results.rows(db)[-1]["validity"] == "reached"


def cli(db, *argv):
    return subprocess.run([sys.executable, "-m", "loadgen.results", "--db", str(db), *argv], capture_output=True,
                          text=True, timeout=60)


def test_cli_lists_shows_compares_and_exports(tmp_path):
    db = tmp_path / "store.sqlite"
    base = {"benchmark": "dlrm", "config": "mini", "reached_target": True, "metrics": {"auc": 0.80},
            "environment": {"git_revision": "abc", "packages": {"torch": "2.14.1"}, "command": ["train"]}}
    first = results.append("training", base | {"time_to_train_s": 10.0}, db=db)
    second = results.append("training", base | {"time_to_train_s": 12.5, "environment": {
        "git_revision": "def", "packages": {"torch": "2.15.0"}, "command": ["train"]}}, db=db)
    listing = cli(db, "list")
    assert listing.returncode == 0 and "10.0 s to train" in listing.stdout and len(listing.stdout.splitlines()) == 2
    shown = cli(db, "show", str(second))
    assert json.loads(shown.stdout)["figures"]["time_to_train_s"] == 12.5
    compared = cli(db, "compare", str(first), str(second)).stdout
    assert "time_to_train_s: 10 -> 12.5  (1.250x)" in compared
    assert "environment.packages.torch: 2.14.1 -> 2.15.0" in compared and "git_revision: abc -> def" in compared
    exported = cli(db, "export", "--format", "csv", "--output", str(tmp_path / "runs.csv"))
    assert exported.returncode == 0 and len((tmp_path / "runs.csv").read_text().splitlines()) == 3
    assert len(json.loads(cli(db, "export").stdout)) == 2


@pytest.mark.parametrize(("argv", "named"), [(["show", "99"], "no run with id 99"), (["show", "x"], "not a valid int"),
                                              (["frobnicate"], "invalid choice")])
def test_cli_bad_usage_is_one_line(tmp_path, argv, named):
    results.append("training", {"benchmark": "dlrm"}, db=tmp_path / "s.sqlite")
    proc = cli(tmp_path / "s.sqlite", *argv)
    assert proc.returncode == 2 and named in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def null_run(db, out):
    """One real LoadGen run (the null backend) through the CLI, recorded in ``db``."""
    env = dict(os.environ, **{results.ENV: str(db)})
    proc = subprocess.run([sys.executable, "-m", "loadgen", "--profile", "null", "--scenario", "Offline", "--qps",
                           "20000", "--time", "0", "--count", "500", "--output", str(out)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return results.rows(db)[-1]


def test_report_is_valid_html_with_every_run_and_nothing_to_fetch(tmp_path):
    from html.parser import HTMLParser

    db = tmp_path / "store.sqlite"
    inference = null_run(db, tmp_path / "runs")
    results.append("training", {"benchmark": "dlrm", "config": "mini", "reached_target": True,
                                "time_to_train_s": 3.0, "metrics": {"auc": 0.8}, "targets": {"auc": 0.79},
                                "history": {"epoch": [0.5, 1.0], "auc": [0.7, 0.8], "train loss": [0.5, 0.4]}},
                   db=db)
    results.append("olympic", {"benchmark": "dlrm", "config": "mini", "score_s": 3.0, "how": "dropped two",
                               "runs": [{"seconds": 3.0, "converged": True}]}, db=db)
    results.append("qps-search", {"model": "resnet50", "backend": "null", "server_qps": 90.0, "offline_qps": 100.0,
                                  "server_over_offline": 0.9, "steps": [{"phase": "coarse", "target_qps": 90.0,
                                                                         "valid": False, "within_bound": True}]},
                   db=db)
    null_run(db, tmp_path / "runs2")  # a repeat: the changes section compares it with the first
    proc = cli(db, "report", "--output", str(tmp_path / "report.html"))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "report.html").read_text()

    class Checker(HTMLParser):
        void = {"meta", "img", "br", "hr", "link", "input", "polyline"}

        def __init__(self):
            super().__init__()
            self.stack, self.errors, self.external = [], [], []

        def handle_starttag(self, tag, attrs):
            for name, value in attrs:
                if name in ("src", "href") and value and not value.startswith("data:"):
                    self.external.append(value)
            if tag not in self.void:
                self.stack.append(tag)

        def handle_endtag(self, tag):
            if tag in self.void:
                return
            if not self.stack or self.stack.pop() != tag:
                self.errors.append(tag)

    checker = Checker()
    checker.feed(text)
    assert text.startswith("<!DOCTYPE html>") and not checker.errors and not checker.stack
    assert not checker.external  # opens with no network: every image is embedded, no script or style is fetched
    for row in results.rows(db):
        assert f"<td>{row['id']}</td>" in text or f"run {row['id']} " in text, row["id"]
    assert "data:image/png;base64," in text and "<svg" in text and "Changes between runs" in text
    assert inference["paths"]["latency_histogram"]


def test_reproduce_flags_a_changed_package_and_compares_the_new_run(tmp_path):
    db = tmp_path / "store.sqlite"
    old = null_run(db, tmp_path / "runs")
    env = old["environment"]
    env["packages"]["numpy"] = "0.0.1"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET environment = ? WHERE id = ?", (json.dumps(env), old["id"]))
    refused = cli(db, "reproduce", str(old["id"]))
    assert refused.returncode == 1 and "numpy 0.0.1 (stored) != " in refused.stdout and "--anyway" in refused.stderr
    assert len(results.rows(db)) == 1  # nothing ran
    again = cli(db, "reproduce", str(old["id"]), "--anyway")
    assert again.returncode == 0, again.stderr
    assert f"run {old['id']} (inference synthetic Offline performance) against run" in again.stdout
    assert "qps:" in again.stdout and len(results.rows(db)) == 2


def test_cache_shows_what_is_stored_and_cleans_only_inside_the_suite(tmp_path):
    root = tmp_path / "suite"
    for folder, size in (("build/image_classification/mini", 300), ("build/image_classification/cache", 200),
                         ("results/image_classification/train", 100), ("results/image_classification/Offline", 50)):
        (root / folder).mkdir(parents=True)
        (root / folder / "f.bin").write_bytes(b"x" * size)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    os.symlink(outside, root / "results" / "linked")
    shown = cli(tmp_path / "s.sqlite", "cache", "--root", str(root), "show")
    assert shown.returncode == 0
    lines = shown.stdout.splitlines()
    for category, name in (("datasets", "mini"), ("caches", "cache"), ("models", "train"), ("results", "Offline")):
        assert any(category in line and line.endswith(name) for line in lines), (category, shown.stdout)
    dry = cli(tmp_path / "s.sqlite", "cache", "--root", str(root), "clean", "--caches", "--dry-run")
    assert "would remove" in dry.stdout and (root / "build/image_classification/cache").is_dir()
    done = cli(tmp_path / "s.sqlite", "cache", "--root", str(root), "clean", "--caches")
    assert done.returncode == 0 and not (root / "build/image_classification/cache").exists()
    assert (root / "build/image_classification/mini").is_dir()
    for path, reason in ((outside, "outside the suite's folders"), (root / "results" / "linked", "is a link"),
                         (root / "results" / "linked" / "keep.txt", "is a link"), (root / "results", "outside")):
        refused = cli(tmp_path / "s.sqlite", "cache", "--root", str(root), "clean", "--path", str(path))
        assert refused.returncode == 2 and reason in refused.stderr, (path, refused.stderr)
    assert (outside / "keep.txt").read_text() == "mine"
    # the results category lists the link as an item; cleaning it is refused and nothing else goes either
    refused = cli(tmp_path / "s.sqlite", "cache", "--root", str(root), "clean", "--results")
    assert refused.returncode == 2 and (root / "results/image_classification/Offline").is_dir()
    assert (outside / "keep.txt").exists()
