"""``python -m loadgen.data``: download, extract and verify dataset files against a manifest."""

from __future__ import annotations

import os
import sys

from loadgen.data.archives import extract
from loadgen.data.download import download, download_url
from loadgen.data.errors import DataError, one_line
from loadgen.data.manifest import Manifest, report, verify


def get_args_parser(add_help: bool = True):
    from loadgen.cli import ArgumentParser, existing_dir, existing_file

    parser = ArgumentParser(prog="python -m loadgen.data", add_help=add_help,
                            description="Download, extract and verify dataset files against a manifest.")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check a folder against a manifest; exit 1 naming every bad file (default: -)")
    v.add_argument("root", type=existing_dir, help="dataset folder (default: required)")
    v.add_argument("--manifest", required=True, type=existing_file, help="manifest JSON (default: required)")
    v.add_argument("--no-checksums", dest="checksums", action="store_false",
                   help="check sizes and counts only (default: checksums on)")
    d = sub.add_parser("download", help="fetch one file, resuming and verifying (default: -)")
    d.add_argument("url", type=download_url, help="the file's official URL: http(s):// or file:// (default: required)")
    d.add_argument("dest", help="where to save it (default: required)")
    d.add_argument("--sha256", default=None, help="expected sha256 (default: None)")
    d.add_argument("--md5", default=None, help="expected md5 (default: None)")
    d.add_argument("--mirror", type=download_url, default=os.environ.get("MLPERF_MIRROR") or None,
                   help="base URL to fetch the same file name from (default: $MLPERF_MIRROR, else the official URL)")
    x = sub.add_parser("extract", help="extract a tar or zip safely into a new folder (default: -)")
    x.add_argument("archive", type=existing_file, help="tar or zip file (default: required)")
    x.add_argument("dest", help="folder to create (default: required)")
    return parser


def main(args) -> int:

    try:
        if args.command == "verify":
            problems = verify(args.root, Manifest.load(args.manifest), checksums=args.checksums)
            return report(args.root, problems)
        if args.command == "download":
            print(download(args.url, args.dest, sha256=args.sha256, md5=args.md5, mirror=args.mirror))
        else:
            print(extract(args.archive, args.dest))
    except (DataError, OSError) as exc:
        print(f"python -m loadgen.data: error: {one_line(exc)}", file=sys.stderr)
        return 1
    return 0
