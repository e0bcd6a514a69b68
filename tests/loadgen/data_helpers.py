"""Helpers for the data tests of every benchmark: one-line usage errors, and the processes a killed run leaves."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def run_cli(module, argv: list[str], capsys) -> tuple[int, list[str]]:
    """Parse ``argv`` with ``module``'s parser and run its ``main``, in this process: (exit status, stderr lines).

    An exception escaping ``main`` (a traceback, on the command line) fails the calling test.
    """
    try:
        code = module.main(module.get_args_parser().parse_args(argv))
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def assert_one_line_error(code: int, lines: list[str], expected_code: int, *fragments: str) -> None:
    assert code == expected_code, lines
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0] and ": error: " in lines[0], lines
    for fragment in fragments:
        assert fragment in lines[0], lines


def _state(pid: int) -> str | None:
    """The process state letter from /proc (R, S, Z, ...), or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0].decode()
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_bytes().rsplit(b")", 1)[-1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pids: list[int], wait_s: float = 0.0) -> list[int]:
    """Those of ``pids`` still running (not gone, not a zombie) after waiting up to ``wait_s`` for them to end."""
    deadline = time.monotonic() + wait_s
    while True:
        running = [p for p in pids if _state(p) not in (None, "Z")]
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.05)


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout_s: float = 60.0) -> list[int]:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; return the pids of its children at that moment."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert proc.poll() is None, "the run ended before it could be killed midway"
        assert time.monotonic() < deadline, "the run never reached the point to kill it at"
        time.sleep(0.01)
    kids = children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return kids
