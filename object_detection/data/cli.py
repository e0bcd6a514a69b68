"""``python -m object_detection.data``: ``download`` (COCO 2017 archives and the pretrained ResNet-50) and
``verify`` (image counts, annotation files, every image decoded, checksums), the shared ``loadgen.data.coco_cli``
command with this folder's coco_files.json; ``download-openimages`` and ``verify-openimages``, the MLPerf OpenImages
subset RetinaNet is benchmarked on (object_detection.data.openimages_files, with openimages_files.json), the first
also fetching the ImageNet ResNeXt50 RetinaNet's reference training starts from (sha256 prefix checked)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from loadgen.data.coco_cli import WEIGHTS_SUBDIR, CocoFilesCommand
from loadgen.data.coco_files import fetch_weights
from loadgen.data.errors import DataError, one_line
from loadgen.data.manifest import report
from object_detection.data import openimages_files
from object_detection.data.layout import FILES_MANIFEST, OPENIMAGES_MANIFEST
from object_detection.data.openimages import VALIDATION_COUNT

PROG = "python -m object_detection.data"
COMMAND = CocoFilesCommand(PROG, __doc__, FILES_MANIFEST, "ResNet-50")
download, check = COMMAND.download, COMMAND.check


def get_args_parser(add_help: bool = True):
    from loadgen.cli import ArgumentParser, existing_dir, existing_file, positive
    from loadgen.data import download_url

    parser = ArgumentParser(prog=PROG, add_help=add_help, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    COMMAND.add_commands(sub)
    files = openimages_files.OpenImagesFiles.load(OPENIMAGES_MANIFEST)
    d = sub.add_parser("download-openimages", help="fetch the OpenImages CSVs, the validation images with a box of "
                                                   "the 264 MLPerf classes, and write openimages-mlperf.json "
                                                   "(default: -)")
    d.add_argument("--data-dir", required=True,
                   help="dataset root to fill: annotations/, validation/data/ (default: required)")
    d.add_argument("--base-url", type=download_url, default=None,
                   help="mirror holding the three CSV files under their own names (default: their "
                        "storage.googleapis.com URLs in the manifest)")
    d.add_argument("--images-url", type=download_url, default=None,
                   help=f"base URL holding {files.split}/<ImageID>.jpg, as the public bucket does "
                        f"(default: {files.images_url})")
    d.add_argument("--max-images", type=positive(int), default=None,
                   help="fetch only the first N images in ImageID order, to try it out: the result is then not "
                        "the benchmark's set (default: all of them)")
    d.add_argument("--workers", type=positive(int), default=openimages_files.WORKERS,
                   help=f"images fetched at once (default: {openimages_files.WORKERS})")
    d.add_argument("--weights-url", type=download_url, default=None,
                   help="URL of the ImageNet ResNeXt50-32x4d weights RetinaNet's reference config starts from, a "
                        f"name ending in -<sha256 prefix>.pth (default: torchvision's, {Path(files.weights_url).name})")
    d.add_argument("--weights-dir", default=None,
                   help=f"where the weights go (default: <data-dir>/{WEIGHTS_SUBDIR})")
    d.add_argument("--skip-weights", action="store_true",
                   help="do not fetch the weights (inference needs none) (default: False)")
    d.add_argument("--manifest", type=existing_file, default=str(OPENIMAGES_MANIFEST),
                   help=f"CSV URLs and the image bucket (default: {OPENIMAGES_MANIFEST.name} beside this package)")
    v = sub.add_parser("verify-openimages", help="check openimages-mlperf.json, the images it lists and their "
                                                 "count, every image decoded; exit 1 naming every bad file "
                                                 "(default: -)")
    v.add_argument("--data-dir", required=True, type=existing_dir, help="dataset root (default: required)")
    v.add_argument("--expected-count", type=positive(int), default=VALIDATION_COUNT,
                   help=f"images the json lists and validation/data holds; another number for a --max-images "
                        f"download (default: {VALIDATION_COUNT}, the MLPerf subset)")
    v.add_argument("--workers", type=positive(int), default=os.cpu_count() or 1,
                   help=f"processes that decode images (default: {os.cpu_count() or 1})")
    return parser


def main(args) -> int:
    if args.command not in ("download-openimages", "verify-openimages"):
        return COMMAND.main(args)
    try:
        if args.command == "verify-openimages":
            return report(args.data_dir, openimages_files.check(args.data_dir, args.expected_count, args.workers))
        files = openimages_files.OpenImagesFiles.load(args.manifest)
        count = openimages_files.download_subset(args.data_dir, files, args.base_url, args.images_url,
                                                 args.max_images, args.workers)
        if not args.skip_weights:
            print(fetch_weights(args.weights_url or files.weights_url,
                                Path(args.weights_dir or Path(args.data_dir) / WEIGHTS_SUBDIR)))
    except (DataError, OSError) as exc:
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    other = "" if count == VALIDATION_COUNT else f" --expected-count {count}"
    print(f"{args.data_dir}: OpenImages MLPerf subset ready; check it with ./verify_dataset.sh openimages "
          f"{args.data_dir}{other}")
    return 0
