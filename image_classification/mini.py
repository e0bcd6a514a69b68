"""Build the embedded mini dataset: ImageNet's on-disk format, filled with real images that packages ship.

scikit-learn's ``digits`` (1,797 handwritten digits, 8x8, from the UCI optical recognition set) become 64x64 RGB
JPEGs in ten wnid-named class folders. The wnids ``n90000000``..``n90000009`` are not ImageNet synsets: they
only give the digits ImageNet's folder names. Everything downstream reads this set exactly as it reads ImageNet.

    python -m image_classification.mini --output build/image_classification/mini
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from loadgen.data import Manifest, atomic_folder, build_command, ensure_built

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "build" / "image_classification" / "mini"
WNIDS = [f"n9000000{d}" for d in range(10)]
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


# The smallest class of scikit-learn's digits has 174 images; at least one per class stays in train/.
MAX_VAL_PER_CLASS = 173


def _val_per_class(text: str) -> int:
    from loadgen.cli import positive

    value = positive(int)(text)
    if value > MAX_VAL_PER_CLASS:
        raise argparse.ArgumentTypeError(f"{text} must be at most {MAX_VAL_PER_CLASS} (the smallest class has 174 "
                                         "images)")
    return value


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from loadgen.cli import ArgumentParser, positive

    parser = ArgumentParser(prog="python -m image_classification.mini", description=__doc__, add_help=add_help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(DEFAULT_OUT),
                        help=f"dataset root to create (default: {DEFAULT_OUT})")
    parser.add_argument("--size", type=positive(int), default=64,
                        help="side of the saved JPEGs in pixels (default: 64)")
    parser.add_argument("--val-per-class", type=_val_per_class, default=30,
                        help=f"validation images per class, 1..{MAX_VAL_PER_CLASS} (default: 30)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the set exists (default: False)")
    return parser


def build(out: Path, size: int = 64, val_per_class: int = 30) -> Path:
    """Write the set into a temporary folder, then rename it into place: never half a dataset under ``out``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    with atomic_folder(out) as tmp:
        rows = []
        for label in range(10):
            idx = np.flatnonzero(digits.target == label)
            rows += [(i, label, "val" if k >= len(idx) - val_per_class else "train") for k, i in enumerate(idx)]
        val_lines = []
        for n, (i, label, split) in enumerate(rows):
            pixels = (digits.images[i] * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
            img = Image.fromarray(pixels, "L").resize((size, size), Image.Resampling.BICUBIC).convert("RGB")
            if split == "train":
                path = tmp / "train" / WNIDS[label] / f"{WNIDS[label]}_{n:05d}.JPEG"
            else:
                name = f"ILSVRC2012_val_{len(val_lines) + 1:08d}.JPEG"
                path = tmp / "val" / name
                val_lines.append(f"{name} {label}\n")
            path.parent.mkdir(parents=True, exist_ok=True)
            img.save(path, "JPEG", quality=95)
        (tmp / "val_map.txt").write_text("".join(val_lines))
        (tmp / "synset_words.txt").write_text("".join(f"{w} digit {n}\n" for w, n in zip(WNIDS, NAMES, strict=True)))
        (tmp / "SOURCE.txt").write_text("scikit-learn load_digits(): UCI ML hand-written digits, 8x8, upscaled "
                                        f"to {size}x{size} RGB JPEG by image_classification/mini.py\n")
        Manifest.of_folder(tmp, ("train/*/*.JPEG", "val/*.JPEG", "val_map.txt", "synset_words.txt")).dump(
            tmp / "manifest.json")
    return out


def ensure(out: str | Path = DEFAULT_OUT) -> Path:
    """The mini set at ``out``, built first if it is not there yet."""
    return ensure_built(out, build)


def main(args) -> int:
    def describe(out: Path) -> str:
        n_train, n_val = sum(1 for _ in out.glob("train/*/*.JPEG")), sum(1 for _ in out.glob("val/*.JPEG"))
        return f"{out}: {n_train} train and {n_val} val images in 10 classes (scikit-learn digits)"

    return build_command("python -m image_classification.mini", args.output, args.force,
                         lambda out: build(out, args.size, args.val_per_class), describe)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
