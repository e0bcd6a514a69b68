"""The inference cache: every image preprocessed once, in parallel, into one memory-mapped array, keyed by the
preset and the files' identities."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from image_classification.data.images import BadImageError, EvalPreset, load_image
from image_classification.data.layout import summarize
from loadgen.data import (
    PreprocessCache,
    process_pool,
)


def _cache_chunk(job: tuple[str, int, list[str], EvalPreset]) -> list[str]:
    """Worker: preprocess ``paths`` into rows [start, start + len) of the memory-mapped array."""
    array_path, start, paths, preset = job
    images = np.lib.format.open_memmap(array_path, mode="r+")
    errors = []
    for offset, path in enumerate(paths):
        try:
            images[start + offset] = preset.geometry(load_image(path))
        except BadImageError as exc:  # reported by the parent, with every other bad file
            errors.append(str(exc))
    images.flush()
    return errors



def _source_identity(samples: Sequence[tuple[str, int]]) -> str:
    """What the cache of ``samples`` depends on: each file's path, label and identity on disk.

    Size alone would keep a replaced image of the same size; size, modification time (ns) and inode change
    when a file is rewritten in place or replaced by a rename. Hashing the contents would cost as much as
    the preprocessing.
    """
    h = hashlib.sha256()
    missing = []
    for path, label in samples:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            missing.append(f"{path}: missing (no such file)")
            continue
        h.update(f"{path}\t{label}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_ino}\n".encode())
    if missing:
        raise BadImageError(summarize(missing))
    return h.hexdigest()


def build_cache(samples: Sequence[tuple[str, int]], preset: EvalPreset, cache_root: str | os.PathLike,
                workers: int | None = None, progress: bool = True) -> Path:
    """Preprocess every image once into ``images.npy`` (uint8 N x crop x crop x 3) and ``labels.npy``.

    Parallel over processes (PIL's decoder releases the GIL, but the per-image Python and numpy work around it
    does not, so threads would not scale) that end with this one, written straight into one memory-mapped
    array, atomic and keyed by the preset and the files' identities (loadgen.data.PreprocessCache).
    """
    from tqdm import tqdm

    cache = PreprocessCache(cache_root, dataclasses.asdict(preset), _source_identity(samples))
    workers = workers or os.cpu_count() or 1

    def build(folder: Path) -> None:
        n = len(samples)
        array_path = str(folder / "images.npy")
        np.lib.format.open_memmap(array_path, mode="w+", dtype=np.uint8, shape=(n, preset.crop, preset.crop, 3))
        np.save(folder / "labels.npy", np.asarray([label for _, label in samples], dtype=np.int64))
        step = max(1, min(256, n // (workers * 4) or 1))
        jobs = [(array_path, s, [p for p, _ in samples[s:s + step]], preset) for s in range(0, n, step)]
        errors: list[str] = []
        with process_pool(workers) as pool, tqdm(total=n, desc="preprocess", unit="img",
                                                        disable=None if progress else True, leave=False) as bar:
            for job, errs in zip(jobs, pool.map(_cache_chunk, jobs), strict=True):
                errors += errs
                bar.update(len(job[2]))
        if errors:
            raise BadImageError(summarize(errors))

    return cache.get_or_build(build)
