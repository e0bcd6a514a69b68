"""Whole or nothing on disk: files and folders are built under a temporary name beside their final one and renamed
into place, so a crash or kill never leaves half a file or half a dataset under the real name.

Every temporary folder is named after its owner's host and pid (:func:`partial_folder`); a run reclaims those whose
owner is gone (SIGKILL, power cut), never a live process's."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

_PARTIAL = ".partial-"


def _host() -> str:
    # Only this host's pids can be checked, so the host is part of the name (datasets often sit on shared disks).
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    try:  # a zombie (killed, not yet reaped) holds its pid but will never finish its folder
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:
        return True


def partial_folder(parent: str | os.PathLike, name: str) -> Path:
    """A new temporary folder ``parent/.<name>.partial-<host>-<pid>-<random>`` for work to rename into place.

    Stale ones (their process is gone) are removed first, by :func:`reclaim_partials`.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    reclaim_partials(parent, name)
    return Path(tempfile.mkdtemp(prefix=f".{name}{_PARTIAL}{_host()}-{os.getpid()}-", dir=parent))


def reclaim_partials(parent: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the partial folders in ``parent`` (of ``name``, or any) whose owner on this host is no longer alive.

    A folder of a live process, of another host, or not named by :func:`partial_folder` is left alone.
    """
    parent = Path(parent)
    mine = re.compile(r"\." + (re.escape(name) if name is not None else r".+") + re.escape(_PARTIAL)
                      + re.escape(_host()) + r"-(\d+)-[^-]+")
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = mine.fullmatch(entry.name)
        if match and entry.is_dir() and not entry.is_symlink() and not _pid_alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _umask() -> int:
    """The process's umask, read without changing it (Linux: /proc/self/status), else the common 022."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def write_atomic(path: str | os.PathLike, content: str | bytes) -> Path:
    """Write ``content`` to a temporary file beside ``path`` and rename it over: readers never see half a file,
    and a crash or kill leaves the old file (or none), never a truncated one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a result, a report or a log is as readable as any file the user
        # writes (their umask), so that another account or a container's user can read what a run wrote.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb" if isinstance(content, bytes) else "w") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt included: the temporary file goes, the exception goes on
        os.unlink(tmp)
        raise
    return path


def finished(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a complete build: a folder made with :func:`atomic_folder` and a manifest appears only
    when whole, so its ``manifest.json`` says the build finished."""
    return (Path(folder) / "manifest.json").is_file()


def ensure_built(out: str | os.PathLike, build: Callable[[Path], Path]) -> Path:
    """``out`` when it is a finished build, else ``build(out)``: every benchmark's ``mini.ensure``."""
    out = Path(out)
    return out if finished(out) else build(out)


def build_command(prog: str, out: str | os.PathLike, force: bool, build: Callable[[Path], Path],
                  describe: Callable[[Path], str]) -> int:
    """The body of every ``python -m <bench>.mini``: build ``out`` unless it is finished (or ``force``), print what
    was built, and turn a failure to write (``out`` names a file, a full disk) into one line and exit 1."""
    out = Path(out)
    if finished(out) and not force:
        print(f"{out}: mini set already built (--force rebuilds it)")
        return 0
    try:
        build(out)
    except OSError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(describe(out))
    return 0


@contextlib.contextmanager
def atomic_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Fill a temporary folder beside ``out``; on success it replaces ``out``, on any failure it is deleted.

    So a crash never leaves half a dataset under the real name.
    """
    out = Path(out)
    tmp = partial_folder(out.parent, out.name)
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
