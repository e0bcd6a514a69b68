"""``python -m <benchmark>.data`` for a COCO 2017 benchmark: ``download`` (the archives of its coco_files.json and
the ImageNet backbone it starts from) and ``verify`` (image counts, annotation files, every image decoded, checksums).

Both detection benchmarks' commands are a :class:`CocoFilesCommand`; they differ in their manifest (which
archives, which backbone weights) and their names.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from pathlib import Path

from loadgen.data.coco_files import (
    SPLITS,
    FilesManifest,
    check_tree,
    fetch,
    parse_counts,
    sha256_prefix,
    weights_problem,
)
from loadgen.data.errors import DataError
from loadgen.data.manifest import Manifest, report, verify

WEIGHTS_SUBDIR = "pretrained"  # <data-dir>/pretrained/: where the backbone weights go


@dataclasses.dataclass(frozen=True)
class CocoFilesCommand:
    prog: str  # "python -m <benchmark>.data"
    description: str
    manifest: Path  # the benchmark's coco_files.json
    backbone: str  # "ResNet-34": what the weights are, in messages

    @functools.cached_property
    def files(self) -> FilesManifest:
        """The default manifest, read and checked once (the parser's help and choices come from it)."""
        return FilesManifest.load(self.manifest)

    @property
    def parts(self) -> tuple[str, ...]:
        """What ``download --only`` may name: the manifest's archives in its order, then ``weights``."""
        return (*self.files.archives, "weights")

    @property
    def default_parts(self) -> tuple[str, ...]:
        """What ``download`` fetches unless --only says: every part but the optional archives."""
        return tuple(p for p in self.parts if p == "weights" or not self.files.archives[p].optional)

    @property
    def weights_file(self) -> str:
        return Path(self.files.weights_url).name

    def get_args_parser(self, add_help: bool = True):
        from loadgen.cli import ArgumentParser

        parser = ArgumentParser(prog=self.prog, add_help=add_help, description=self.description)
        self.add_commands(parser.add_subparsers(dest="command", required=True))
        return parser

    def add_commands(self, sub) -> None:
        """Add ``download`` and ``verify`` to ``sub`` (an ``add_subparsers`` of a parser whose ``dest`` is
        ``command``), for a benchmark whose data command has more subcommands than these two."""
        from loadgen.cli import csv_list, existing_dir, existing_file, positive
        from loadgen.data import download_url

        d = sub.add_parser("download", help="fetch the COCO 2017 archives (md5 checked) and extract them; fetch the "
                                            f"pretrained {self.backbone} (sha256 prefix checked) (default: -)")
        d.add_argument("--data-dir", required=True,
                       help="dataset root to fill: train2017/, val2017/, annotations/ (default: required)")
        d.add_argument("--only", type=csv_list(str, self.parts), default=list(self.default_parts),
                       help=f"comma list of what to fetch, from {','.join(self.parts)} "
                            f"(default: {','.join(self.default_parts)})")
        d.add_argument("--base-url", type=download_url, default=os.environ.get("COCO_URL") or None,
                       help="mirror holding the archive files under their own names "
                            "(default: $COCO_URL, else images.cocodataset.org)")
        d.add_argument("--archives-dir", default=None,
                       help="where the archives are downloaded (default: <data-dir>/archives)")
        d.add_argument("--delete-archives", action="store_true",
                       help="delete each archive once extracted, saving about 20 GB (default: False, kept)")
        d.add_argument("--weights-dir", default=None,
                       help=f"where the pretrained weights go (default: <data-dir>/{WEIGHTS_SUBDIR})")
        d.add_argument("--weights-url", type=download_url, default=None,
                       help="URL of the pretrained weights, a name ending in -<sha256 prefix>.pth "
                            f"(default: torchvision's {self.weights_file}, from the manifest)")
        d.add_argument("--manifest", type=existing_file, default=str(self.manifest),
                       help=f"archive names, URLs and md5 sums (default: {self.manifest.name} beside this package)")
        v = sub.add_parser("verify", help="check image counts, annotation files, every image and the checksums; "
                                          "exit 1 naming every bad file (default: -)")
        v.add_argument("--data-dir", required=True, type=existing_dir, help="dataset root (default: required)")
        v.add_argument("--splits", type=csv_list(str, SPLITS), default=list(SPLITS),
                       help=f"comma list of splits to check (default: {','.join(SPLITS)})")
        v.add_argument("--expected-counts", type=parse_counts, default=None,
                       help="images per split: coco2017 (118287 train, 5000 val), annotations (as many as each "
                            "instances_<split>.json lists) or TRAIN,VAL (default: coco2017, or annotations where the "
                            "folder has a manifest.json, as a built mini set does)")
        v.add_argument("--no-checksums", dest="checksums", action="store_false",
                       help="skip the md5 of archives, the sha256 of manifest files and weights "
                            "(default: checksums on)")
        v.add_argument("--workers", type=positive(int), default=os.cpu_count() or 1,
                       help=f"processes that decode images (default: {os.cpu_count() or 1})")
        v.add_argument("--weights-dir", default=None,
                       help="where the pretrained weights are, checked if present "
                            f"(default: <data-dir>/{WEIGHTS_SUBDIR})")
        v.add_argument("--manifest", type=existing_file, default=str(self.manifest),
                       help=f"archive names and md5 sums (default: {self.manifest.name} beside this package)")

    def download(self, args) -> int:
        files = FilesManifest.load(args.manifest)
        data_dir = Path(args.data_dir)
        weights_url = args.weights_url or files.weights_url
        parts = [p for p in self.parts if p in args.only]  # the manifest's order: annotations first, the small one
        fetch(parts, files.archives, data_dir, Path(args.archives_dir or data_dir / "archives"), weights_url,
              Path(args.weights_dir or data_dir / WEIGHTS_SUBDIR), mirror=args.base_url,
              delete_archives=args.delete_archives)
        print(f"{data_dir}: COCO 2017 ready ({', '.join(parts)}); check it with ./verify_dataset.sh {data_dir}")
        return 0

    def check(self, args) -> int:
        data_dir = Path(args.data_dir)
        built = (data_dir / "manifest.json").is_file()
        problems = []
        if built:  # a built set (the mini set) lists every file with its sha256
            problems += verify(data_dir, Manifest.load(data_dir / "manifest.json"), checksums=args.checksums)
        counts = args.expected_counts or ("annotations" if built else parse_counts("coco2017"))
        expected = None if counts == "annotations" else counts
        problems += check_tree(data_dir, args.splits, expected, workers=args.workers)
        if args.checksums:
            files = FilesManifest.load(args.manifest)
            present = {f"archives/{a.file}": {"md5": a.md5} for a in files.archives.values()
                       if (data_dir / "archives" / a.file).is_file()}
            problems += verify(data_dir, Manifest(files=present), extras=False)
            weights_dir = Path(args.weights_dir or data_dir / WEIGHTS_SUBDIR)
            name = Path(files.weights_url).name
            if sha256_prefix(name) and (weights_dir / name).is_file():
                problems += [p for p in [weights_problem(weights_dir / name)] if p]
            elif not built:
                print(f"note: {weights_dir / name} not found; closed-division training starts from it "
                      "(./download_dataset.sh DATA_DIR --only weights)")
        return report(data_dir, problems)

    def main(self, args) -> int:
        try:
            return self.download(args) if args.command == "download" else self.check(args)
        except (DataError, OSError) as exc:
            print(f"{self.prog}: error: {exc}", file=sys.stderr)
            return 1
