"""What the suite keeps on disk, and removing it safely.

Everything the suite writes by default lies in two folders under the working folder: ``build/`` (datasets: the
mini sets and downloads; caches: preprocessed images, processed Criteo days) and ``results/`` (models: each
training run's folder with its checkpoint and exports; results: LoadGen runs, submission trees, the results
store). :func:`entries` lists them a folder each, with its size and the benchmark it belongs to; :func:`remove`
deletes only inside those two folders, and never through a link: a link is a path that could lead anywhere.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

CATEGORIES = ("datasets", "caches", "models", "results")
ROOTS = ("build", "results")
CACHE_NAMES = ("cache", "processed")  # build/<benchmark>/<name>: preprocessing caches


class UnsafePath(ValueError):
    """A path :func:`remove` will not touch: outside the suite's folders, or a link."""


@dataclasses.dataclass(frozen=True)
class Entry:
    category: str
    path: Path
    size: int  # bytes of the files below it, links not followed
    owner: str  # the benchmark folder it belongs to, or "suite"


def size_of(path: Path) -> int:
    """Bytes below ``path``, counting each file once and following no link."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for folder, _, files in os.walk(path, followlinks=False):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def entries(root: str | os.PathLike = ".") -> list[Entry]:
    """Every stored item under ``root/build`` and ``root/results``, a folder (or file) each."""
    root = Path(root)
    found = []
    build = root / "build"
    if build.is_dir():
        for bench in sorted(p for p in build.iterdir() if p.is_dir() and not p.is_symlink()):
            for item in sorted(bench.iterdir()):
                category = "caches" if item.name in CACHE_NAMES else "datasets"
                found.append(Entry(category, item, size_of(item), bench.name))
    results = root / "results"
    if results.is_dir():
        for item in sorted(results.iterdir()):
            if item.is_dir() and not item.is_symlink():
                for sub in sorted(item.iterdir()):
                    category = "models" if sub.name == "train" else "results"
                    found.append(Entry(category, sub, size_of(sub), item.name))
            else:
                found.append(Entry("results", item, size_of(item), "suite"))
    return found


def check_safe(path: Path, root: str | os.PathLike = ".") -> None:
    """Refuse a path outside ``root/build`` and ``root/results``, or one that is, or passes through, a link."""
    root = Path(root).resolve()
    allowed = [root / name for name in ROOTS]
    absolute = Path(os.path.abspath(path))
    inside = next((base for base in allowed if absolute.is_relative_to(base) and absolute != base), None)
    if inside is None:
        raise UnsafePath(f"{path}: outside the suite's folders ({', '.join(str(a) for a in allowed)})")
    probe = absolute
    while probe != inside.parent:
        if probe.is_symlink():
            raise UnsafePath(f"{path}: {probe} is a link (to {os.readlink(probe)}); links are not followed or removed")
        probe = probe.parent
    if absolute.resolve() != absolute:
        raise UnsafePath(f"{path}: resolves to {absolute.resolve()}, elsewhere")


def remove(paths: Iterable[Path], root: str | os.PathLike = ".", dry_run: bool = False) -> list[tuple[Path, int]]:
    """Delete each path (checked by :func:`check_safe` first, all of them before any is deleted); what was (or,
    with ``dry_run``, would be) removed, with sizes."""
    paths = list(paths)
    for path in paths:
        check_safe(path, root)
    done = []
    for path in paths:
        size = size_of(path)
        if not dry_run:
            if path.is_dir():
                shutil.rmtree(path)  # rmtree removes links inside the tree, never what they point to
            else:
                path.unlink()
        done.append((path, size))
    return done


def human(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
