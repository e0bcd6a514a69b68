"""Reading preprocessed ``.bin`` files: rows, the log/modulo transform, and the two batch loaders."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from loadgen.data import DataError
from recommendation.data.format import N_COLUMNS, N_DENSE


def split_file(processed_dir: str | os.PathLike, split: str) -> Path:
    """``<prefix>_processed_<split>.bin`` in a folder made by :func:`preprocess` (or by the reference)."""
    folder = Path(processed_dir)
    found = sorted(folder.glob(f"*_processed_{split}.bin"))
    if not found:
        raise DataError(f"{folder}: no *_processed_{split}.bin; run python -m recommendation.data preprocess")
    return found[0]


def read_rows(path: str | os.PathLike) -> np.ndarray:
    """All rows of a .bin file as a read-only (n, 40) int32 memory map."""
    path = Path(path)
    size = path.stat().st_size
    if size % (N_COLUMNS * 4):
        raise DataError(f"{path}: {size} bytes is not a whole number of 40-int32 rows; the file is truncated")
    if size == 0:
        return np.empty((0, N_COLUMNS), dtype=np.int32)
    return np.memmap(path, dtype=np.int32, mode="r", shape=(size // (N_COLUMNS * 4), N_COLUMNS))


def transform(rows: np.ndarray, max_ind_range: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of 40 int32 -> (dense float32 log(x + 1), categorical int64 indices, label float32), as the reference."""
    dense = np.log1p(rows[:, 1:1 + N_DENSE].astype(np.float32))
    sparse = rows[:, 1 + N_DENSE:].astype(np.int64)
    if max_ind_range > 0:
        sparse %= max_ind_range
    return dense, sparse, rows[:, 0].astype(np.float32)


class BinLoader:
    """The reference's ``--mlperf-bin-loader``: each batch is one slice of the memory-mapped file.

    Batches are consecutive rows; with ``shuffle`` the order of the batches (not of rows within one) is random,
    which keeps every read sequential. ``shard=(rank, world_size)`` gives this process its slice of each batch
    (``batch_size`` is the global batch), so the processes of a data-parallel job read disjoint rows.
    """

    def __init__(self, path: str | os.PathLike, batch_size: int, max_ind_range: int = -1, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False, shard: tuple[int, int] = (0, 1)) -> None:
        self.rows = read_rows(path)
        self.batch_size, self.max_ind_range = batch_size, max_ind_range
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.shard = shard
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.rows)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        order = np.arange(len(self))
        if self.shuffle:
            np.random.default_rng([self.seed, self.epoch]).shuffle(order)
        self.epoch += 1
        rank, world_size = self.shard
        for b in order:
            start, end = b * self.batch_size, min(len(self.rows), (b + 1) * self.batch_size)
            size = end - start
            yield transform(self._batch(start + size * rank // world_size, start + size * (rank + 1) // world_size),
                            self.max_ind_range)

    def _batch(self, start: int, end: int) -> np.ndarray:
        return np.asarray(self.rows[start:end])


class RowLoader(BinLoader):
    """The reference's original loader: rows held in memory, read one by one, collated into batches.

    Same batches as :class:`BinLoader` for the same settings; slower, kept for runs that compare the two.
    """

    def __init__(self, path: str | os.PathLike, batch_size: int, max_ind_range: int = -1, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False, shard: tuple[int, int] = (0, 1)) -> None:
        super().__init__(path, batch_size, max_ind_range, shuffle, seed, drop_last, shard)
        self.rows = np.array(self.rows)  # into memory, like the reference's np.load of the processed arrays

    def __getitem__(self, i: int) -> np.ndarray:
        return self.rows[i]

    def _batch(self, start: int, end: int) -> np.ndarray:
        return np.stack([self[i] for i in range(start, end)])


def table_sizes(processed_dir: str | os.PathLike, max_ind_range: int = -1) -> list[int]:
    """Rows of each embedding table: the number of distinct categories, capped at max_ind_range."""
    with np.load(Path(processed_dir) / "day_fea_count.npz", allow_pickle=False) as f:
        counts = f["counts"].astype(np.int64)
    if max_ind_range > 0:
        counts = np.minimum(counts, max_ind_range)
    return [max(1, int(c)) for c in counts]
