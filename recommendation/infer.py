"""DLRM under LoadGen: the QSL over the test half of the last day, with the reference's aggregation options.

One LoadGen sample is a run of consecutive rows (user-item pairs) of the test set: a fixed number
(``--samples-to-aggregate-fix``), a uniform number in [min, max], or a number drawn from a quantile file (the
reference's tools/dist_quantile.txt: 100 to 700 rows). Each response packs the sample's rows as float32
``(prediction, label)`` pairs, the reference's format, so ``recommendation.accuracy`` needs only the log.

    python -m recommendation.infer --profile dlrm-terabyte-onnxruntime --scenario Offline --accuracy
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

from loadgen import cli, exported
from loadgen.accuracy import Accuracy
from loadgen.backends import BACKENDS
from loadgen.data import DataError
from loadgen.harness import RaggedTask
from recommendation import accuracy, data, mini

DEFAULT_MODEL_DIR = Path("results/recommendation/train/export")
EXPORTED = ("pytorch", "onnxruntime")  # what recommendation.export writes: dlrm.pt2, dlrm.onnx
MODEL_NAME = "dlrm"  # the name LoadGen's mlperf.conf knows
# The reference's profiles, dlrm-<dataset>-<backend>.
PROFILES = {f"dlrm-{ds}-{backend}": {"backend": backend, "dataset": ds, "model_name": MODEL_NAME}
            for ds in data.DATASETS for backend in EXPORTED}
SAMPLES_PER_QUERY_OFFLINE = 2048  # the reference's default


def get_args_parser(add_help: bool = True) -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m recommendation.infer", description=__doc__, add_help=add_help)
    cli.add_inference_args(parser, backends=list(BACKENDS))
    g = parser.add_argument_group("Criteo")
    g.add_argument("--raw-dir", "--dataset-path", dest="raw_dir", type=cli.existing_dir, default=None,
                   help=f"folder of the day files or train.txt (default: the mini set, {mini.DEFAULT_OUT})")
    data.add_preprocess_args(g, cli.positive)
    g.add_argument("--model-dir", default=str(DEFAULT_MODEL_DIR),
                   help=f"folder of exported models dlrm.pt2 / dlrm.onnx; --model overrides "
                        f"(default: {DEFAULT_MODEL_DIR})")
    g.add_argument("--mlperf-bin-loader", action="store_true",
                   help="memory-map the .bin instead of reading the test rows into memory (default: False)")
    agg = g.add_mutually_exclusive_group()
    agg.add_argument("--samples-to-aggregate-fix", type=cli.positive(int), default=None,
                     help="rows per LoadGen sample, fixed (default: None)")
    agg.add_argument("--samples-to-aggregate-quantile-file", type=cli.existing_file, default=None,
                     help="rows per sample drawn from these quantiles (default: None)")
    g.add_argument("--samples-to-aggregate-min", type=cli.positive(int), default=None,
                   help="with --samples-to-aggregate-max: rows per sample uniform in [min, max] (default: None)")
    g.add_argument("--samples-to-aggregate-max", type=cli.positive(int), default=None,
                   help="see --samples-to-aggregate-min (default: None)")
    g.add_argument("--samples-to-aggregate-trace-file", default=None,
                   help="write each sample's row range, one [start, end) a line (default: None)")
    g.add_argument("--samples-per-query-offline", type=cli.positive(int), default=SAMPLES_PER_QUERY_OFFLINE,
                   help="aggregated samples held in memory for performance runs, the QSL's performance count "
                        f"(default: {SAMPLES_PER_QUERY_OFFLINE})")
    g.add_argument("--numpy-rand-seed", type=int, default=123,
                   help="seed of the random aggregation sizes (default: 123)")
    return parser


def aggregation_sizes(n_rows: int, *, fix: int | None = None, low: int | None = None, high: int | None = None,
                      quantile_file: str | None = None, seed: int = 123) -> np.ndarray:
    """Rows per LoadGen sample, covering ``n_rows`` (the last sample takes what is left)."""
    if n_rows < 1:
        raise DataError("the test set is empty")
    rng = np.random.default_rng(seed)
    if quantile_file is not None:
        text = Path(quantile_file).read_text().replace(",", " ").split()
        try:
            quantiles = np.array([int(float(t)) for t in text])
        except ValueError as exc:
            raise DataError(f"{quantile_file}: not a list of numbers ({exc})") from None
        if len(quantiles) == 0 or quantiles.min() < 1:
            raise DataError(f"{quantile_file}: quantiles must be positive row counts")
        draw = lambda k: quantiles[rng.integers(0, len(quantiles), k)]  # noqa: E731
    elif low is not None or high is not None:
        if low is None or high is None or low > high:
            raise DataError("--samples-to-aggregate-min and -max go together, with min <= max")
        draw = lambda k: rng.integers(low, high + 1, k)  # noqa: E731
    else:
        size = fix or 1
        return np.diff(np.r_[np.arange(0, n_rows, size), n_rows])
    sizes: list[np.ndarray] = []
    total = 0
    while total < n_rows:
        chunk = draw(max(16, (n_rows - total) // 100))
        sizes.append(chunk)
        total += int(chunk.sum())
    sizes_all = np.concatenate(sizes)
    ends = np.cumsum(sizes_all)
    last = int(np.searchsorted(ends, n_rows))
    sizes_all = sizes_all[:last + 1].copy()
    sizes_all[-1] -= int(ends[last] - n_rows)
    return sizes_all


def _transformed_rows(i: int, rows, offsets: np.ndarray, max_ind_range: int):
    """Sample ``i``: its rows of the test set, transformed (log dense, hashed indices) as (dense, sparse, label)."""
    return data.transform(np.asarray(rows[offsets[i]:offsets[i + 1]]), max_ind_range)


class CriteoTask(RaggedTask):
    """Aggregated samples of the test rows, each its own number of rows; loaded samples are kept transformed."""

    def __init__(self, rows: np.ndarray, sizes: np.ndarray, max_ind_range: int, performance_count: int) -> None:
        self.rows, self.sizes, self.max_ind_range = rows, sizes, max_ind_range
        self.offsets = np.r_[0, np.cumsum(sizes)]
        make = functools.partial(_transformed_rows, rows=rows, offsets=self.offsets, max_ind_range=max_ind_range)
        super().__init__(make, total_count=len(sizes), performance_count=performance_count)

    def collate(self, samples) -> list[np.ndarray]:
        # DLRM scores each row on its own, so a batch is every row of its samples end to end: no padding.
        return [np.concatenate([s[0] for s in samples]), np.concatenate([s[1] for s in samples])]

    def postprocess(self, outputs, indices: np.ndarray) -> list[np.ndarray]:
        scores = np.asarray(outputs[0], dtype=np.float32)
        scores = scores[:, 0] if scores.ndim == 2 else scores  # (N, 1) from DLRM; the null backend echoes (N, 13)
        out, start = [], 0
        for i in indices.tolist():
            label = self.sample(i)[2]
            end = start + len(label)
            out.append(np.stack([scores[start:end], label], axis=1))
            start = end
        if start != len(scores):
            raise ValueError(f"the model returned {len(scores)} scores for {start} rows")
        return out

    def accuracy(self, accuracy_log: Path) -> Accuracy:
        return accuracy.auc(accuracy_log)

    def accuracy_text(self, result: Accuracy) -> str:
        return accuracy.line(result)


def resolve(args) -> None:
    """Fill what the user left out: model file, mlperf.conf's model name, the hashing from export.json."""
    args.model_name = args.model_name or MODEL_NAME
    meta = exported.resolve(args, "dlrm", EXPORTED)
    if args.max_ind_range == -1:
        # The hashing the model was trained with; its tables have exactly that many rows at most.
        args.max_ind_range = meta.get("max_ind_range") or -1


def make_task(args) -> CriteoTask:
    """The task factory ``cli.execute`` calls in the process of each run."""
    raw = Path(args.raw_dir) if args.raw_dir else mini.ensure()
    processed = data.preprocess(raw, args.processed_dir, data.settings_from(args), workers=args.preprocess_workers)
    rows = data.read_rows(data.split_file(processed, "test"))
    if not args.mlperf_bin_loader:
        rows = np.array(rows)  # the original loader: the test rows in memory
    sizes = aggregation_sizes(len(rows), fix=args.samples_to_aggregate_fix, low=args.samples_to_aggregate_min,
                              high=args.samples_to_aggregate_max,
                              quantile_file=args.samples_to_aggregate_quantile_file, seed=args.numpy_rand_seed)
    sizes = sizes[: args.count or None]
    if args.samples_to_aggregate_trace_file:
        ends = np.cumsum(sizes)
        Path(args.samples_to_aggregate_trace_file).write_text(
            "".join(f"[{e - s}, {e})\n" for s, e in zip(sizes.tolist(), ends.tolist(), strict=True)))
    return CriteoTask(rows, sizes, args.max_ind_range, args.samples_per_query_offline)


def main(args) -> int:
    prog = "python -m recommendation.infer"
    low, high = args.samples_to_aggregate_min, args.samples_to_aggregate_max
    if (low is None) != (high is None) or (low is not None and low > high):
        cli.die(prog, "--samples-to-aggregate-min and --samples-to-aggregate-max go together, with min <= max")
    return cli.resolve_and_execute(args, resolve, make_task, prog, (DataError, ValueError))


if __name__ == "__main__":
    ns = cli.parse_args(get_args_parser(), sys.argv[1:], PROFILES, fallbacks={"backend": "onnxruntime"})
    sys.exit(main(ns))
