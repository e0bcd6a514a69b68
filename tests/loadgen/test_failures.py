"""A backend that raises mid-run, a sample that cannot be loaded, and Ctrl-C: the process ends promptly with a clear
message and its failure report, never hangs or aborts."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# A script file, not ``python -c``: each run of a multi-scenario plan starts in a spawned child, which imports this
# script again (as ``__mp_main__``) to find the backend and the task factory, so they live at module level.
SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    from loadgen import cli
    from loadgen.backends import BACKENDS
    from loadgen.backends.null import NullBackend
    from loadgen.harness import InMemoryTask

    class Flaky(NullBackend):
        name = "flaky"
        calls = 0
        def predict(self, feeds):
            Flaky.calls += 1
            if MODE == "raise" and Flaky.calls == 50:
                raise RuntimeError("device lost")
            if MODE == "slow":
                time.sleep(0.01)
            return super().predict(feeds)

    MODE = sys.argv[1]
    BACKENDS["flaky"] = "__main__:Flaky"

    def make(i):
        if MODE == "badload" and i == 7:
            raise OSError("/data/val/ILSVRC2012_val_00000008.JPEG: cannot decode image (truncated)")
        return np.array([i])

    def make_task(args):
        return InMemoryTask(make, 64, 64)

    if __name__ == "__main__":
        parser = cli.ArgumentParser(prog="flaky")
        cli.add_inference_args(parser, backends=list(BACKENDS))
        args = cli.parse_args(parser, ["--backend", "flaky", "--model-name", "resnet50", "--scenario", sys.argv[2],
                                       "--qps", "500", "--output", sys.argv[3], *sys.argv[4:]])
        print("started", flush=True)
        sys.exit(cli.execute(args, make_task, prog="flaky"))
""")


def _as_from_a_terminal() -> None:
    # A job started in the background by a shell without job control (a CI runner may be one) inherits SIGINT
    # ignored, and Python then installs no Ctrl-C handler. A user at a terminal has the default disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(mode: str, scenario: str, out: Path) -> subprocess.Popen:
    script = out.parent / f"{out.name}-flaky.py"
    script.write_text(SCRIPT)
    return subprocess.Popen([sys.executable, str(script), mode, scenario, str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_as_from_a_terminal)


def test_backend_error_ends_a_long_server_run_promptly(tmp_path):
    # mlperf.conf asks Server for 600 s; the failure must end it in seconds, not then.
    began = time.monotonic()
    proc = start("raise", "Server", tmp_path)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - began < 30
    assert proc.returncode == 1
    lines = [line for line in err.splitlines() if line.startswith("flaky: error:")]
    assert len(lines) == 1 and "RuntimeError: device lost" in lines[0], err


def test_backend_error_in_offline_finishes_loadgen_cleanly(tmp_path):
    proc = start("raise", "Offline", tmp_path)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "device lost" in err
    assert (tmp_path / "Offline" / "performance" / "results.json").read_text().count('"failed"') == 1


@pytest.mark.parametrize("scenario", ["Offline", "SingleStream", "Server"])
def test_a_sample_that_cannot_be_loaded_fails_the_run_cleanly(tmp_path, scenario):
    # An exception escaping LoadGen's load callback used to abort the process (exit 134) with no results.json.
    proc = start("badload", scenario, tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("flaky: error: loading samples failed: OSError: "), err
    assert "ILSVRC2012_val_00000008.JPEG" in lines[0]
    report = tmp_path / scenario / "performance" / "results.json"
    assert '"failed"' in report.read_text() and "ILSVRC2012_val_00000008.JPEG" in report.read_text()


def wait_for(path, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def test_ctrl_c_ends_the_run_cleanly(tmp_path):
    proc = start("slow", "Server", tmp_path)
    assert proc.stdout.readline().strip() == "started"
    wait_for(tmp_path / "Server" / "performance" / "mlperf_log_detail.txt")  # LoadGen is running
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted by the user" in err and "Traceback" not in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_parent_alone_ends_a_two_scenario_run(tmp_path, signum):
    # Each scenario runs in a child process; a signal sent to the parent only (kill -INT, a scheduler's SIGTERM,
    # not a terminal's Ctrl-C to the whole group) must reach the child, which used to run on until LoadGen's end.
    proc = start("slow", "Server,Offline", tmp_path)
    wait_for(tmp_path / "Server" / "performance" / "mlperf_log_detail.txt")
    time.sleep(0.5)
    began = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - began < 6
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert '"failed"' in (tmp_path / "Server" / "performance" / "results.json").read_text()
    assert not (tmp_path / "Offline").exists()


def test_a_killed_parent_leaves_no_scenario_running(tmp_path):
    proc = start("slow", "Server,Offline", tmp_path)
    wait_for(tmp_path / "Server" / "performance" / "mlperf_log_detail.txt")
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    # One process per run; multiprocessing's resource tracker may sit beside it, and must end as well.
    runs = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    assert len(runs) == 1 and len(children) <= 2, children
    proc.kill()
    proc.communicate(timeout=30)
    end = time.monotonic() + 10
    while any(Path(f"/proc/{c}").exists() for c in children) and time.monotonic() < end:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{c}").exists() for c in children), "a child outlived its killed parent"
    # It was told with SIGTERM, so it ended its run cleanly.
    assert '"failed"' in (tmp_path / "Server" / "performance" / "results.json").read_text()


@pytest.mark.parametrize("delay_s", [0.0, 0.3, 0.8])
def test_ctrl_c_at_any_moment_never_hangs(tmp_path, delay_s):
    # Whenever it lands (setup, LoadGen's start, mid-run), Ctrl-C ends the process promptly.
    proc = start("slow", "Server", tmp_path)
    assert proc.stdout.readline().strip() == "started"
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
