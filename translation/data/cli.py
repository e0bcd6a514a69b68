"""``python -m translation.data``: ``download`` (a recipe's WMT archives, checksummed where a checksum is published,
laid out as WMT's files and processed as the reference does: GNMT's BPE for wmt16, the Transformer's sentencepiece
vocabulary for wmt17) and ``verify`` (the archives present against wmt_files.json, the files against the
manifest.json written when they were built; exit 1 naming every bad file), behind download_dataset.sh and
verify_dataset.sh. The md5 sums the GNMT reference's verify_dataset.sh lists for its processed files come from its
Perl tokenizer's exact bytes, which sacremoses does not reproduce, so they are not checked."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from loadgen.data.errors import DataError, one_line
from loadgen.data.manifest import report
from translation.data import wmt, wmt_files
from translation.data.layout import DATA_DIRS, DATASETS, FILES_MANIFEST

PROG = "python -m translation.data"


def get_args_parser(add_help: bool = True):
    from loadgen.cli import ArgumentParser, existing_dir, existing_file, positive
    from loadgen.data import download_url

    parser = ArgumentParser(prog=PROG, add_help=add_help, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    workers = os.cpu_count() or 1
    d = sub.add_parser(
        "download",
        help="fetch a recipe's WMT archives, lay out train.en/train.de and the test sets, and process them "
        "(default: -)",
    )
    d.add_argument(
        "--dataset",
        choices=DATASETS,
        default="wmt16",
        help="wmt16: GNMT's recipe (BPE); wmt17: the Transformer's (sentencepiece) (default: wmt16)",
    )
    d.add_argument(
        "--data-dir",
        default=None,
        help=f"folder to fill (default: {DATA_DIRS['wmt16']}, or {DATA_DIRS['wmt17']} for wmt17)",
    )
    d.add_argument(
        "--base-url",
        type=download_url,
        default=None,
        help="mirror holding the archives under the official URLs' paths, as statmt.org lays them out "
        "(<base>/wmt16/translation-task/dev.tgz) (default: the URLs in the manifest)",
    )
    d.add_argument(
        "--merges", type=positive(int), default=wmt.MERGES, help=f"BPE merge operations, wmt16 (default: {wmt.MERGES})"
    )
    d.add_argument(
        "--max-length",
        type=positive(int),
        default=wmt.MAX_LENGTH,
        help=f"longest training sentence kept, in tokens, wmt16 (default: {wmt.MAX_LENGTH})",
    )
    d.add_argument(
        "--vocab-size",
        type=positive(int),
        default=wmt.VOCAB_SIZE,
        help=f"sentencepiece vocabulary, wmt17 (default: {wmt.VOCAB_SIZE})",
    )
    d.add_argument(
        "--workers",
        type=positive(int),
        default=workers,
        help=f"processes that tokenize and segment text (default: {workers})",
    )
    d.add_argument(
        "--delete-archives",
        action="store_true",
        help="delete each archive once its files are taken out (default: False, kept for verify)",
    )
    v = sub.add_parser(
        "verify",
        help="check the archives present and every file against the manifest.json written "
        "when it was built; exit 1 naming every bad file (default: -)",
    )
    v.add_argument(
        "--data-dir",
        type=existing_dir,
        default=DATA_DIRS["wmt16"],
        help=f"folder to check (default: {DATA_DIRS['wmt16']})",
    )
    v.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="the recipe whose archives to check (default: the one its manifest.json names, else wmt16)",
    )
    v.add_argument(
        "--no-checksums",
        dest="checksums",
        action="store_false",
        help="check presence and sizes only (default: checksums on)",
    )
    for command in (d, v):
        command.add_argument(
            "--manifest",
            type=existing_file,
            default=str(FILES_MANIFEST),
            help=f"archive URLs, checksums and members (default: {FILES_MANIFEST.name} beside this package)",
        )
    return parser


def built_dataset(data_dir: Path) -> str:
    """The recipe a built folder's manifest.json names (``wmt16`` when there is none to read)."""
    try:
        return str(json.loads((data_dir / wmt.MANIFEST).read_text()).get("dataset", "wmt16"))
    except (OSError, ValueError, AttributeError):
        return "wmt16"


def download(args) -> int:
    data_dir = Path(args.data_dir or DATA_DIRS[args.dataset])
    recipe = wmt_files.Recipe.load(args.manifest, args.dataset)
    wmt_files.fetch(recipe, data_dir, args.base_url, args.delete_archives)
    if recipe.processing == "sentencepiece":
        wmt.prepare_sentencepiece(data_dir, vocab_size=args.vocab_size, workers=args.workers)
    else:
        wmt.prepare(data_dir, merges=args.merges, max_length=args.max_length, workers=args.workers)
    print(f"{data_dir}: WMT English-German ready ({args.dataset}); check it with ./verify_dataset.sh {data_dir}")
    return 0


def check(args) -> int:
    data_dir = Path(args.data_dir)
    recipe = wmt_files.Recipe.load(args.manifest, args.dataset or built_dataset(data_dir))
    return report(data_dir, wmt_files.check(recipe, data_dir, checksums=args.checksums))


def main(args) -> int:
    try:
        return download(args) if args.command == "download" else check(args)
    except (DataError, OSError) as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return 1
