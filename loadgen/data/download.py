"""Downloads that resume and verify.

A downloaded file appears under its final name only once its checksum matched (written to ``<name>.part``, then
renamed). A dropped connection is resumed with an HTTP Range request; retries back off exponentially. After a
network failure the ``.part`` stays, so the next run resumes; corrupt bytes are deleted."""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from pathlib import Path, PurePosixPath

from loadgen.data.errors import ChecksumError, DataError

_CHUNK = 1 << 20


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


def join_url(base: str, path: str) -> str:
    """``path`` (relative, ``/``-separated) under the folder URL ``base``, given with or without its trailing slash:
    ``join_url("https://host/bucket", "validation/x.jpg")`` is ``https://host/bucket/validation/x.jpg``."""
    return base.rstrip("/") + "/" + path.lstrip("/")


def mirrored(url: str, mirror: str | None) -> str:
    """``url`` fetched from ``mirror`` instead: the mirror's base URL plus the file name."""
    if not mirror:
        return url
    return join_url(mirror, PurePosixPath(urllib.parse.urlparse(url).path).name)


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
