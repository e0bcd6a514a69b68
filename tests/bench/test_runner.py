"""The ``make bench`` runner's target checking, on fake figure modules that measure nothing (fast, no real figure).

Not marked ``bench``: these run in the default suite.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.bench import __main__ as runner
from tests.bench.targets import INFORMATIONAL, at_least, at_most, below

REPO = Path(__file__).resolve().parents[2]

FAKE = '''
from tests.bench.targets import INFORMATIONAL, at_least, measures


@measures(fast_ratio=at_least(1.0), fast_side=INFORMATIONAL)
def fast(work, args):
    assert work.is_dir()
    return {"fast_ratio": 1.5, "fast_side": 3.0}


@measures(slow_ratio=at_least(1.0))
def slow(work, args):
    return {"slow_ratio": 0.91}


@measures(sloppy_ratio=at_least(1.0))
def sloppy(work, args):
    return {"sloppy_ratio": 2.0, "sloppy_extra": 1.0}


@measures(broken_ratio=at_least(1.0))
def broken(work, args):
    raise RuntimeError("the figure could not be measured")
'''


def fake_package(root: Path, name: str, figures: str) -> str:
    """A package ``name`` under ``root`` with one ``fake_bench`` module whose FIGURES is ``figures``."""
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "fake_bench.py").write_text(textwrap.dedent(FAKE) + f"\n\nFIGURES = [{figures}]\n")
    return name


def run_bench(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "tests.bench", *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)


def test_a_figure_below_its_target_fails_the_run_and_is_named(tmp_path):
    package = fake_package(tmp_path, "fake_miss", "fast, slow")
    done = run_bench(tmp_path, "--package", package)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "FAIL slow_ratio: 0.91 < 1.0" in lines
    assert "ok   fast_ratio: 1.5 >= 1.0" in lines
    assert "info fast_side: 3 (informational, no target)" in lines
    assert "bench summary: 3 figure(s), 1 FAIL" in lines
    # each function ran in its own interpreter, which printed its figures as they came
    assert "slow_ratio: 0.91" in lines and "fast_ratio: 1.5" in lines


def test_every_figure_on_target_passes_the_run(tmp_path):
    package = fake_package(tmp_path, "fake_pass", "fast")
    done = run_bench(tmp_path, "--package", package, "--only", "fast,fast_ratio")  # one function, named twice
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout
    assert "ok   fast_ratio: 1.5 >= 1.0" in done.stdout.splitlines()


def test_several_functions_all_on_target_pass_the_run(tmp_path):
    package = fake_package(tmp_path, "fake_pass_all", "fast, fast")
    done = run_bench(tmp_path, "--package", package)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bench summary: 4 figure(s), 0 FAIL" in done.stdout.splitlines()


def test_a_figure_function_that_raises_fails_the_run(tmp_path):
    package = fake_package(tmp_path, "fake_broken", "broken, fast")
    done = run_bench(tmp_path, "--package", package)
    assert done.returncode == 1
    assert "FAIL broken: no figures (exit status 1)" in done.stdout.splitlines()
    assert "ok   fast_ratio: 1.5 >= 1.0" in done.stdout.splitlines()  # the next function still ran


def test_a_figure_without_a_declared_target_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    package = fake_package(tmp_path, "fake_undeclared", "sloppy")
    assert runner.main(runner.get_args_parser().parse_args(["--package", package])) == 1
    assert "FAIL sloppy_extra: 1, not declared in sloppy's @measures" in capsys.readouterr().out.splitlines()


def test_only_takes_a_figure_name_and_runs_its_function(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    package = fake_package(tmp_path, "fake_by_name", "fast, slow")
    assert runner.main(runner.get_args_parser().parse_args(["--package", package, "--only", "slow_ratio"])) == 1
    out = capsys.readouterr().out.splitlines()
    assert "FAIL slow_ratio: 0.91 < 1.0" in out
    assert not any(line.startswith("fast_ratio") for line in out)


@pytest.mark.parametrize("argv", [["--only", "no_such_figure"], ["--seconds", "-1"], ["--package", "no_such_pkg"]],
                         ids=["unknown-figure", "negative-seconds", "unknown-package"])
def test_bad_usage_is_one_line_and_exit_2(tmp_path, argv):
    package = fake_package(tmp_path, "fake_usage", "fast")
    done = run_bench(tmp_path, "--package", package, *argv)
    assert done.returncode == 2
    assert done.stderr.startswith("bench: error: ") and done.stderr.count("\n") == 1, done.stderr


def test_target_miss_lines():
    assert at_least(1.0).miss(0.91) == "0.91 < 1.0"
    assert at_least(1.0).miss(1.0) is None
    assert at_most(0.3).miss(0.5) == "0.5 > 0.3"
    assert below(5).miss(5.0) == "5 >= 5"  # the bound itself misses a strict target
    assert below(5).miss(4.9) is None
    assert at_least(0.98).miss(math.nan) == "nan < 0.98"  # a figure that could not be computed misses
    assert INFORMATIONAL.miss(math.nan) is None


# Figure functions that report without any target, each with the reason; the docstring of its module says more.
UNTARGETED = {
    # 2 processes on 2 cores share the machine 1 process has alone: the ratio is sharding's communication cost.
    "dlrm_sharded_train_over_unsharded",
}


def test_every_real_figure_function_declares_a_checked_target():
    functions = runner.figure_functions("tests.bench")
    assert functions
    names = {f.__name__ for f in functions}
    assert UNTARGETED <= names, f"stale exemptions: {UNTARGETED - names}"
    for function in functions:
        targeted = any(t.op is not None for t in function.targets.values())
        if function.__name__ in UNTARGETED:
            assert not targeted, f"{function.__name__} has a target now: drop it from UNTARGETED"
        else:
            assert targeted, f"{function.__name__} has no headline target"
