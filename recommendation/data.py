"""Criteo click logs (Terabyte ``day_0`` ... ``day_23``, Kaggle ``train.txt``): parse, preprocess, load.

Each line is ``label<TAB>13 integers<TAB>26 hex categories``; any feature may be blank. Preprocessing follows the
DLRM reference (``data_utils.getCriteoAdData`` with ``--max-ind-range`` and ``--data-sub-sample-rate``):

- a negative (label 0) line is dropped when its uniform draw is below the sub-sample rate;
- a category is ``int(hex) % max_ind_range`` (when > 0), then numbered in order of first appearance, scanning the
  days in order: the reference's dictionary, so its checkpoints index the same embedding rows;
- blanks are 0; negative integers are clipped to 0 here and ``log(x + 1)`` is taken when a batch is read;
- the last day is the test day: its first half is the evaluation set ("test"), the rest "val". For Terabyte,
  day_23's first half is 89,137,319 rows (the eval_samples of the MLPerf DLRM rules);
- the output is the reference's ``--mlperf-bin-loader`` format: ``<prefix>_processed_{train,test,val}.bin``,
  rows of 40 int32 (label, 13 dense, 26 categorical), read through a memory map.

Unlike the reference's line-by-line loop, a chunk of lines is parsed at once with numpy, chunks are spread over
worker processes, and the result is built in a temporary folder renamed into place (``loadgen.data``).

    python -m recommendation.data preprocess --raw-dir build/recommendation/mini --dataset terabyte
    python -m recommendation.data download --data-dir /data/criteo [--base-url MIRROR]
    python -m recommendation.data verify --data-dir /data/criteo
"""

from __future__ import annotations

import collections
import gzip
import json
import math
import os
import sys
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loadgen import report
from loadgen.data import DataError, Manifest, PreprocessCache, download, process_pool, verify

HERE = Path(__file__).resolve().parent
DAY_FILES_MANIFEST = HERE / "criteo_day_files.json"
N_DENSE, N_SPARSE = 13, 26
N_COLUMNS = 1 + N_DENSE + N_SPARSE
# Criteo's categories are 32-bit hashes written as (up to) 8 hex digits; the integers are counts that fit int32.
MAX_HEX_DIGITS, MAX_INT_DIGITS = 8, 10
# Parsing works on blocks of this many bytes (cut at a line end): big enough that numpy's per-call cost vanishes,
# small enough that a block's index arrays stay in the caches of one core.
CHUNK_BYTES = 4 << 20
FORMAT_VERSION = 1
# A line may end in CRLF: the reference reads lines with Python's universal newlines, so "\r\n" is a line end.
MALFORMED_KINDS = ("empty line", "wrong column count", "bad label", "non-integer dense value",
                   "non-hex categorical value")
EMPTY, COLUMNS, LABEL, DENSE, SPARSE = range(len(MALFORMED_KINDS))
# Per dataset: how many days, and the file-name prefix of the reference's binary output.
DATASETS = {"terabyte": {"days": 24, "prefix": "terabyte"}, "kaggle": {"days": 7, "prefix": "kaggleAdDisplayChallenge"}}


@dataclass(frozen=True)
class Settings:
    """What preprocessing depends on; every field is part of the cache key."""

    dataset: str = "terabyte"
    max_ind_range: int = -1
    sub_sample_rate: float = 0.0
    seed: int = 123  # the seed the reference's data_utils names for reproducible sub-sampling
    chunk_bytes: int = CHUNK_BYTES
    max_malformed: float = 1e-4

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if not 0.0 <= self.sub_sample_rate < 1.0:
            raise ValueError(f"--data-sub-sample-rate must be in [0, 1), got {self.sub_sample_rate}")
        if self.max_ind_range == 0 or self.max_ind_range > 2**31 - 1:
            raise ValueError(f"--max-ind-range must be -1 (no hashing) or in 1..2^31-1, got {self.max_ind_range}")
        if not 0.0 <= self.max_malformed <= 1.0:
            raise ValueError(f"--max-malformed must be a fraction in [0, 1], got {self.max_malformed}")

    @property
    def prefix(self) -> str:
        return DATASETS[self.dataset]["prefix"]


# ------------------------------------------------------------------------------------------------ parsing


@dataclass
class Parsed:
    """The good lines of a block, and where the bad ones were."""

    label: np.ndarray  # (n,) int32, 0 or 1
    dense: np.ndarray  # (n, 13) int64 as written (may be negative)
    sparse: np.ndarray  # (n, 26) uint32 category hashes
    lines: int  # lines in the block, good and bad
    line_index: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # (n,) 0-based, of good lines
    bad: dict[str, list[int]] = field(default_factory=dict)  # kind -> 1-based line numbers within the block


_POW10 = 10 ** np.arange(MAX_INT_DIGITS, dtype=np.int64)
_U64 = np.uint64
# Low w bytes of a 64-bit word, for w = 0..8.
_LOW = np.array([(1 << (8 * w)) - 1 for w in range(9)], dtype=np.uint64)
_ASCII_ZEROS = _U64(0x3030303030303030)
_HIGH_BITS = _U64(0x8080808080808080)
_ONES = 0x0101010101010101


def _bytes_in(x7: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The high bit of each byte set where ``lo <= byte <= hi``, for words whose bytes are all below 0x80.

    Adding ``0x80 - lo`` to a byte sets its high bit iff byte >= lo, adding ``0x7F - hi`` iff byte > hi; neither
    sum passes 0xFF, so no carry crosses into the next byte (the "bytes in range" test of Hacker's Delight, 6-1).
    """
    at_least_lo = x7 + _U64((0x80 - lo) * _ONES)
    above_hi = x7 + _U64((0x7F - hi) * _ONES)
    at_least_lo &= np.invert(above_hi, out=above_hi)
    at_least_lo &= _HIGH_BITS
    return at_least_lo


def _digits_ok(words: np.ndarray, widths: np.ndarray, hex_digits: bool) -> np.ndarray:
    """Whether the first ``widths`` (<= 8) bytes of each word are all decimal (or hex) digits."""
    x7 = words & ~_HIGH_BITS
    good = _bytes_in(x7, 0x30, 0x39)
    if hex_digits:
        x7 |= _U64(0x20 * _ONES)  # A-F folded onto a-f
        good |= _bytes_in(x7, 0x61, 0x66)
    bad = np.invert(good, out=good)
    bad |= words  # a byte of 0x80 or more is never a digit
    bad &= _HIGH_BITS
    bad &= _LOW[np.minimum(widths, 8)]  # only the field's own bytes count
    return bad == 0


def _hex8(words: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Up to 8 hex digits per field, all fields at once: SWAR on the 64-bit word holding a field's first bytes.

    Each byte becomes its nibble ((c & 0xF) + 9 if c is a letter), then neighbouring nibbles, bytes and 16-bit
    halves are merged, first character most significant.
    """
    w = np.minimum(widths, 8)
    x = words & _LOW[w]
    t = x >> _U64(6)  # the letter bit; the steps below work in place on x and this one scratch array
    t &= _U64(_ONES)
    t *= _U64(9)
    x &= _U64(0x0F0F0F0F0F0F0F0F)
    x += t
    for shift, keep in ((4, 0x00FF00FF00FF00FF), (8, 0x0000FFFF0000FFFF), (16, 0x00000000FFFFFFFF)):
        np.left_shift(x, _U64(shift), out=t)
        x >>= _U64(2 * shift)
        x |= t
        x &= _U64(keep)
    x >>= _U64(4) * (_U64(8) - w.astype(np.uint64))
    return x


def _dec8(words: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Up to 8 decimal digits per field: left-pad to eight with '0' and convert in a few 64-bit steps.

    The eight-digit step is the well-known SWAR conversion (pairs, then fours, then eights: Lemire, "Fast
    integer parsing", and simdjson's parse_eight_digits_unrolled).
    """
    w = np.minimum(widths, 8).astype(np.uint64)
    pad = _U64(8) * (_U64(8) - w)
    x = np.where(w > 0, (words << np.minimum(pad, _U64(56))) | (_ASCII_ZEROS & _LOW[(8 - w).astype(np.int64)]),
                 _ASCII_ZEROS)
    x = x - _ASCII_ZEROS
    x = x * _U64(10) + (x >> _U64(8))
    x = (((x & _U64(0x000000FF000000FF)) * _U64(100 + (1000000 << 32)))
         + (((x >> _U64(16)) & _U64(0x000000FF000000FF)) * _U64(1 + (10000 << 32)))) >> _U64(32)
    return x.astype(np.int64)


def _dec_slow(chars: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Any number of decimal digits (left-aligned in ``chars``): for the rare fields longer than eight."""
    place = np.clip(widths[:, None] - 1 - np.arange(chars.shape[1]), 0, None)
    digits = np.where(np.arange(chars.shape[1]) < widths[:, None], chars.astype(np.int64) - 48, 0)
    return (digits * _POW10[place]).sum(axis=1)


def parse_block(buf: bytes) -> Parsed:
    """Parse whole lines (``buf`` ends with a newline, or is the file's last line) with array operations."""
    if buf and not buf.endswith(b"\n"):
        buf += b"\n"
    a = np.frombuffer(buf + bytes(16), dtype=np.uint8)  # padding: every field's window stays inside
    windows = np.lib.stride_tricks.sliding_window_view(a, 16)
    words = np.ndarray(shape=(len(a) - 8,), dtype="<u8", buffer=a, strides=(1,))
    size = len(buf)
    newlines = np.flatnonzero(a[:size] == 10)
    n = len(newlines)
    starts = np.empty(n, dtype=np.int64)
    starts[:1] = 0
    starts[1:] = newlines[:-1] + 1
    # A line's content ends before its "\n", or before "\r\n": the \r is part of the line end, not of the last field.
    ends = newlines - ((newlines > starts) & (a[np.maximum(newlines - 1, 0)] == 13))
    lengths = ends - starts
    tabs = np.flatnonzero(a[:size] == 9)
    tab_count = np.diff(np.searchsorted(tabs, ends), prepend=0)
    kind = np.full(n, -1, dtype=np.int8)  # index into MALFORMED_KINDS, -1 when good
    kind[tab_count != N_COLUMNS - 1] = COLUMNS
    kind[lengths == 0] = EMPTY
    good = np.flatnonzero(kind < 0)
    # Field boundaries of the lines with 39 tabs: starts are the line start and each tab + 1.
    line_tabs = tabs[np.repeat(kind < 0, tab_count)].reshape(-1, N_COLUMNS - 1)
    f_start = np.concatenate([starts[good, None], line_tabs + 1], axis=1)
    f_end = np.concatenate([line_tabs, ends[good, None]], axis=1)
    width = f_end - f_start

    first = a[f_start[:, 0]]
    label_ok = (width[:, 0] == 1) & ((first == 48) | (first == 49))
    label = (first == 49).astype(np.int32)

    # Dense: optional '-' then up to 10 decimal digits; blank is 0.
    ds, dw = f_start[:, 1:1 + N_DENSE].ravel(), width[:, 1:1 + N_DENSE].ravel()
    neg = (dw > 0) & (a[ds] == 45)
    ds, dw = ds + neg, dw - neg
    dense_words = words[ds]
    dense_ok = _digits_ok(dense_words, dw, hex_digits=False) & (dw <= MAX_INT_DIGITS) & ~(neg & (dw == 0))
    value = _dec8(dense_words, dw)
    long = np.flatnonzero(dw > 8)  # rare: 9 or 10 digits, checked and converted byte by byte
    chars = windows[ds[long], :MAX_INT_DIGITS]
    dense_ok[long] &= ~((np.arange(MAX_INT_DIGITS) < dw[long, None]) & (chars - np.uint8(48) > 9)).any(axis=1)
    value[long] = _dec_slow(chars, dw[long])
    value = np.where(neg, -value, value)
    dense_ok &= (value >= -(2**31)) & (value < 2**31)
    dense_ok = dense_ok.reshape(-1, N_DENSE).all(axis=1)

    # Categorical: up to 8 hex digits; blank is 0.
    ss, sw = f_start[:, 1 + N_DENSE:].ravel(), width[:, 1 + N_DENSE:].ravel()
    # Eight bytes at a time: one unaligned 64-bit load per field, checked and converted as a word.
    sparse_words = words[ss]
    sparse_ok = _digits_ok(sparse_words, sw, hex_digits=True) & (sw <= MAX_HEX_DIGITS)
    hexval = _hex8(sparse_words, sw)
    sparse_ok = sparse_ok.reshape(-1, N_SPARSE).all(axis=1)

    kind[good[~sparse_ok]] = SPARSE
    kind[good[~dense_ok]] = DENSE
    kind[good[~label_ok]] = LABEL
    keep = label_ok & dense_ok & sparse_ok
    bad = {}
    for code in np.unique(kind[kind >= 0]):
        bad[MALFORMED_KINDS[code]] = (np.flatnonzero(kind == code) + 1).tolist()
    return Parsed(label=label[keep], dense=value.reshape(-1, N_DENSE)[keep],
                  sparse=hexval.astype(np.uint32).reshape(-1, N_SPARSE)[keep], lines=n, line_index=good[keep],
                  bad=bad)


def open_text(path: Path):
    """A day file as bytes: plain, or .gz decompressed on the fly."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_chunks(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    """The (decompressed) bytes of a day file, ``chunk_bytes`` at a time.

    A truncated or corrupt .gz (gzip raises EOFError, BadGzipFile or zlib.error partway) is a DataError naming
    the file: it is found only when the reading gets there, possibly hours into a run.
    """
    try:
        with open_text(path) as f:
            while data := f.read(chunk_bytes):
                yield data
    except (EOFError, OSError, zlib.error) as exc:
        what = "truncated" if isinstance(exc, EOFError) else "unreadable"
        raise DataError(f"{path}: {what} ({exc}); download it again (./download_dataset.sh)") from exc


def iter_blocks(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    """Blocks of whole lines, each about ``chunk_bytes`` long."""
    carry = b""
    for data in read_chunks(path, chunk_bytes):
        data = carry + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
            continue
        carry = data[cut:]
        yield data[:cut]
    if carry:
        yield carry


# ------------------------------------------------------------------------------------------------ sources
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


# ------------------------------------------------------------------------------------------------ loaders
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


# ------------------------------------------------------------------------------------------------ CLI
def get_args_parser(add_help: bool = True):
    from loadgen.cli import ArgumentParser, existing_dir, existing_file, existing_path, positive
    from loadgen.data import download_url

    parser = ArgumentParser(prog="python -m recommendation.data", add_help=add_help, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("preprocess", help="raw day files -> the binary train/test/val files (default: -)")
    p.add_argument("--raw-dir", required=True, type=existing_path,
                   help="folder of day_0 ... day_23 or train.txt (default: required)")
    add_preprocess_args(p, positive)
    d = sub.add_parser("download", help="fetch the Terabyte day files, checking md5 (default: -)")
    d.add_argument("--data-dir", required=True, help="folder to fill with day_N.gz (default: required)")
    d.add_argument("--days", type=days_range, default="0-23", help="days to fetch, e.g. 0-23 or 23 (default: 0-23)")
    d.add_argument("--base-url", type=download_url, default=os.environ.get("CRITEO_URL") or None,
                   help="mirror holding day_N.gz (default: $CRITEO_URL, else the official URL)")
    d.add_argument("--manifest", type=existing_file, default=str(DAY_FILES_MANIFEST),
                   help=f"URLs and md5 sums (default: {DAY_FILES_MANIFEST.name} beside this file)")
    v = sub.add_parser("verify", help="check day files against their md5; exit 1 naming bad files (default: -)")
    v.add_argument("--data-dir", required=True, type=existing_dir, help="dataset folder (default: required)")
    v.add_argument("--no-checksums", dest="checksums", action="store_false",
                   help="check presence only (default: checksums on)")
    return parser


def add_preprocess_args(parser, positive) -> None:
    """The preprocessing flags, shared by this CLI, train.py and infer.py (the reference's names)."""
    parser.add_argument("--dataset", choices=list(DATASETS), default="terabyte",
                        help="terabyte (day_0..day_23) or kaggle (train.txt) (default: terabyte)")
    parser.add_argument("--max-ind-range", type=_max_ind_range, default=-1,
                        help="hash every table into at most this many rows; -1 for none (default: -1)")
    parser.add_argument("--data-sub-sample-rate", type=_fraction(upper_open=True), default=0.0,
                        help="share of negative lines to drop, in [0, 1) (default: 0.0)")
    parser.add_argument("--processed-dir", default="build/recommendation/processed",
                        help="where preprocessed data is cached, one folder per settings "
                             "(default: build/recommendation/processed)")
    parser.add_argument("--preprocess-workers", type=positive(int), default=min(os.cpu_count() or 1, 8),
                        help=f"processes that parse blocks (default: {min(os.cpu_count() or 1, 8)})")
    parser.add_argument("--max-malformed", type=_fraction(upper_open=False), default=1e-4,
                        help="refuse to go on when more than this share of lines is malformed (default: 0.0001)")
    parser.add_argument("--chunk-bytes", type=positive(int), default=CHUNK_BYTES, help=f"(default: {CHUNK_BYTES})")


def settings_from(args) -> Settings:
    return Settings(dataset=args.dataset, max_ind_range=args.max_ind_range, sub_sample_rate=args.data_sub_sample_rate,
                    chunk_bytes=args.chunk_bytes, max_malformed=args.max_malformed)


# argparse types for the Settings ranges, so a bad value is refused as usage (exit 2) before any work starts.
def _max_ind_range(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value != -1 and not 1 <= value <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"{text} must be -1 (no hashing) or in 1..2147483647")
    return value


def _fraction(upper_open: bool):
    import argparse

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0):
            raise argparse.ArgumentTypeError(f"{text} must be in [0, 1{')' if upper_open else ']'}")
        return value

    parse.__name__ = "fraction"
    return parse


def days_range(text: str) -> list[int]:
    """An argparse type for ``--days``: ``N`` or ``LO-HI``, within 0..23."""
    import argparse

    lo, _, hi = text.partition("-")
    if not lo.strip().isdigit() or (hi and not hi.strip().isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (0..23) or a range of days such as 0-23")
    days = list(range(int(lo), int(hi or lo) + 1))
    if not days or days[-1] > 23:
        raise argparse.ArgumentTypeError(f"{text!r}: days are 0..23, the low one first")
    return days


def main(args) -> int:
    from loadgen.cli import EXIT_USAGE

    prog = "python -m recommendation.data"
    if args.command == "preprocess":
        try:
            settings = settings_from(args)
        except ValueError as exc:  # a value the flag types let through but Settings refuses: still bad usage
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        if args.command == "preprocess":
            out = preprocess(args.raw_dir, args.processed_dir, settings, workers=args.preprocess_workers)
            summary = json.loads((out / "preprocess.json").read_text())
            print(f"{out}: {sum(summary['rows_per_day'])} rows from {summary['lines']} lines; "
                  f"test {summary['test_rows']}, val {summary['val_rows']}; tables {summary['table_sizes']}")
            return 0
        data_dir = Path(args.data_dir)
        try:
            spec = json.loads(Path(getattr(args, "manifest", DAY_FILES_MANIFEST)).read_text())["files"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{getattr(args, 'manifest', DAY_FILES_MANIFEST)}: not a day-file manifest "
                            f"({type(exc).__name__}: {exc})") from exc
        if args.command == "download":
            for day in args.days:
                item = spec.get(f"day_{day}.gz")
                if not item or "url" not in item or "md5" not in item:
                    raise DataError(f"{args.manifest}: no url and md5 for day_{day}.gz")
                download(item["url"], data_dir / f"day_{day}.gz", md5=item["md5"], mirror=args.base_url)
            print(f"{data_dir}: day files ready (read as .gz; no need to unpack); check with ./verify_dataset.sh")
            return 0
        if (data_dir / "manifest.json").is_file():  # the embedded mini set lists its own files
            problems = verify(data_dir, Manifest.load(data_dir / "manifest.json"), checksums=args.checksums)
        else:
            files = {}
            for day in range(DATASETS["terabyte"]["days"]):
                name = next((n for n in (f"day_{day}.gz", f"day_{day}") if (data_dir / n).is_file()), f"day_{day}.gz")
                files[name] = {"md5": spec[name]["md5"]} if args.checksums else {}
            problems = verify(data_dir, Manifest(files=files), extras=False)  # a raw folder may hold more
        for problem in problems:
            print(f"bad: {problem}", file=sys.stderr)
        print(f"{data_dir}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
        return 1 if problems else 0
    except (DataError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
