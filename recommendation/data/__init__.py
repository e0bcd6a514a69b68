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

One module per job: ``format`` (the day-file format, the datasets, the settings), ``parse`` (blocks of lines with
numpy), ``preprocess`` (the reference's two passes, in worker processes, cached), ``loaders`` (the ``.bin`` files
and the batch loaders), ``cli`` (the commands above). The names below are the package's API.
"""

# ruff: noqa: I001 - the API in a few wrapped lines, not one name a line
from recommendation.data.cli import add_preprocess_args, days_range, get_args_parser, main, settings_from
from recommendation.data.format import (CHUNK_BYTES, DATASETS, DAY_FILES_MANIFEST, MALFORMED_KINDS, N_COLUMNS, N_DENSE,
                                        N_SPARSE, TERABYTE_TABLE_ROWS_40M, Settings)
from recommendation.data.loaders import BinLoader, RowLoader, read_rows, split_file, table_sizes, transform
from recommendation.data.parse import Parsed, iter_blocks, parse_block, read_chunks
from recommendation.data.preprocess import FirstSeen, day_files, malformed_report, preprocess

__all__ = [
    "CHUNK_BYTES", "DATASETS", "DAY_FILES_MANIFEST", "MALFORMED_KINDS", "N_COLUMNS", "N_DENSE", "N_SPARSE",
    "TERABYTE_TABLE_ROWS_40M", "BinLoader", "FirstSeen", "Parsed", "RowLoader", "Settings", "add_preprocess_args",
    "day_files", "days_range", "get_args_parser", "iter_blocks", "main", "malformed_report", "parse_block",
    "preprocess", "read_chunks", "read_rows", "settings_from", "split_file", "table_sizes", "transform"
]
