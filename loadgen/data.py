"""Small data helpers shared by every benchmark: download, safe extraction, verification, preprocessing cache.

Guarantees:

- A downloaded file appears under its final name only once its checksum matched (written to ``<name>.part``,
  then renamed). A dropped connection is resumed with an HTTP Range request; retries back off exponentially.
  After a network failure the ``.part`` stays, so the next run resumes; corrupt bytes are deleted.
- Extraction refuses absolute paths, ``..``, links that point outside the target and device files, before
  anything is written, and fills the target through a temporary folder renamed into place.
- Verification reports every bad file, not only the first.
- A cache entry is built in a temporary folder and renamed into place, keyed by its parameters and its source.
- Every temporary folder is named after its owner's host and pid (:func:`partial_folder`); a run reclaims those
  whose owner is gone (SIGKILL, power cut), never a live process's. Worker processes die with their parent
  (:func:`process_pool`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Any

_CHUNK = 1 << 20


class DataError(RuntimeError):
    """A data problem with the file it concerns in the message (exit status 1 in the scripts)."""


class ChecksumError(DataError):
    pass


class UnsafeArchiveError(DataError):
    pass


# ------------------------------------------------------------------------- partial folders and worker processes
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


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def end_with_parent(signum: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent ends, even by SIGKILL, which no handler
    in the parent sees (Linux; elsewhere a no-op). Call it in the child: a pool initializer or a preexec_fn."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _die_with_parent(parent_pid: int, initializer: Callable | None, initargs: tuple) -> None:
    """Pool worker start-up: end this worker when the process that made the pool ends, however it ends."""
    end_with_parent()
    # Portable fallback, and the race where the parent died before prctl: once orphaned, the parent pid changes.
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def process_pool(workers: int, initializer: Callable | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` spawned processes that end when this process ends, even by SIGKILL.

    spawn, not fork: the caller may have started threads (torch, LoadGen) that a fork would copy mid-state.
    On Linux the death signal is tied to the thread that starts the workers, so use the pool from the thread
    that made it (the main thread in every caller here).
    """
    import multiprocessing

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_die_with_parent, initargs=(os.getpid(), initializer, initargs))


def write_atomic(path: str | os.PathLike, content: str | bytes) -> Path:
    """Write ``content`` to a temporary file beside ``path`` and rename it over: readers never see half a file,
    and a crash or kill leaves the old file (or none), never a truncated one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if isinstance(content, bytes) else "w") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt included: the temporary file goes, the exception goes on
        os.unlink(tmp)
        raise
    return path


def _progress(total: int | None, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                disable=None if enabled else True, leave=False)


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", progress: bool = False) -> str:
    h = hashlib.new(algorithm)
    size = os.path.getsize(path)
    with open(path, "rb") as fh, _progress(size, 0, f"{algorithm} {Path(path).name}", progress) as bar:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def _check(path: Path, sha256: str | None, md5: str | None, progress: bool) -> str | None:
    """None when the checksums match, else what is wrong."""
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            actual = file_digest(path, algorithm, progress)
            if actual.lower() != expected.lower():
                return f"{algorithm} is {actual}, expected {expected}"
    return None


URL_SCHEMES = ("http", "https", "file")


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be downloaded, or None: it must be an http(s) URL with a host, or a file: URL."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in URL_SCHEMES:
        return f"{url!r} is not a URL; a URL must start with http://, https:// or file://"
    if parsed.scheme != "file" and not parsed.netloc:
        return f"{url!r} has no host"
    return None


def download_url(text: str) -> str:
    """An argparse type for a URL to download from (http, https or file): anything else is a usage error."""
    import argparse

    if problem := url_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def mirrored(url: str, mirror: str | None) -> str:
    """``url`` fetched from ``mirror`` instead: the mirror's base URL plus the file name."""
    if not mirror:
        return url
    name = PurePosixPath(urllib.parse.urlparse(url).path).name
    return mirror.rstrip("/") + "/" + name


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, md5: str | None = None,
             mirror: str | None = None, retries: int = 5, backoff_s: float = 1.0, timeout_s: float = 60.0,
             progress: bool = True) -> Path:
    """Fetch ``url`` (or its ``mirror`` copy) to ``dest``, resuming and verifying; return ``dest``.

    A ``dest`` that already matches its checksum is kept without a request.
    """
    for given in (url, mirror):
        if given and (problem := url_problem(given)):
            raise DataError(problem)
    dest = Path(dest)
    if dest.is_file() and (sha256 or md5) and _check(dest, sha256, md5, progress) is None:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    source = mirrored(url, mirror)
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            _fetch(source, part, timeout_s, progress, dest.name)
            break
        except (urllib.error.URLError, HTTPException, TimeoutError, ConnectionError, OSError) as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code in (401, 403, 404):
                raise DataError(f"{source}: HTTP {exc.code} {exc.reason}") from exc
            last_error = exc
    else:
        raise DataError(f"{source}: failed after {retries + 1} attempts ({last_error}); "
                        f"{part.name} is kept, run again to resume")
    problem = _check(part, sha256, md5, progress)
    if problem:
        part.unlink()
        raise ChecksumError(f"{source}: downloaded file refused, {problem}")
    os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, timeout_s: float, progress: bool, name: str) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)  # noqa: S310 - http(s) URLs from manifests
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part is already complete
            return
        raise
    with response:
        if have and response.status != 206:
            have = 0  # the server ignored the Range request: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as fh, _progress(total, have, name, progress) as bar:
            while chunk := response.read(_CHUNK):
                fh.write(chunk)
                bar.update(len(chunk))
        if total is not None and part.stat().st_size < total:
            raise ConnectionError(f"connection closed after {part.stat().st_size} of {total} bytes")


def _member_problem(name: str, link: str | None, kind: str) -> str | None:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")):
        return f"absolute path {name!r}"
    if ".." in path.parts:
        return f"path {name!r} leaves the target folder"
    if kind in ("device", "fifo"):
        return f"{kind} file {name!r}"
    if link is not None:
        target = PurePosixPath(link) if kind == "hardlink" else path.parent / link
        if PurePosixPath(link).is_absolute() or ".." in PurePosixPath(os.path.normpath(str(target))).parts \
                or os.path.normpath(str(target)).startswith(".."):
            return f"link {name!r} -> {link!r} points outside the target folder"
    return None


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (tarfile's open error lists every method it tried, a line each)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _within(name: str) -> str:
    """A member path as the archive's own key: normalised, without a leading ``./``."""
    return os.path.normpath(name).lstrip("/") if name not in ("", ".") else "."


def _link_problems(members: list[tuple[str, str | None, str]]) -> list[str]:
    """Links whose meaning depends on other links, refused as a rule.

    A path is only checked lexically above; through a symlink (``a/b -> ..`` then ``a/b/c -> ../..``) a name
    that looks inside can land outside, and a chain or a loop of links can only be judged by following it on
    disk. Real datasets need none of these, so a link to a link, a member written through a link, and a
    hardlink to anything but an earlier regular file are all refused, before anything is written.
    """
    problems = []
    symlinks = {_within(name) for name, _, kind in members if kind == "symlink"}
    files: set[str] = set()

    def through_link(path: str) -> str | None:
        """The first symlink member that ``path`` passes through, checked before each ``..`` is applied
        (``l/../f`` goes through ``l`` on disk, however it normalises)."""
        at: list[str] = []
        for part in PurePosixPath(path).parts:
            if part == "..":
                if at:
                    at.pop()
            elif part not in (".", "/"):
                at.append(part)
                if "/".join(at) in symlinks:
                    return "/".join(at)
        return None

    for name, link, kind in members:
        rel = _within(name)
        parent = os.path.dirname(rel)
        if parent and (via := through_link(parent)):
            problems.append(f"{name!r} is written through the link {via!r}")
        if kind == "symlink" and link is not None:
            if via := through_link(os.path.join(parent, link)):
                problems.append(f"link {name!r} -> {link!r} leads to another link ({via!r}); chained links "
                                "are refused")
        elif kind == "hardlink" and link is not None:
            if _within(link) not in files:
                problems.append(f"hardlink {name!r} -> {link!r} is not to an earlier regular file of the archive")
        if kind == "file":
            files.add(rel)
    return problems


def check_archive(archive: str | os.PathLike) -> list[str]:
    """Every unsafe member of a tar or zip archive, as messages; empty when it is safe to extract.

    A file that is not a readable archive (truncated, corrupt) raises DataError naming it.
    """
    archive = str(archive)
    problems = []
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if problem := _member_problem(info.filename, None, "file"):
                        problems.append(problem)
            return problems
        members = []
        with tarfile.open(archive) as tf:
            for m in tf:
                kind = ("device" if m.isdev() and not m.isfifo() else "fifo" if m.isfifo() else
                        "symlink" if m.issym() else "hardlink" if m.islnk() else "dir" if m.isdir() else "file")
                link = m.linkname if m.issym() or m.islnk() else None
                members.append((m.name, link, kind))
                if problem := _member_problem(m.name, link, kind):
                    problems.append(problem)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise DataError(f"{archive}: not a readable tar or zip archive ({one_line(exc)})") from exc
    return problems + _link_problems(members)


def extract(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract ``archive`` into ``dest`` (which must not exist yet) safely and atomically."""
    dest = Path(dest)
    if dest.exists():
        raise DataError(f"{dest}: already exists; remove it to extract {archive} again")
    problems = check_archive(archive)
    if problems:
        raise UnsafeArchiveError(f"{archive}: refused, {'; '.join(problems[:5])}"
                                 + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    tmp = partial_folder(dest.parent, dest.name)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")  # the stdlib's own guard, behind ours
        os.replace(tmp, dest)
    except tarfile.FilterError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UnsafeArchiveError(f"{archive}: refused, {one_line(exc)}") from exc
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"{archive}: cannot extract ({one_line(exc)})") from exc
    except BaseException:  # KeyboardInterrupt included: no half-extracted folder left; re-raised
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


@dataclass(frozen=True)
class Manifest:
    """Expected files (size and checksum) and file counts of a dataset folder.

    JSON form: ``{"files": {"rel/path": {"size": 123, "sha256": "...", "md5": "..."}},
    "counts": [{"glob": "train/*/*.JPEG", "count": 1281167}], "ignore": ["notes/*"]}``; every field but the
    path is optional. ``ignore`` lists globs of files that may be present without being listed (see
    :func:`verify`).
    """

    files: Mapping[str, Mapping[str, Any]]
    counts: tuple[Mapping[str, Any], ...] = ()
    ignore: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | os.PathLike) -> Manifest:
        """The manifest in ``path``; a file that is not a manifest raises DataError naming it."""
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict) or not isinstance(data.get("files", {}), dict):
                raise ValueError("not a JSON object with a 'files' object")
            return cls(files=data.get("files", {}), counts=tuple(data.get("counts", ())),
                       ignore=tuple(data.get("ignore", ())))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a manifest ({exc})") from exc

    @classmethod
    def of_folder(cls, root: str | os.PathLike, patterns: Iterable[str] = ("**/*",)) -> Manifest:
        root = Path(root)
        files = {}
        for pattern in patterns:
            for p in sorted(root.glob(pattern)):
                if p.is_file():
                    files[p.relative_to(root).as_posix()] = {"size": p.stat().st_size, "sha256": file_digest(p)}
        return cls(files=files)

    def dump(self, path: str | os.PathLike) -> None:
        body = {"files": dict(self.files), "counts": list(self.counts)}
        if self.ignore:
            body["ignore"] = list(self.ignore)
        Path(path).write_text(json.dumps(body, indent=1) + "\n")


# Present without being listed, in any dataset folder: the manifest itself and a provenance note beside the
# data (the mini sets write SOURCE.txt). Hidden files and folders are skipped as well: our own partial folders
# (a live build's, or one reclaimed on the next run) and the litter of file managers.
ALWAYS_IGNORED = ("manifest.json", "SOURCE.txt", "README*")


def unlisted(root: str | os.PathLike, manifest: Manifest) -> list[str]:
    """Files under ``root`` that ``manifest`` does not list (paths relative to ``root``), minus the ignored ones."""
    import fnmatch

    root = Path(root)
    patterns = ALWAYS_IGNORED + tuple(manifest.ignore)
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel_folder = Path(folder).relative_to(root)
        for name in sorted(names):
            rel = (rel_folder / name).as_posix()
            if name.startswith(".") or rel in manifest.files or any(fnmatch.fnmatch(rel, p) for p in patterns):
                continue
            found.append(rel)
    return found


def verify(root: str | os.PathLike, manifest: Manifest, checksums: bool = True, progress: bool = True,
           extras: bool = True) -> list[str]:
    """Every problem of ``root`` against ``manifest``, one message per bad file or count; empty when all is well.

    With ``extras``, a file present but not in the manifest is a problem too (a stray or misplaced file is read
    by loaders that list folders), except those :func:`unlisted` ignores.
    """
    from tqdm import tqdm

    root = Path(root)
    problems = []
    if extras and manifest.files:
        problems += [f"{root / rel}: present but not in the manifest" for rel in unlisted(root, manifest)]
    for rel, expect in tqdm(sorted(manifest.files.items()), desc="verify", unit="file",
                            disable=None if progress else True, leave=False):
        path = root / rel
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        if "size" in expect and path.stat().st_size != expect["size"]:
            problems.append(f"{path}: size {path.stat().st_size}, expected {expect['size']}")
            continue
        if checksums:
            problem = _check(path, expect.get("sha256"), expect.get("md5"), progress=False)
            if problem:
                problems.append(f"{path}: {problem}")
    for rule in manifest.counts:
        found = sum(1 for p in root.glob(rule["glob"]) if p.is_file())
        if found != rule["count"]:
            problems.append(f"{root / rule['glob']}: {found} files, expected {rule['count']}")
    return problems


class _Failure:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc


def prefetch(iterable: Iterable, depth: int = 2) -> Iterator:
    """Yield ``iterable``'s items, producing up to ``depth`` ahead on a background thread.

    Work that releases the GIL while it runs (image decoding and resizing, file reads) then overlaps the
    consumer's, e.g. a training step. An exception in the producer is raised in the consumer; a consumer that
    stops early stops the producer.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in iterable:
                if not put(item):
                    return
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(_Failure(exc))
            return
        put(end)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not end:
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=10)


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


class PreprocessCache:
    """Preprocessed data under ``root/<key>``, where key hashes the parameters and the source's manifest.

    Changing any parameter or source file gives a new key, so a stale cache is never read. An entry is built in
    a temporary folder and renamed into place: a crash leaves no half-built entry under a real key.
    """

    def __init__(self, root: str | os.PathLike, params: Mapping[str, Any], source_digest: str) -> None:
        self.root = Path(root)
        self.params = dict(params)
        blob = json.dumps({"params": self.params, "source": source_digest}, sort_keys=True, default=str)
        self.key = hashlib.sha256(blob.encode()).hexdigest()[:20]
        self.path = self.root / self.key

    def ready(self) -> bool:
        return (self.path / "cache.json").is_file()

    def get_or_build(self, build: Callable[[Path], None]) -> Path:
        """The entry's folder; ``build(tmp_folder)`` fills it the first time."""
        if self.ready():
            return self.path
        self.root.mkdir(parents=True, exist_ok=True)
        reclaim_partials(self.root)  # any key's leftovers: the whole folder is this cache's
        tmp = partial_folder(self.root, self.key)
        try:
            build(tmp)
            (tmp / "cache.json").write_text(json.dumps({"key": self.key, "params": self.params}, indent=1,
                                                       default=str) + "\n")
            try:
                os.replace(tmp, self.path)
            except OSError:
                if not self.ready():  # another process finished first: theirs is as good as ours
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self.path


def get_args_parser(add_help: bool = True):
    from loadgen.cli import ArgumentParser, existing_dir, existing_file

    parser = ArgumentParser(prog="python -m loadgen.data", add_help=add_help,
                            description="Download, extract and verify dataset files against a manifest.")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check a folder against a manifest; exit 1 naming every bad file (default: -)")
    v.add_argument("root", type=existing_dir, help="dataset folder (default: required)")
    v.add_argument("--manifest", required=True, type=existing_file, help="manifest JSON (default: required)")
    v.add_argument("--no-checksums", dest="checksums", action="store_false",
                   help="check sizes and counts only (default: checksums on)")
    d = sub.add_parser("download", help="fetch one file, resuming and verifying (default: -)")
    d.add_argument("url", type=download_url, help="the file's official URL: http(s):// or file:// (default: required)")
    d.add_argument("dest", help="where to save it (default: required)")
    d.add_argument("--sha256", default=None, help="expected sha256 (default: None)")
    d.add_argument("--md5", default=None, help="expected md5 (default: None)")
    d.add_argument("--mirror", type=download_url, default=os.environ.get("MLPERF_MIRROR") or None,
                   help="base URL to fetch the same file name from (default: $MLPERF_MIRROR, else the official URL)")
    x = sub.add_parser("extract", help="extract a tar or zip safely into a new folder (default: -)")
    x.add_argument("archive", type=existing_file, help="tar or zip file (default: required)")
    x.add_argument("dest", help="folder to create (default: required)")
    return parser


def main(args) -> int:
    import sys

    try:
        if args.command == "verify":
            problems = verify(args.root, Manifest.load(args.manifest), checksums=args.checksums)
            for problem in problems:
                print(f"bad: {problem}", file=sys.stderr)
            print(f"{args.root}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
            return 1 if problems else 0
        if args.command == "download":
            print(download(args.url, args.dest, sha256=args.sha256, md5=args.md5, mirror=args.mirror))
        else:
            print(extract(args.archive, args.dest))
    except (DataError, OSError) as exc:
        print(f"python -m loadgen.data: error: {one_line(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
