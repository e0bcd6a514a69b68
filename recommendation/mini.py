"""Build the embedded mini dataset: SYNTHETIC click logs in the exact format of Criteo Terabyte's day files.

No real Criteo sample ships in any package, so these lines are generated, and labelled synthetic here, in
SOURCE.txt beside them and in every README that mentions them. They have what the real files have: 24 files
``day_0`` ... ``day_23`` of ``label<TAB>13 integers<TAB>26 8-digit hex categories``, blanks in every column,
negative integers, heavy-tailed counts, and categories from very frequent to seen once.

The labels come from a planted click model, so the data is learnable: a logistic model over a few log-scaled
integers, per-category effects on some features (Zipf-distributed, so rare categories cannot be learnt), and a
latent dot product between two categorical features, the kind of interaction DLRM's dot layer models. Its
scale is tuned so that the best possible AUC on the test half of day_23 is 0.87 (the true probabilities are
saved beside the files), and the mini DLRM passes the MLPerf target 0.8025 after about a quarter of an epoch
(measured with seed 1: test AUC 0.781 after an eighth, 0.803 after a quarter, 0.818 after half an epoch):
reachable, but only by learning the embeddings.

    python -m recommendation.mini --output build/recommendation/mini
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from loadgen.data import Manifest, atomic_folder, build_command, ensure_built

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "build" / "recommendation" / "mini"
DAYS = 24
# Cardinality of each categorical feature, from a handful of values to more than the mini set has rows: Criteo's
# range in miniature (its Terabyte features have 3 to 227 million distinct values).
CARDINALITY = [1000, 500, 200_000, 50_000, 300, 20, 10_000, 600, 3, 40_000,
               5_000, 100_000, 3_000, 25, 8_000, 60_000, 10, 4_000, 2_000, 4,
               150_000, 15, 14, 30_000, 100, 20_000]
# Share of blanks per column: Criteo's features range from always present to mostly missing.
DENSE_BLANK = [0.45, 0.0, 0.2, 0.2, 0.03, 0.22, 0.04, 0.0, 0.04, 0.45, 0.04, 0.76, 0.2]
SPARSE_BLANK = [0.0, 0.0, 0.03, 0.03, 0.0, 0.12, 0.0, 0.0, 0.0, 0.0, 0.0, 0.03, 0.0, 0.0, 0.0, 0.03, 0.0, 0.0,
                0.44, 0.44, 0.03, 0.0, 0.76, 0.03, 0.44, 0.03]
INFORMATIVE = [0, 1, 4, 5, 7, 13, 22, 24]  # categorical features with planted per-category effects
INTERACTING = (4, 7)  # features whose latent vectors meet in a dot product
ZIPF_A = 1.2


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from loadgen.cli import ArgumentParser, positive

    parser = ArgumentParser(prog="python -m recommendation.mini", description=__doc__, add_help=add_help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(DEFAULT_OUT), help=f"folder to create (default: {DEFAULT_OUT})")
    parser.add_argument("--rows-per-day", type=positive(int), default=6000,
                        help="lines in each day file (default: 6000)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the set exists (default: False)")
    return parser


class ClickModel:
    """The planted model: feature distributions and the true click probability of a line."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng([seed, 1])
        self.hashes = [rng.choice(2**32, size=c, replace=False).astype(np.uint32) for c in CARDINALITY]
        self.effects = {j: rng.normal(0.0, 0.6, CARDINALITY[j]) for j in INFORMATIVE}
        self.latent = {j: rng.normal(0.0, 0.6, (CARDINALITY[j], 4)) for j in INTERACTING}
        self.dense_mu = rng.uniform(0.0, 3.0, 13)
        self.dense_weight = np.zeros(13)
        self.dense_weight[[1, 4, 6, 9]] = [0.6, -0.45, 0.4, 0.3]
        self.bias = -1.2

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """n lines: dense (n,13) int64, category ids (n,26), blank masks (dense, sparse) and click probability."""
        counts = np.floor(np.expm1(rng.normal(self.dense_mu, 1.3, (n, 13)).clip(0, 14))).astype(np.int64)
        # Feature 2 of Criteo (our column 1) holds small negative values.
        counts[:, 1] = np.where(rng.random(n) < 0.08, -rng.integers(1, 4, n), counts[:, 1])
        # Zipf ranks: rank 0 is in about a fifth of the lines, most ranks in one line or none; the tail past the
        # cardinality wraps around instead of piling up on the last value.
        ids = np.stack([(rng.zipf(ZIPF_A, n) - 1) % c for c in CARDINALITY], axis=1)
        dense_blank = rng.random((n, 13)) < np.array(DENSE_BLANK)
        sparse_blank = rng.random((n, 26)) < np.array(SPARSE_BLANK)
        z = np.log1p(np.maximum(counts, 0)) - self.dense_mu
        logit = self.bias + np.where(dense_blank, 0.0, z) @ self.dense_weight
        for j, effect in self.effects.items():
            logit += np.where(sparse_blank[:, j], 0.0, effect[ids[:, j]])
        a, b = INTERACTING
        logit += np.einsum("nk,nk->n", self.latent[a][ids[:, a]], self.latent[b][ids[:, b]])
        return counts, ids, (dense_blank, sparse_blank), 1.0 / (1.0 + np.exp(-logit))

    def lines(self, counts, ids, blanks, labels) -> str:
        dense_blank, sparse_blank = blanks
        cols = [labels.astype(str)]
        cols += [np.where(dense_blank[:, j], "", counts[:, j].astype(str)) for j in range(13)]
        for j in range(26):
            hexes = np.char.mod("%08x", self.hashes[j][ids[:, j]].astype(np.int64))
            cols.append(np.where(sparse_blank[:, j], "", hexes))
        out = cols[0]
        for col in cols[1:]:
            out = np.char.add(np.char.add(out, "\t"), col)
        return "\n".join(out.tolist()) + "\n"


def build(out: Path, rows_per_day: int = 6000, seed: int = 0) -> Path:
    model = ClickModel(seed)
    with atomic_folder(out) as tmp:
        for day in range(DAYS):
            rng = np.random.default_rng([seed, 2, day])
            counts, ids, blanks, p = model.sample(rows_per_day, rng)
            labels = (rng.random(rows_per_day) < p).astype(np.int64)
            (tmp / f"day_{day}").write_text(model.lines(counts, ids, blanks, labels))
            if day == DAYS - 1:
                np.save(tmp / "day_23_click_probability.npy", p.astype(np.float32))
        (tmp / "SOURCE.txt").write_text(
            "SYNTHETIC data, not Criteo's: generated by recommendation/mini.py from a planted click model "
            f"(seed {seed}, {rows_per_day} lines a day), in the format of the Criteo Terabyte day files.\n"
            "day_23_click_probability.npy holds the true click probability of each line of day_23.\n")
        Manifest.of_folder(tmp, [f"day_{d}" for d in range(DAYS)] + ["day_23_click_probability.npy"]).dump(
            tmp / "manifest.json")
    return out


def ensure(out: str | Path = DEFAULT_OUT) -> Path:
    """The mini set at ``out``, built first if it is not there yet."""
    return ensure_built(out, build)


def main(args) -> int:
    return build_command("python -m recommendation.mini", args.output, args.force,
                         lambda out: build(out, args.rows_per_day, args.seed),
                         lambda out: f"{out}: {DAYS} SYNTHETIC day files of {args.rows_per_day} lines in the "
                                     "Criteo Terabyte format")


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
