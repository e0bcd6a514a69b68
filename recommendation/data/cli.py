"""``python -m recommendation.data``: preprocess, download and verify (see the package docstring)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from loadgen.data import DataError, Manifest, download, report, verify
from recommendation.data.format import CHUNK_BYTES, DATASETS, DAY_FILES_MANIFEST, Settings
from recommendation.data.preprocess import preprocess


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
        return report(data_dir, problems)
    except (DataError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
