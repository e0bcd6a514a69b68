"""Parsing blocks of Criteo lines with numpy: 8-digit fields as 64-bit words (SWAR), malformed lines counted
with their line numbers; reading day files (plain or gzip) in blocks cut at line ends."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loadgen.data import DataError
from recommendation.data.format import (
    COLUMNS,
    DENSE,
    EMPTY,
    LABEL,
    MALFORMED_KINDS,
    MAX_HEX_DIGITS,
    MAX_INT_DIGITS,
    N_COLUMNS,
    N_DENSE,
    N_SPARSE,
    SPARSE,
)


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
