"""The Criteo day-file format, the datasets, and the settings preprocessing depends on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # the benchmark folder
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
# Rows of the 26 tables that preprocessing the whole Criteo Terabyte set with --max-ind-range=40000000 gives (the
# DLRM reference's ln_emb for that range, and the MLPerf inference reference's --arch-embedding-size): what a
# memory plan needs before the 1 TB of data is read. Smaller ranges cap each count.
TERABYTE_TABLE_ROWS_40M = (39884406, 39043, 17289, 7420, 20263, 3, 7120, 1543, 63, 38532951, 2953546, 403346, 10,
                           2208, 11938, 155, 4, 976, 14, 39979771, 25641295, 39664984, 585935, 12972, 108, 36)


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
