"""Fetching COCO 2017: each archive downloaded (resumed, retried, md5-checked), extracted safely and moved into
place whole; the pretrained ResNet-34 weights checked by the sha256 prefix in their name."""

from __future__ import annotations

import os
import shutil
import urllib.parse
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from loadgen.data import ChecksumError, DataError, download, extract, partial_folder
from single_stage_detector.data.layout import Archive, sha256_prefix, weights_problem


def _check_space(archive: Archive, dest: Path) -> None:
    """Refuse a download the disk cannot hold, before it starts, rather than after hours of it."""
    if archive.bytes is None:
        return
    part = dest.with_name(dest.name + ".part")
    need = archive.bytes - (part.stat().st_size if part.is_file() else 0)
    free = shutil.disk_usage(dest.parent).free
    if need > free:
        raise DataError(f"{dest.parent}: {need / 1e9:.1f} GB more are needed for {archive.file}, "
                        f"{free / 1e9:.1f} GB are free")


def fetch_archive(archive: Archive, data_dir: Path, archives_dir: Path, mirror: str | None = None,
                  delete_archive: bool = False) -> str:
    """Download ``archive`` into ``archives_dir`` and extract its top folder to ``data_dir``; what was done.

    A top folder already in ``data_dir`` is kept without a request: it only ever appears whole, since the archive
    is extracted into a partial folder beside it and renamed into place (a killed run's leftovers are reclaimed
    by the next run).
    """
    target = data_dir / archive.extracts_to
    if target.exists():
        return f"{target}: already there"
    dest = archives_dir / archive.file
    archives_dir.mkdir(parents=True, exist_ok=True)
    if not dest.is_file():
        _check_space(archive, dest)
    download(archive.url, dest, md5=archive.md5, mirror=mirror)
    work = partial_folder(data_dir, f"coco-{archive.key}")
    try:
        unpacked = extract(dest, work / "unpacked")
        top = unpacked / archive.extracts_to
        if not top.is_dir():
            found = ", ".join(sorted(p.name for p in unpacked.iterdir())[:5]) or "nothing"
            raise DataError(f"{dest}: holds no {archive.extracts_to}/ folder at its top (found: {found})")
        os.replace(top, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if delete_archive:
        dest.unlink()
    return f"{target}: extracted from {archive.file}"


def fetch_weights(url: str, weights_dir: Path) -> str:
    """Download the weights file at ``url`` into ``weights_dir``, kept only if its sha256 starts with the prefix
    its name carries; what was done. A file already there that passes the check is kept without a request."""
    dest = weights_dir / PurePosixPath(urllib.parse.urlparse(url).path).name
    if sha256_prefix(dest.name) is None:
        raise DataError(f"{url}: the file name carries no sha256 prefix to check (expected <name>-<8 hex digits>.pth)")
    problem = weights_problem(dest)
    if problem is None:
        return f"{dest}: already there"
    if dest.is_file():  # present but wrong: replaced below, and only by a file that passes
        print(f"{problem}; fetching it again")
    # Downloaded under a side name and renamed once checked, so the real name only ever holds checked bytes.
    unverified = download(url, dest.with_name(dest.name + ".unverified"))
    if problem := weights_problem(unverified, name=dest.name):
        unverified.unlink()
        raise ChecksumError(f"{url}: downloaded file refused, {problem.partition(': ')[2]}")
    os.replace(unverified, dest)
    return f"{dest}: downloaded, sha256 prefix checked"


def fetch(parts: Iterable[str], archives: dict[str, Archive], data_dir: Path, archives_dir: Path,
          weights_url: str, weights_dir: Path, mirror: str | None = None, delete_archives: bool = False) -> list[str]:
    """Fetch each of ``parts`` (archive keys, or ``weights``) in turn; a line per part saying what was done."""
    done = []
    for part in parts:
        if part == "weights":
            done.append(fetch_weights(weights_url, weights_dir))
        else:
            done.append(fetch_archive(archives[part], data_dir, archives_dir, mirror, delete_archives))
        print(done[-1])
    return done
