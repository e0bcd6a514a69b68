"""Preprocessing as the DLRM reference does it (first-appearance numbering, sub-sampling, the test day split), in
worker processes, into the reference's ``.bin`` format, cached by settings and sources."""

from __future__ import annotations

import collections
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from loadgen import report
from loadgen.data import DataError, PreprocessCache, process_pool
from recommendation.data.format import DATASETS, FORMAT_VERSION, N_COLUMNS, N_DENSE, N_SPARSE, Settings
from recommendation.data.parse import iter_blocks, parse_block, read_chunks


def day_files(raw_dir: str | os.PathLike, dataset: str) -> list[Path]:
    """The raw files in day order: day_0 ... day_23 (plain or .gz) for Terabyte, train.txt for Kaggle."""
    raw = Path(raw_dir)
    if dataset == "kaggle":
        path = raw / "train.txt" if raw.is_dir() else raw
        if not path.is_file():
            raise DataError(f"{path}: no such file (the Kaggle dataset is one train.txt)")
        return [path]
    files = []
    for day in range(DATASETS["terabyte"]["days"]):
        candidates = [raw / f"day_{day}", raw / f"day_{day}.gz"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise DataError(f"{raw}: day_{day} (or day_{day}.gz) is missing; ./download_dataset.sh fetches them")
        files.append(found)
    return files


def _source_digest(files: Sequence[Path]) -> str:
    # Name, size and modification time: hashing a terabyte to key a cache would take longer than preprocessing.
    return json.dumps([[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files])


# ------------------------------------------------------------------------------------------------ the two passes
def _keep_mask(label: np.ndarray, rate: float, seed: int, file_index: int, block_index: int) -> np.ndarray:
    """The reference's negative sub-sampling: drop a label-0 line when its uniform draw is below ``rate``."""
    if rate <= 0.0:
        return np.ones(len(label), dtype=bool)
    draw = np.random.default_rng([seed, file_index, block_index]).random(len(label))
    return (label == 1) | (draw >= rate)


def _hashed(sparse: np.ndarray, max_ind_range: int) -> np.ndarray:
    return sparse % np.uint32(max_ind_range) if max_ind_range > 0 else sparse


def _scan(job: tuple) -> dict:
    """Parse one block in a worker: its kept rows (categories still hashes) and their first appearances."""
    buf, file_index, block_index, s = job
    p = parse_block(buf)
    keep = _keep_mask(p.label, s.sub_sample_rate, s.seed, file_index, block_index)
    rows = np.empty((int(keep.sum()), N_COLUMNS), dtype=np.int32)
    rows[:, 0] = p.label[keep]
    rows[:, 1:1 + N_DENSE] = np.maximum(p.dense[keep], 0)  # the reference: X_int[X_int < 0] = 0
    sparse = _hashed(p.sparse[keep], s.max_ind_range)
    rows[:, 1 + N_DENSE:] = sparse.view(np.int32)  # the hash's bits, numbered by the main process
    return {"file": file_index, "rows": rows, "line_index": p.line_index[keep], "bytes": len(buf), "lines": p.lines,
            "good": len(p.label), "bad": p.bad, "firsts": _first_appearances(sparse)}


def _first_appearances(sparse: np.ndarray) -> list[np.ndarray]:
    """Each column's distinct values in order of first appearance."""
    # pandas.unique hashes and keeps that order: linear time, about six times faster here than np.unique's sort
    # followed by an argsort of the first positions. Imported here: only the workers need it.
    import pandas as pd

    return [pd.unique(np.ascontiguousarray(sparse[:, j])) for j in range(N_SPARSE)]


class FirstSeen:
    """Numbers the values of one categorical feature in order of first appearance (the reference's dictionary).

    With hashing the values are below max_ind_range, so a dense array answers in O(1). Without, the keys seen so
    far are kept sorted (with their numbers beside them) and each block's new keys are inserted where they belong:
    one pass over the array a block, not a re-sort of everything seen.
    """

    def __init__(self, max_ind_range: int) -> None:
        self.dense = np.full(max_ind_range, -1, dtype=np.int32) if max_ind_range > 0 else None
        self.keys = np.empty(0, dtype=np.uint32)
        self.ids = np.empty(0, dtype=np.int64)
        self.count = 0

    def add(self, values_in_order: np.ndarray) -> None:
        if self.dense is not None:
            new = values_in_order[self.dense[values_in_order] < 0]
            self.dense[new] = np.arange(self.count, self.count + len(new), dtype=np.int32)
        else:
            pos = np.minimum(np.searchsorted(self.keys, values_in_order), max(len(self.keys) - 1, 0))
            new = values_in_order[~(self.keys[pos] == values_in_order)] if len(self.keys) else values_in_order
            order = np.argsort(new, kind="stable")
            at = np.searchsorted(self.keys, new[order])
            self.keys = np.insert(self.keys, at, new[order])
            self.ids = np.insert(self.ids, at, np.arange(self.count, self.count + len(new))[order])
        self.count += len(new)

    def lookup(self, values: np.ndarray) -> np.ndarray:
        if self.dense is not None:
            return self.dense[values]
        return self.ids[np.searchsorted(self.keys, values)]


def _jobs(files: Sequence[Path], s: Settings) -> Iterator[tuple]:
    for file_index, path in enumerate(files):
        for block_index, buf in enumerate(iter_blocks(path, s.chunk_bytes)):
            yield buf, file_index, block_index, s


def _ordered_map(fn, jobs: Iterator, workers: int) -> Iterator:
    """``map(fn, jobs)`` over worker processes, in order, with a bounded number of blocks in flight."""
    if workers <= 1:
        yield from map(fn, jobs)
        return
    try:
        with process_pool(workers) as pool:  # workers end with this process, even when it is killed
            pending: collections.deque[Future] = collections.deque()
            for job in jobs:
                pending.append(pool.submit(fn, job))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    except BrokenProcessPool as exc:
        raise DataError(f"a preprocessing worker process died ({exc}); out of memory? try fewer "
                        "--preprocess-workers") from exc


def malformed_report(per_file: dict[str, dict[str, list[int]]], limit: int = 3) -> list[str]:
    """One line per file and kind: how many, and the first line numbers."""
    out = []
    for name, kinds in per_file.items():
        for kind, lines in kinds.items():
            where = ", ".join(str(n) for n in lines[:limit]) + (", ..." if len(lines) > limit else "")
            out.append(f"{name}: {len(lines)} line(s) with {kind} (line {where})")
    return out


def preprocess(raw_dir: str | os.PathLike, out_root: str | os.PathLike, settings: Settings, *,
               workers: int | None = None, progress: bool = True) -> Path:
    """The preprocessed dataset for ``settings``: built once under ``out_root/<key>``, reused afterwards."""
    files = day_files(raw_dir, settings.dataset)
    params = {"format": FORMAT_VERSION, **settings.__dict__}
    cache = PreprocessCache(out_root, params, _source_digest(files))
    workers = min(os.cpu_count() or 1, 8) if workers is None else workers
    return cache.get_or_build(lambda tmp: _build(files, tmp, settings, workers, progress))


def _build(files: Sequence[Path], out: Path, s: Settings, workers: int, progress: bool) -> None:
    from tqdm import tqdm

    total_bytes = sum(p.stat().st_size for p in files)
    days = DATASETS[s.dataset]["days"]

    def bar(desc: str):
        # .gz files are read decompressed, so the bar counts lines' bytes against the compressed size only roughly.
        return tqdm(total=total_bytes, desc=desc, unit="B", unit_scale=True, disable=None if progress else True)

    # Kaggle's one file is cut into 7 runs of lines, the remainder on the first days, as the reference does.
    if s.dataset == "kaggle":
        total = sum(block.count(b"\n") for block in read_chunks(files[0], 64 << 20))
        per_day, extra = divmod(total, days)
        day_ends = np.cumsum([per_day + (d < extra) for d in range(days)])

    # One pass. Workers parse blocks; this process numbers the categories in order of first appearance, block by
    # block in file order (so the numbering does not depend on the worker count), and appends each row to
    # train.bin, or (the test day) to test.bin, which is split in halves at the end.
    tables = [FirstSeen(s.max_ind_range) for _ in range(N_SPARSE)]
    bad: dict[str, dict[str, list[int]]] = {}
    lines_before: dict[int, int] = collections.defaultdict(int)
    rows_per_day = np.zeros(days, dtype=np.int64)
    names = {split: out / f"{s.prefix}_processed_{split}.bin" for split in ("train", "test", "val")}
    total_lines = good_lines = 0
    with open(names["train"], "wb") as train, open(names["test"], "wb") as test, bar("preprocess") as pbar:
        for r in _ordered_map(_scan, _jobs(files, s), workers):
            offset = lines_before[r["file"]]
            for kind, lines in r["bad"].items():
                bad.setdefault(files[r["file"]].name, {}).setdefault(kind, []).extend(n + offset for n in lines)
            rows = r["rows"]
            for j, (table, firsts) in enumerate(zip(tables, r["firsts"], strict=True)):
                table.add(firsts)
                col = rows[:, 1 + N_DENSE + j]
                col[:] = table.lookup(col.view(np.uint32))
            if s.dataset == "kaggle":
                day = np.searchsorted(day_ends, offset + r["line_index"], side="right")
            else:
                day = np.full(len(rows), r["file"])
            rows_per_day += np.bincount(day, minlength=days)
            train.write(rows[day < days - 1].tobytes())
            test.write(rows[day == days - 1].tobytes())
            lines_before[r["file"]] += r["lines"]
            total_lines += r["lines"]
            good_lines += r["good"]
            pbar.update(r["bytes"])
            n_bad = total_lines - good_lines
            if n_bad > s.max_malformed * total_lines and n_bad > 100:  # early out on a clearly broken file
                break
    n_bad = total_lines - good_lines
    details = malformed_report(bad)
    if n_bad > s.max_malformed * total_lines:
        share = 100 * n_bad / max(total_lines, 1)
        raise DataError(f"{n_bad} of {total_lines} lines read are malformed ({share:.3g} %), "
                        f"over --max-malformed {100 * s.max_malformed:g} %: " + "; ".join(details[:5]))
    for line in details:
        print(f"warning: skipped {line}", file=sys.stderr)
    test_rows = int(rows_per_day[-1])
    _split_tail(names["test"], names["val"], keep_rows=math.ceil(test_rows / 2))
    counts = np.array([t.count for t in tables], dtype=np.int32)
    np.savez(out / "day_fea_count.npz", counts=counts)  # the reference's names for these two files
    np.savez(out / "day_day_count.npz", total_per_file=rows_per_day)
    report.write_json_atomic(out / "preprocess.json", {
        "settings": s.__dict__, "files": [p.name for p in files], "lines": total_lines, "good_lines": good_lines,
        "malformed": {name: {k: len(v) for k, v in kinds.items()} for name, kinds in bad.items()},
        "malformed_detail": details, "rows_per_day": rows_per_day.tolist(), "table_sizes": counts.tolist(),
        "test_rows": math.ceil(test_rows / 2), "val_rows": test_rows - math.ceil(test_rows / 2)})


def _split_tail(src: Path, dest: Path, keep_rows: int) -> None:
    """Move the rows of ``src`` after the first ``keep_rows`` into ``dest``."""
    row_bytes = N_COLUMNS * 4
    with open(src, "r+b") as f, open(dest, "wb") as g:
        f.seek(keep_rows * row_bytes)
        while block := f.read(64 << 20):
            g.write(block)
        f.truncate(keep_rows * row_bytes)
