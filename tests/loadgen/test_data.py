"""Downloads from a local HTTP server, safe extraction, manifest verification and the preprocessing cache."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from loadgen.data import (
    ChecksumError,
    DataError,
    Manifest,
    PreprocessCache,
    UnsafeArchiveError,
    download,
    extract,
    verify,
)

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Server:
    """127.0.0.1 file server with Range support; can drop the first response midway or corrupt bytes."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.drop_first = False
        self.corrupt = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append({"path": self.path, "range": rng})
                body = bytearray(PAYLOAD)
                if server.corrupt:
                    body[1000] ^= 0xFF
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                chunk = bytes(body[start:])
                if server.drop_first and len(server.requests) == 1:
                    self.wfile.write(chunk[: len(chunk) // 3])
                    self.wfile.flush()
                    self.connection.close()
                    return
                self.wfile.write(chunk)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_dropped_connection_is_resumed(server, tmp_path):
    server.drop_first = True
    dest = download("https://example.org/real/path/data.bin", tmp_path / "data.bin", sha256=SHA,
                    mirror=server.url + "/mirror", backoff_s=0.01, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert [r["path"] for r in server.requests] == ["/mirror/data.bin"] * 2
    assert server.requests[0]["range"] is None and server.requests[1]["range"].startswith("bytes=")
    assert not (tmp_path / "data.bin.part").exists()


def test_corrupted_bytes_are_refused_and_nothing_is_left(server, tmp_path):
    server.corrupt = True
    with pytest.raises(ChecksumError, match="sha256"):
        download(server.url + "/data.bin", tmp_path / "data.bin", sha256=SHA, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_md5_is_checked_too(server, tmp_path):
    with pytest.raises(ChecksumError, match="md5"):
        download(server.url + "/data.bin", tmp_path / "d.bin", md5="0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_verified_file_is_not_fetched_again(server, tmp_path):
    download(server.url + "/d.bin", tmp_path / "d.bin", sha256=SHA, progress=False)
    download(server.url + "/d.bin", tmp_path / "d.bin", sha256=SHA, progress=False)
    assert len(server.requests) == 1


def test_unreachable_server_fails_after_retries(tmp_path):
    with pytest.raises(DataError, match="after 3 attempts"):
        download("http://127.0.0.1:9/x.bin", tmp_path / "x.bin", retries=2, backoff_s=0.01, progress=False)
    assert not (tmp_path / "x.bin").exists()


def _tar(path, members):
    """members: (name, kind, link) with kind file, symlink, hardlink or chardev."""
    with tarfile.open(path, "w") as tf:
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = 3
                tf.addfile(info, io.BytesIO(b"abc"))
                continue
            info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "chardev": tarfile.CHRTYPE}[kind]
            info.linkname = link or ""
            tf.addfile(info)
    return path


@pytest.mark.parametrize("members", [
    [("ok.txt", "file", None), ("../evil", "file", None)],
    [("/etc/evil", "file", None)],
    [("link", "symlink", "../../outside")],
    [("link", "symlink", "/etc/passwd")],
    [("hard", "hardlink", "../outside")],
], ids=["dotdot", "absolute", "symlink-out", "symlink-absolute", "hardlink-out"])
def test_unsafe_tar_is_refused_before_writing(members, tmp_path):
    archive = _tar(tmp_path / "a.tar", members)
    with pytest.raises(UnsafeArchiveError, match="refused"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar"]


def test_unsafe_zip_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("../evil", b"x")
    with pytest.raises(UnsafeArchiveError):
        extract(tmp_path / "a.zip", tmp_path / "out")


def test_safe_tar_extracts_with_inner_links(tmp_path):
    archive = _tar(tmp_path / "a.tar", [("d/f.txt", "file", None), ("d/l", "symlink", "f.txt")])
    out = extract(archive, tmp_path / "out")
    assert (out / "d" / "f.txt").read_bytes() == b"abc" and (out / "d" / "l").is_symlink()


def test_verify_names_every_bad_file(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.JPEG").write_bytes(name.encode() * 10)
    manifest = Manifest.of_folder(tmp_path)
    manifest = Manifest(files=manifest.files, counts=({"glob": "*.JPEG", "count": 3},))
    assert verify(tmp_path, manifest, progress=False) == []
    (tmp_path / "a.JPEG").write_bytes(b"A" * 10)  # same size, other bytes
    (tmp_path / "b.JPEG").unlink()
    problems = verify(tmp_path, manifest, progress=False)
    assert any("a.JPEG: sha256" in p for p in problems)
    assert any("b.JPEG: missing" in p for p in problems)
    assert any("2 files, expected 3" in p for p in problems)
    assert not any("c.JPEG" in p for p in problems)


def test_cache_is_atomic_and_keyed(tmp_path):
    cache = PreprocessCache(tmp_path, {"size": 224}, "src1")

    def broken(folder):
        (folder / "half").write_text("x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cache.get_or_build(broken)
    assert not cache.ready() and list(tmp_path.iterdir()) == []
    built = []
    path = cache.get_or_build(lambda f: (built.append(1), (f / "data.npy").write_text("ok")))
    assert (path / "data.npy").read_text() == "ok"
    cache.get_or_build(lambda f: built.append(2))
    assert built == [1], "a ready entry is reused"
    assert PreprocessCache(tmp_path, {"size": 256}, "src1").key != cache.key
    assert PreprocessCache(tmp_path, {"size": 224}, "src2").key != cache.key


def test_verify_cli_exits_nonzero_naming_each_bad_file(tmp_path):
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    for name in ("x.bin", "y.bin"):
        (data / name).write_bytes(b"good")
    Manifest.of_folder(data).dump(tmp_path / "manifest.json")
    ok = subprocess.run([sys.executable, "-m", "loadgen.data", "verify", str(data), "--manifest",
                         str(tmp_path / "manifest.json")], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "OK" in ok.stdout
    (data / "x.bin").write_bytes(b"evil")
    (data / "y.bin").write_bytes(b"longer")
    bad = subprocess.run([sys.executable, "-m", "loadgen.data", "verify", str(data), "--manifest",
                          str(tmp_path / "manifest.json")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "x.bin: sha256" in bad.stderr and "y.bin: size 6, expected 4" in bad.stderr


def test_prefetch_yields_everything_in_order_and_raises_producer_errors():
    from loadgen.data import prefetch

    assert list(prefetch(range(100), depth=3)) == list(range(100))

    def broken():
        yield 1
        raise ValueError("bad batch")

    out = []
    with pytest.raises(ValueError, match="bad batch"):
        for item in prefetch(broken()):
            out.append(item)
    assert out == [1]


def test_prefetch_stops_its_producer_when_the_consumer_stops():
    import threading
    import time

    from loadgen.data import prefetch

    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    gen = prefetch(endless(), depth=2)
    assert next(gen) == 0
    gen.close()
    time.sleep(0.3)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count <= 5
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())


# ------------------------------------------------------------------ crafted archives, usage errors, partial folders
CRAFTED = {
    "chained-symlinks": [("f", "file", None), ("a", "symlink", "f"), ("b", "symlink", "a"), ("c", "symlink", "b")],
    "symlink-via-symlinked-dir": [("d/e/f", "file", None), ("l", "symlink", "d/e"), ("m", "symlink", "l/../f")],
    # Looks inside lexically, but a/b is '..' on disk, so a/b/c -> ../.. would point above the target.
    "escape-through-a-link": [("a/f", "file", None), ("a/b", "symlink", ".."), ("a/b/c", "symlink", "../..")],
    "hardlink-to-symlink": [("f", "file", None), ("s", "symlink", "f"), ("h", "hardlink", "s")],
    "hardlink-before-its-target": [("h", "hardlink", "f"), ("f", "file", None)],
    "symlink-loop": [("a", "symlink", "b"), ("b", "symlink", "a")],
    "absolute": [("/etc/evil", "file", None)],
    "dotdot": [("ok", "file", None), ("../evil", "file", None)],
    "device": [("dev/null", "chardev", None)],
}


@pytest.mark.parametrize("case", [*CRAFTED, "truncated-tar", "truncated-tgz", "zip-dotdot", "not-an-archive"])
def test_crafted_archives_are_refused_in_one_line_by_the_cli(case, tmp_path, capsys):
    from loadgen.data import cli as data
    from tests.loadgen.data_helpers import assert_one_line_error, run_cli

    archive = tmp_path / "a.tar"
    if case in CRAFTED:
        _tar(archive, CRAFTED[case])
    elif case.startswith("truncated"):
        payload = bytes(hashlib.sha256(str(i).encode()).digest()[0] for i in range(20000))  # incompressible
        _tar(tmp_path / "whole.tar", [])
        with tarfile.open(tmp_path / "whole.tar", "w:gz" if case.endswith("tgz") else "w") as tf:
            info = tarfile.TarInfo("big.bin")
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
        archive.write_bytes((tmp_path / "whole.tar").read_bytes()[:12000])
    elif case == "zip-dotdot":
        archive = tmp_path / "a.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("ok.txt", b"x")
            zf.writestr("sub/../../evil", b"x")
    else:
        archive.write_bytes(b"this is not an archive at all" * 50)
    code, lines = run_cli(data, ["extract", str(archive), str(tmp_path / "out")], capsys)
    assert_one_line_error(code, lines, 1, str(archive))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in ("whole.tar",)) == [archive.name], \
        "nothing extracted, no partial folder left"


@pytest.mark.parametrize("argv, fragment", [
    (["download", "notaurl", "DEST"], "http://, https:// or file://"),
    (["download", "ftp://host/x", "DEST"], "not a URL"),
    (["download", "https://example.org/x", "DEST", "--mirror", "nohost"], "--mirror"),
    (["verify", "MISSING", "--manifest", "MANIFEST"], "no such folder"),
    (["verify", "ROOT", "--manifest", "MISSING"], "no such file"),
    (["extract", "MISSING", "DEST"], "no such file"),
], ids=["download-not-a-url", "download-ftp", "download-bad-mirror", "verify-missing-root",
        "verify-missing-manifest", "extract-missing-archive"])
def test_bad_usage_is_one_line_and_exit_2(argv, fragment, tmp_path, capsys):
    from loadgen.data import cli as data
    from tests.loadgen.data_helpers import assert_one_line_error, run_cli

    (tmp_path / "root").mkdir()
    Manifest(files={}).dump(tmp_path / "manifest.json")
    names = {"DEST": tmp_path / "dest", "MISSING": tmp_path / "missing", "ROOT": tmp_path / "root",
             "MANIFEST": tmp_path / "manifest.json"}
    code, lines = run_cli(data, [str(names.get(a, a)) for a in argv], capsys)
    assert_one_line_error(code, lines, 2, fragment)
    assert not (tmp_path / "dest").exists()


def test_download_cli_refuses_a_non_url_in_a_subprocess(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "loadgen.data", "download", "notaurl", str(tmp_path / "d")],
                          capture_output=True, text=True, timeout=60)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_verify_reports_files_the_manifest_does_not_list(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.bin").write_bytes(b"a")
    (data / "sub" / "b.bin").write_bytes(b"b")
    manifest = Manifest.of_folder(data)
    manifest.dump(data / "manifest.json")  # the manifest itself is never an unlisted file
    assert verify(data, manifest, progress=False) == []
    (data / "sub" / "stray.bin").write_bytes(b"s")
    (data / "late.JPEG").write_bytes(b"l")
    (data / "SOURCE.txt").write_text("provenance note")
    (data / ".partial-x").mkdir()
    (data / ".partial-x" / "half.bin").write_bytes(b"h")
    (data / ".DS_Store").write_bytes(b"")
    problems = verify(data, manifest, progress=False)
    assert problems == [f"{data / 'late.JPEG'}: present but not in the manifest",
                        f"{data / 'sub' / 'stray.bin'}: present but not in the manifest"]
    assert verify(data, Manifest(files=manifest.files, ignore=("sub/*", "*.JPEG")), progress=False) == []
    assert verify(data, manifest, progress=False, extras=False) == []


def test_partial_folders_of_dead_processes_are_reclaimed_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    from loadgen.data import atomic_folder, partial_folder, reclaim_partials

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine = partial_folder(tmp_path, "set")
    stale = Path(str(mine).replace(f"-{os.getpid()}-", f"-{dead.pid}-"))
    stale.mkdir()
    (stale / "half").write_text("x")
    other_host = tmp_path / f".set.partial-elsewhere-{dead.pid}-abcdefgh"
    other_host.mkdir()
    foreign = tmp_path / ".set.something-else"
    foreign.mkdir()
    assert reclaim_partials(tmp_path) == [stale]
    assert mine.is_dir() and other_host.is_dir() and foreign.is_dir()
    stale.mkdir()
    with atomic_folder(tmp_path / "set") as tmp:  # a new build reclaims its name's stale leftovers
        assert not stale.exists() and mine.is_dir()
        (tmp / "f").write_text("done")
    assert (tmp_path / "set" / "f").read_text() == "done"


def test_write_atomic_files_are_as_readable_as_the_umask_allows(tmp_path):
    import os

    from loadgen.data import write_atomic

    old = os.umask(0o027)
    try:
        path = write_atomic(tmp_path / "results.json", "{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640  # not mkstemp's private 0600
