"""A benchmark's embedded COCO-format mini set and its command, ``python -m <benchmark>.mini``.

Both detection benchmarks build their mini set with :func:`loadgen.data.coco.build_mini_coco` (real pixels and
object shapes, synthesized layout); they differ only in where it lives and how large its images are, around each
model's input size. :class:`MiniCoco` holds those and gives the module's ``build``, ``ensure``, ``get_args_parser``
and ``main``, so a benchmark's ``mini.py`` is its docstring and one line of settings.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from loadgen.data.atomic import build_command, ensure_built
from loadgen.data.coco import MINI_LABEL, MiniLayout, build_mini_coco


@dataclasses.dataclass(frozen=True)
class MiniCoco:
    prog: str  # "python -m <benchmark>.mini"
    description: str  # the --help text: the benchmark's mini.py docstring
    default_out: Path  # where training and inference look for it when given no data folder
    min_side: int  # shortest width or height of a synthesized image, in pixels
    max_side: int  # longest width or height
    train_images: int = 300
    val_images: int = 50

    def build(self, out: str | Path, train_images: int | None = None, val_images: int | None = None,
              min_side: int | None = None, max_side: int | None = None, seed: int = 0,
              progress: bool = True) -> Path:
        """Write the mini set at ``out`` (all of it or nothing); the same arguments give identical files."""
        layout = MiniLayout(min_side=min_side or self.min_side, max_side=max_side or self.max_side)
        return build_mini_coco(out, train_images or self.train_images, val_images or self.val_images, layout, seed,
                               progress=progress)

    def ensure(self, out: str | Path | None = None) -> Path:
        """The mini set at ``out`` (default: ``default_out``), built first if it is not there yet."""
        return ensure_built(out or self.default_out, self.build)

    def get_args_parser(self, add_help: bool = True) -> argparse.ArgumentParser:
        from loadgen.cli import ArgumentParser, positive

        parser = ArgumentParser(prog=self.prog, description=self.description, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--output", default=str(self.default_out),
                            help=f"dataset root to create (default: {self.default_out})")
        parser.add_argument("--train-images", type=positive(int), default=self.train_images,
                            help=f"images in train2017/, at least 2 (default: {self.train_images})")
        parser.add_argument("--val-images", type=positive(int), default=self.val_images,
                            help=f"images in val2017/, at least 2 (default: {self.val_images})")
        parser.add_argument("--min-side", type=positive(int), default=self.min_side,
                            help=f"shortest width or height of a synthesized image, pixels (default: {self.min_side})")
        parser.add_argument("--max-side", type=positive(int), default=self.max_side,
                            help=f"longest width or height of a synthesized image, pixels (default: {self.max_side})")
        parser.add_argument("--seed", type=int, default=0, help="layout seed (default: 0)")
        parser.add_argument("--force", action="store_true", help="rebuild even if the set exists (default: False)")
        return parser

    def main(self, args: argparse.Namespace) -> int:
        from loadgen.cli import die

        if args.train_images < 2 or args.val_images < 2:
            die(self.prog, "--train-images and --val-images must be at least 2 (each split starts with the 2 real "
                           "photos)")
        if args.min_side > args.max_side:
            die(self.prog, f"--min-side {args.min_side} is larger than --max-side {args.max_side}")

        def describe(out: Path) -> str:
            n_train, n_val = sum(1 for _ in out.glob("train2017/*.jpg")), sum(1 for _ in out.glob("val2017/*.jpg"))
            return f"{out}: {n_train} train and {n_val} val images in COCO 2017 format ({MINI_LABEL})"

        return build_command(self.prog, args.output, args.force,
                             lambda out: self.build(out, args.train_images, args.val_images, args.min_side,
                                                    args.max_side, args.seed), describe)
