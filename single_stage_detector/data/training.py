"""COCO for SSD training and its evaluation: the datasets, the MLPerf reference's augmentation, the box encoding
and the collates.

Training (the reference's ``SSDTransformer``, ``val=False``): SSD's random crop, a horizontal flip (p 0.5), colour
jitter (brightness 0.125, contrast 0.5, saturation 0.5, hue 0.05, in a random order), a resize to 300x300, the
normalisation, and each default box matched to its ground truth (``boxes.match``) and encoded
(``boxes.encode``) in the loader, so the training process only runs the network; then the model's normalisation
(``presets.eval_preset``: ImageNet's for SSD-ResNet34, [-1, 1] for SSD-MobileNet). Only images with at least one
annotation are kept, as in the reference (117,266 of COCO's 118,287 train images, 4,952 of its 5,000 val images).

The crop (SSD, Liu et al. 2016, section 2.2, as the reference draws it): pick one of seven modes at random: the
whole image, a crop whose every object overlaps it by an IoU above 0.1, 0.3, 0.5, 0.7 or 0.9, or a crop with no
overlap rule. A crop is 0.3..1 of the width and of the height, with an aspect ratio in 0.5..2; the objects whose
centre falls inside it are kept, clipped to it. A mode gets ``max_samples`` tries (the rule's ``max_samples``: 1 in
the reference, 50 allowed) before another mode is drawn.

Evaluation (``val=True``): the model's evaluation preset (``single_stage_detector.data.presets``), the one the
inference QSL uses, so the two never disagree.

The randomness of a training sample is drawn from ``(seed, epoch, index)`` (``SeededShards``' key), so it is the
same whichever process or DataLoader worker loads it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from loadgen.data import annotated_image_ids, annotation_file, image_folder, load_annotations, read_rgb
from loadgen.data.pixels import SquarePreset
from loadgen.training.distributed import sample_rng
from single_stage_detector import boxes as box_ops

IMAGE_SIZE = 300
# The crop modes: None keeps the whole image; a number is the lowest IoU every kept object must have with the crop
# (-inf: no rule). The reference draws each of the seven with the same chance.
CROP_MODES = (None, 0.1, 0.3, 0.5, 0.7, 0.9, -math.inf)
MAX_SAMPLES = (1, 50)  # MLPerf closed rule: max_samples in {1, 50}
CROP_SIDE = (0.3, 1.0)  # a crop's width and height, as fractions of the image's
CROP_ASPECT = (0.5, 2.0)  # its width / height (in fractions of the image)
JITTER = {"brightness": 0.125, "contrast": 0.5, "saturation": 0.5, "hue": 0.05}
FLIP_P = 0.5


@dataclasses.dataclass
class Sample:
    """One image with its objects: pixels (H, W, 3) uint8, boxes (G, 4) float32 (left, top, right, bottom) in
    0..1 of the image, labels (G,) int64 (the model's class indices), its COCO id and (height, width) in pixels."""

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    image_id: int
    size: tuple[int, int]


class CocoImages:
    """One split of a COCO 2017 folder: its image ids and, per image, the pixels and the boxes.

    ``label_of`` maps COCO category ids (an int64 array) to the model's labels (SSD-ResNet34: 1..80;
    SSD-MobileNet-v1: the ids themselves). Boxes with no width or height (COCO has a few) are left out; they
    have no centre to encode. Images without annotations are dropped, as the reference does for both splits.
    """

    def __init__(self, root: str | os.PathLike, split: str,
                 label_of: Callable[[np.ndarray], np.ndarray], limit: int | None = None) -> None:
        self.root, self.split = Path(root), split
        self.annotations = annotation_file(root, split)
        self.coco = load_annotations(self.annotations)
        self.folder = image_folder(root, split)
        self.ids = annotated_image_ids(self.coco)[:limit]
        self.targets = {}
        for image_id in self.ids:
            anns = self.coco.imgToAnns[image_id]
            info = self.coco.imgs[image_id]
            w, h = float(info["width"]), float(info["height"])
            xywh = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
            ltrb = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1) / [w, h, w, h]
            ltrb = np.clip(ltrb, 0.0, 1.0)
            keep = (ltrb[:, 2] > ltrb[:, 0]) & (ltrb[:, 3] > ltrb[:, 1])
            categories = np.array([a["category_id"] for a in anns], dtype=np.int64)
            self.targets[image_id] = (ltrb[keep].astype(np.float32), np.asarray(label_of(categories[keep]),
                                                                                 dtype=np.int64).reshape(-1))

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> Sample:
        image_id = self.ids[index]
        path = self.folder / self.coco.imgs[image_id]["file_name"]
        rgb = read_rgb(path)
        boxes, labels = self.targets[image_id]
        return Sample(rgb, boxes.copy(), labels.copy(), image_id, rgb.shape[:2])


# --- the augmentation ---------------------------------------------------------------------------------------------

def box_iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """IoU of each of ``boxes`` (G, 4) with the one ``box`` (4,), all (left, top, right, bottom)."""
    lt = np.maximum(boxes[:, :2], box[:2])
    rb = np.minimum(boxes[:, 2:], box[2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / (area + np.prod(box[2:] - box[:2]) - inter)


def random_crop(sample: Sample, rng: np.random.Generator, max_samples: int = 1) -> Sample:
    """SSD's random crop (see the module docstring). A sample without boxes is returned as it is."""
    if len(sample.boxes) == 0:
        return sample
    while True:
        mode = CROP_MODES[rng.integers(len(CROP_MODES))]
        if mode is None:
            return sample
        for _ in range(max_samples):
            w, h = rng.uniform(*CROP_SIDE, size=2)
            if not CROP_ASPECT[0] <= w / h <= CROP_ASPECT[1]:
                continue
            left, top = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
            crop = np.array([left, top, left + w, top + h])
            if not np.all(box_iou(sample.boxes, crop) > mode):
                continue
            centres = (sample.boxes[:, :2] + sample.boxes[:, 2:]) / 2
            inside = np.all((centres > crop[:2]) & (centres < crop[2:]), axis=1)
            if not inside.any():
                continue
            return _cut(sample, crop, inside)


def _cut(sample: Sample, crop: np.ndarray, keep: np.ndarray) -> Sample:
    """``sample`` cut to ``crop`` (fractions of the image): whole pixels, and the kept boxes clipped to the pixels
    actually cut and expressed as fractions of them."""
    height, width = sample.image.shape[:2]
    x0, x1 = int(crop[0] * width), max(int(crop[0] * width) + 1, int(round(crop[2] * width)))
    y0, y1 = int(crop[1] * height), max(int(crop[1] * height) + 1, int(round(crop[3] * height)))
    scale = np.array([width, height, width, height], dtype=np.float64)
    origin = np.array([x0, y0, x0, y0], dtype=np.float64)
    extent = np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0], dtype=np.float64)
    boxes = (sample.boxes[keep] * scale - origin) / extent
    boxes = np.clip(boxes, 0.0, 1.0).astype(np.float32)
    return Sample(sample.image[y0:y1, x0:x1], boxes, sample.labels[keep], sample.image_id, sample.size)


def hflip(sample: Sample) -> Sample:
    """The image mirrored left to right, and its boxes with it."""
    boxes = sample.boxes.copy()
    boxes[:, 0], boxes[:, 2] = 1.0 - sample.boxes[:, 2], 1.0 - sample.boxes[:, 0]
    return Sample(sample.image[:, ::-1], boxes, sample.labels, sample.image_id, sample.size)


def color_jitter(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast, saturation and hue changed by random factors, in a random order."""
    import torchvision.transforms.functional as tf

    ops = [
        lambda im: tf.adjust_brightness(im, rng.uniform(1 - JITTER["brightness"], 1 + JITTER["brightness"])),
        lambda im: tf.adjust_contrast(im, rng.uniform(1 - JITTER["contrast"], 1 + JITTER["contrast"])),
        lambda im: tf.adjust_saturation(im, rng.uniform(1 - JITTER["saturation"], 1 + JITTER["saturation"])),
        lambda im: tf.adjust_hue(im, rng.uniform(-JITTER["hue"], JITTER["hue"])),
    ]
    for i in rng.permutation(len(ops)):
        image = ops[i](image)
    return image


def resize(image: np.ndarray | Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    """Bilinear resize to size x size (boxes in fractions of the image need no change)."""
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.ascontiguousarray(image))
    return img.resize((size, size), Image.BILINEAR)




@dataclasses.dataclass(frozen=True)
class TrainAugment:
    """The reference's training augmentation: crop, flip, resize, colour jitter (on uint8 pixels)."""

    size: int = IMAGE_SIZE
    max_samples: int = 1

    def __post_init__(self) -> None:
        if self.max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {self.max_samples}")

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        sample = random_crop(sample, rng, self.max_samples)
        if rng.random() < FLIP_P:
            sample = hflip(sample)
        image = np.asarray(color_jitter(resize(sample.image, self.size), rng))
        return Sample(image, sample.boxes, sample.labels, sample.image_id, sample.size)


class TrainSet(torch.utils.data.Dataset):
    """Training samples: ``(image uint8 (S, S, 3), box targets (B, 4) float32, labels (B,) int64)`` per default
    box, the targets already encoded against ``default_boxes`` (B, 4) xywh. A key is ``(index, epoch, seed)``
    (``SeededShards``) or a plain index (augmentation drawn from seed 0, epoch 0)."""

    def __init__(self, images: CocoImages, default_boxes: np.ndarray, augment: TrainAugment) -> None:
        self.images, self.augment = images, augment
        self.default_boxes = torch.as_tensor(default_boxes, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.images)

    def augmented(self, key: int | tuple[int, int, int]) -> Sample:
        index, epoch, seed = key if isinstance(key, tuple) else (key, 0, 0)
        return self.augment(self.images.load(index), sample_rng(seed, epoch, index))

    def __getitem__(self, key: int | tuple[int, int, int]) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        sample = self.augmented(key)
        boxes, labels = box_ops.match(torch.from_numpy(sample.boxes), torch.from_numpy(sample.labels),
                                      self.default_boxes)
        return sample.image, box_ops.encode(boxes, self.default_boxes), labels


class EvalSet(torch.utils.data.Dataset):
    """Evaluation samples: ``(image uint8 (S, S, 3), COCO image id, (height, width))``, the preset's geometry."""

    def __init__(self, images: CocoImages, preset: SquarePreset) -> None:
        self.images, self.preset = images, preset

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int, tuple[int, int]]:
        sample = self.images.load(index)
        return self.preset.geometry(Image.fromarray(sample.image)), sample.image_id, sample.size


@dataclasses.dataclass(frozen=True)
class TrainCollate:
    """-> images (N, 3, S, S) float32 in the preset's normalisation, box targets (N, B, 4), labels (N, B)."""

    preset: SquarePreset

    def __call__(self, batch: Sequence[tuple[np.ndarray, torch.Tensor, torch.Tensor]]):
        images, locs, labels = zip(*batch, strict=True)
        return torch.from_numpy(self.preset.normalize(np.stack(images))), torch.stack(locs), torch.stack(labels)


@dataclasses.dataclass(frozen=True)
class EvalCollate:
    """-> images (N, 3, S, S) float32 in the preset's normalisation, image ids [N], sizes [(height, width)] * N."""

    preset: SquarePreset

    def __call__(self, batch: Sequence[tuple[np.ndarray, int, tuple[int, int]]]):
        images, ids, sizes = zip(*batch, strict=True)
        return torch.from_numpy(self.preset.normalize(np.stack(images))), list(ids), list(sizes)
