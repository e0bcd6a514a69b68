"""Build the embedded mini set: real human English-German translations from installed packages (CLDR through Babel;
the German gettext catalogues of Django and JupyterLab; ``translation.mini_corpus``) in WMT's raw layout, then
processed exactly as the real data is (``translation.data.wmt.prepare``: Moses tokenization, length cleaning, a
shared BPE, here of 4,000 merges for 25,000 short pairs instead of 32,000 for 4.5 million sentences).

    python -m translation.mini --output build/translation/mini

The folder then holds what a prepared WMT16 folder holds for training and testing: ``train.{en,de}``, the test set
``newstest2014`` as SGM and plain text, ``train.tok.clean.bpe.4000.{en,de}``, ``newstest2014.tok.bpe.4000.en``,
``bpe.4000``, ``vocab.bpe.4000``, the corpus's ``sources.json`` (packages, versions, licences, pair counts) and a
``manifest.json`` of every file, written last. Its dev set (``newstest2013``, plain text) is kept as the corpus
writes it; the GNMT reference evaluates on the test set.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from loadgen.data import atomic_folder, build_command, ensure_built
from translation import mini_corpus
from translation.data import wmt

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "build" / "translation" / "mini"
MERGES = 4_000  # BPE merges for the mini set's shared vocabulary


def build(out: str | Path, seed: int = 0, merges: int = MERGES, progress: bool = False) -> Path:
    """The mini set at ``out``, all of it or nothing (a folder renamed into place once whole)."""
    with atomic_folder(out) as tmp:
        corpus = mini_corpus.build(tmp / "corpus", seed)
        for path in sorted(corpus.iterdir()):
            if path.name != "manifest.json":  # prepare writes the folder's one manifest
                path.rename(tmp / path.name)
        shutil.rmtree(corpus)
        wmt.prepare(tmp, merges=merges, progress=progress, dev_sets=(), workers=1)
    return Path(out)


def ensure(out: str | Path = DEFAULT_OUT) -> Path:
    """The mini set at ``out``, built first if it is not there yet."""
    return ensure_built(out, build)


def describe(out: Path) -> str:
    return mini_corpus.describe(out) + f"; BPE of {MERGES} merges"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from loadgen.cli import ArgumentParser

    parser = ArgumentParser(prog="python -m translation.mini", description=__doc__, add_help=add_help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(DEFAULT_OUT), help=f"folder to create (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pattern values and the split (default: 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the set exists (default: False)")
    return parser


def main(args: argparse.Namespace) -> int:
    return build_command("python -m translation.mini", args.output, args.force,
                         lambda out: build(out, args.seed, progress=True), describe)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
