"""What training a detector on a COCO 2017 folder asks of its command line, for both detection benchmarks.

The data folder (the mini set when none is given), the ImageNet backbone a reference config starts from (found
under ``DATA_DIR/pretrained/`` where ``download_dataset.sh`` puts it), a smaller evaluation for smoke tests and
DataLoader workers; the benchmark adds its own flags after these.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from loadgen import cli
from loadgen.data.coco_cli import WEIGHTS_SUBDIR
from loadgen.training.driver import UsageError


def add_arguments(parser: argparse.ArgumentParser, mini_out: Path | str, weights_file: str,
                  dataset: str = "COCO 2017 root") -> None:
    """The flags; ``mini_out``, ``weights_file`` and ``dataset`` (what --data-dir is) word their help."""
    parser.add_argument("--data-dir", type=cli.existing_dir, default=None,
                        help=f"{dataset} (default: the mini set, built at {mini_out} if missing)")
    parser.add_argument("--backbone-weights", default=None, metavar="PATH",
                        help=f"torchvision's ImageNet {weights_file}, which a reference config starts from "
                             f"(default: DATA_DIR/{WEIGHTS_SUBDIR}/{weights_file} for a reference config; none "
                             "for the others)")
    parser.add_argument("--eval-images", type=cli.positive(int), default=None,
                        help="evaluate only the first N val images, for smoke tests (default: all)")
    parser.add_argument("--workers", type=cli.positive(int, allow_zero=True), default=0,
                        help="DataLoader worker processes; 0 loads in the training process (default: 0)")


def backbone_weights(args: argparse.Namespace, pretrained: bool, weights_file: str, backbone: str) -> str | None:
    """The weights file a run loads: --backbone-weights, else DATA_DIR's for a config that starts from ImageNet
    (``pretrained``); such a config without either is a usage error naming ``backbone``."""
    weights = args.backbone_weights
    if weights is None and pretrained and args.data_dir is not None:
        weights = str(Path(args.data_dir) / WEIGHTS_SUBDIR / weights_file)
    if pretrained and weights is None:
        raise UsageError(f"the reference config starts from the ImageNet {backbone}: give --backbone-weights PATH "
                         "(download_dataset.sh fetches it) or --data-dir")
    return weights
