"""COCO-format instances for Mask R-CNN (COCO 2017) and RetinaNet (the MLPerf OpenImages subset, boxes only):
images with their boxes, category ids and masks, as torchvision's detection models take them.

As the MLPerf reference (maskrcnn-benchmark ``COCODataset``) reads COCO: crowd regions are left out of the targets,
boxes with no width or height too, and training keeps only the images with an object left (117,266 of COCO's
118,287); evaluation runs on every val image. Training flips each image horizontally with probability 0.5, the
reference's only augmentation (its resize to 800/1333 is the model's own transform, as it is torchvision's); the
flip is drawn from the ``(index, epoch, seed)`` key of ``SeededShards``, the same on any rank or worker.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from loadgen.data import annotation_file, image_folder, load_annotations, read_rgb
from loadgen.training.distributed import sample_rng
from object_detection.data import openimages

FLIP_P = 0.5


def coco_layout(root: Path, split: str) -> tuple[Path, Path]:
    """COCO 2017's annotation file and image folder of ``split`` (train, val)."""
    return annotation_file(root, split), image_folder(root, split)


def openimages_layout(root: Path, split: str) -> tuple[Path, Path]:
    """The MLPerf OpenImages subset's annotation file and image folder of ``split`` (train, validation)."""
    return openimages.annotation_file(root, split), openimages.image_folder(root, split)


class CocoInstances(torch.utils.data.Dataset):
    """One split of a COCO 2017 folder: ``(image float (3, H, W) in 0..1, target)`` per image, the target a dict
    of ``boxes`` (G, 4) float32 (x1, y1, x2, y2) in pixels, ``labels`` (G,) int64 (COCO category ids), ``masks``
    (G, H, W) uint8 (unless ``masks`` is False) and ``image_id``. ``train`` keeps only images with an object and
    flips; ``limit`` keeps the first images (smoke tests). ``layout`` finds the split's files (COCO 2017's, or
    :func:`openimages_layout`)."""

    def __init__(self, root: str | os.PathLike, split: str, train: bool, limit: int | None = None, *,
                 layout=coco_layout, masks: bool = True) -> None:
        self.root, self.split, self.train, self.masks = Path(root), split, train, masks
        annotations, self.folder = layout(self.root, split)
        self.coco = load_annotations(annotations)
        self.objects = {i: [a for a in self.coco.imgToAnns.get(i, [])
                            if not a.get("iscrowd", 0) and a["bbox"][2] > 0 and a["bbox"][3] > 0]
                        for i in self.coco.getImgIds()}
        ids = sorted(i for i, anns in self.objects.items() if anns or not train)
        self.ids = ids[:limit]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, key: int | tuple[int, int, int]) -> tuple[torch.Tensor, dict]:
        index, epoch, seed = key if isinstance(key, tuple) else (key, 0, 0)
        image_id = self.ids[index]
        info = self.coco.imgs[image_id]
        rgb = read_rgb(self.folder / info["file_name"])
        anns = self.objects[image_id]
        height, width = rgb.shape[:2]
        xywh = np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        boxes = np.clip(boxes, 0, [width, height, width, height])
        if self.masks and anns:
            masks = np.stack([self.coco.annToMask(a) for a in anns])
        else:
            masks = np.zeros((len(anns) if self.masks else 0, height, width), np.uint8)
        if self.train and sample_rng(seed, epoch, index).random() < FLIP_P:
            rgb, masks = rgb[:, ::-1], masks[:, :, ::-1]
            boxes = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
        image = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div_(255)
        target = {"boxes": torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32)),
                  "labels": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64), "image_id": image_id}
        if self.masks:
            target["masks"] = torch.from_numpy(np.ascontiguousarray(masks))
        return image, target


def collate(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Images of different sizes stay a list: the model's transform resizes and batches them."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
