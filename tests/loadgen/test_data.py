"""Downloads from a local HTTP server, safe extraction, manifest verification and the preprocessing cache."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile

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
    with tarfile.open(path, "w") as tf:
        for name, kind, target in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = 3
                tf.addfile(info, io.BytesIO(b"abc"))
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = target
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
