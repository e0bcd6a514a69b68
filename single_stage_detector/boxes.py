"""Default boxes, the box coder, and the one post-processing every backend's output goes through.

Layouts used throughout:

- default boxes: ``(B, 4)`` float32, ``(cx, cy, w, h)`` normalised to the image (0..1);
- raw head outputs, as the network (and so every exported graph) returns them: locs ``(N, 4, B)`` and scores
  ``(N, C, B)`` with class 0 the background; box ``b`` of a feature map is ordered (box shape, row, column) so that
  a head's ``(N, A*4, H, W)`` output viewed as ``(N, 4, A*H*W)`` lines up with the default boxes of that map;
- detections: per image ``(K, 6)`` float32 rows ``[ymin, xmin, ymax, xmax, score, label]``, boxes in 0..1, ``label``
  the network's class index (1..C-1).

SSD-ResNet34's boxes follow the MLPerf training reference (``dboxes300_coco``: steps 8/16/32/64/100/300, scales
21/45/99/153/207/261/315 pixels at 300, aspect ratios 2 and 3) and, at other sizes such as 1200, the MLPerf
inference reference (``dboxes_R34_coco``: steps and scales recomputed from the image and feature-map sizes).
SSD-MobileNet-v1's follow TensorFlow's ``ssd_mobilenet_v1_coco`` anchor generator (scales 0.2..0.95, aspect ratios
1, 2, 1/2, 3, 1/3, three boxes on the lowest map). Both use the variances 0.1 (centre) and 0.2 (size).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torchvision

VARIANCE_XY = 0.1  # offsets of the centre are in units of 0.1 x the default box's size
VARIANCE_WH = 0.2  # log size ratios are in units of 0.2

# Post-processing, as in the reference's evaluation (decode_batch(..., 0.50, 200) with a 0.05 score cut).
SCORE_THRESHOLD = 0.05
IOU_THRESHOLD = 0.5
MAX_DETECTIONS = 200
MAX_PER_CLASS = 200  # the reference keeps each class's 200 best candidates before its NMS

# SSD-ResNet34 (MLPerf training reference, dboxes300_coco).
R34_SCALES = (21, 45, 99, 153, 207, 261, 315)  # pixels at 300x300; one more than feature maps (for sqrt(s_k s_k+1))
R34_ASPECT_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
R34_STEPS_300 = (8, 16, 32, 64, 100, 300)  # the reference's steps at 300, for feature maps 38/19/10/5/3/1
R34_FEATURES_300 = (38, 19, 10, 5, 3, 1)

# SSD-MobileNet-v1 (TensorFlow's ssd_mobilenet_v1_coco.config).
MOBILENET_MIN_SCALE = 0.2
MOBILENET_MAX_SCALE = 0.95
MOBILENET_ASPECT_RATIOS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)


def r34_boxes_per_cell() -> list[int]:
    """Default boxes per feature-map cell: two squares plus two per extra aspect ratio (4, 6, 6, 6, 4, 4)."""
    return [2 + 2 * len(ratios) for ratios in R34_ASPECT_RATIOS]


def mobilenet_boxes_per_cell(levels: int = 6) -> list[int]:
    """3 on the lowest map (TF's ``reduce_boxes_in_lowest_layer``), then the 5 aspect ratios plus one in-between
    square (3, 6, 6, 6, 6, 6)."""
    return [3] + [len(MOBILENET_ASPECT_RATIOS) + 1] * (levels - 1)


def grid_boxes(feature_sizes: Sequence[int], shapes: Sequence[Sequence[tuple[float, float]]],
               cells_per_unit: Sequence[float] | None = None, clip: bool = False) -> np.ndarray:
    """Default boxes ``(B, 4)`` xywh for square feature maps: every (w, h) of ``shapes[level]`` at every cell.

    The centre of cell (row i, column j) is ((j + 0.5) / k, (i + 0.5) / k) with k = ``cells_per_unit[level]``
    (the feature size unless given: the training reference spaces its 38x38 centres by 300/8 = 37.5).
    ``clip`` clamps every coordinate (centre and size) to 0..1 as the ResNet34 reference does.
    """
    if len(shapes) != len(feature_sizes):
        raise ValueError(f"{len(feature_sizes)} feature maps but box shapes for {len(shapes)}")
    out = []
    for level, size in enumerate(feature_sizes):
        k = size if cells_per_unit is None else cells_per_unit[level]
        centres = (np.arange(size, dtype=np.float64) + 0.5) / k
        cy, cx = np.meshgrid(centres, centres, indexing="ij")  # row-major: rows (y) outer, columns (x) inner
        for w, h in shapes[level]:
            out.append(np.stack([cx.ravel(), cy.ravel(), np.full(cx.size, w), np.full(cx.size, h)], axis=1))
    boxes = np.concatenate(out).astype(np.float32)
    return np.clip(boxes, 0.0, 1.0) if clip else boxes


def r34_default_boxes(image_size: int, feature_sizes: Sequence[int]) -> np.ndarray:
    """SSD-ResNet34's default boxes for ``image_size`` (square) and the network's ``feature_sizes`` at that size.

    At 300 with the reference's maps this is the training reference's set (8732 boxes). At any other size the
    steps become ``size // feature`` and the centres ``size // step`` apart, with the pixel scales multiplied by
    ``size / 300``, as the inference reference does for its 1200x1200 model.
    """
    if len(feature_sizes) != len(R34_ASPECT_RATIOS):
        raise ValueError(f"SSD-ResNet34 has {len(R34_ASPECT_RATIOS)} feature maps, got sizes {list(feature_sizes)}")
    if image_size == 300 and tuple(feature_sizes) == R34_FEATURES_300:
        cells = [image_size / step for step in R34_STEPS_300]
        scales = [s / image_size for s in R34_SCALES]
    else:
        steps = [int(image_size / f) for f in feature_sizes]
        cells = [image_size // step for step in steps]
        scales = [int(s * image_size / 300) / image_size for s in R34_SCALES]
    shapes = []
    for level, ratios in enumerate(R34_ASPECT_RATIOS):
        small, large = scales[level], scales[level + 1]
        level_shapes = [(small, small), (math.sqrt(small * large),) * 2]
        for ratio in ratios:
            w, h = small * math.sqrt(ratio), small / math.sqrt(ratio)
            level_shapes += [(w, h), (h, w)]
        shapes.append(level_shapes)
    return grid_boxes(feature_sizes, shapes, cells, clip=True)


def mobilenet_default_boxes(feature_sizes: Sequence[int]) -> np.ndarray:
    """SSD-MobileNet-v1's anchors (TF's multiple grid anchor generator) for its feature maps (1917 at 300)."""
    levels = len(feature_sizes)
    scales = [MOBILENET_MIN_SCALE + (MOBILENET_MAX_SCALE - MOBILENET_MIN_SCALE) * i / (levels - 1)
              for i in range(levels)] + [1.0]
    shapes = []
    for level in range(levels):
        scale = scales[level]
        if level == 0:
            pairs = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
        else:
            pairs = [(scale, r) for r in MOBILENET_ASPECT_RATIOS] + [(math.sqrt(scale * scales[level + 1]), 1.0)]
        shapes.append([(s * math.sqrt(r), s / math.sqrt(r)) for s, r in pairs])
    return grid_boxes(feature_sizes, shapes)


def xywh_to_ltrb(boxes: torch.Tensor) -> torch.Tensor:
    xy, wh = boxes[..., :2], boxes[..., 2:]
    return torch.cat([xy - wh / 2, xy + wh / 2], dim=-1)


def ltrb_to_xywh(boxes: torch.Tensor) -> torch.Tensor:
    lt, rb = boxes[..., :2], boxes[..., 2:]
    return torch.cat([(lt + rb) / 2, rb - lt], dim=-1)


def encode(boxes_ltrb: torch.Tensor, defaults_xywh: torch.Tensor) -> torch.Tensor:
    """Target offsets ``(..., B, 4)`` of boxes ``(..., B, 4)`` (left, top, right, bottom) against their default
    boxes: ((x - dx) / (0.1 dw), (y - dy) / (0.1 dh), log(w / dw) / 0.2, log(h / dh) / 0.2)."""
    defaults = torch.as_tensor(defaults_xywh, dtype=boxes_ltrb.dtype, device=boxes_ltrb.device)
    xywh = ltrb_to_xywh(boxes_ltrb)
    xy = (xywh[..., :2] - defaults[:, :2]) / (VARIANCE_XY * defaults[:, 2:])
    wh = torch.log(xywh[..., 2:] / defaults[:, 2:]) / VARIANCE_WH
    return torch.cat([xy, wh], dim=-1)


def decode(offsets: torch.Tensor, defaults_xywh: torch.Tensor) -> torch.Tensor:
    """The inverse of ``encode``: offsets ``(..., B, 4)`` -> boxes ``(..., B, 4)`` (left, top, right, bottom)."""
    defaults = torch.as_tensor(defaults_xywh, dtype=offsets.dtype, device=offsets.device)
    xy = defaults[:, :2] + offsets[..., :2] * VARIANCE_XY * defaults[:, 2:]
    wh = defaults[:, 2:] * torch.exp(offsets[..., 2:] * VARIANCE_WH)
    return xywh_to_ltrb(torch.cat([xy, wh], dim=-1))


def match(gt_ltrb: torch.Tensor, gt_labels: torch.Tensor, defaults_xywh: torch.Tensor,
          iou_threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Assign ground truth to default boxes as the reference's encoder does.

    Each default box takes the ground-truth box it overlaps most if that IoU exceeds ``iou_threshold``; each
    ground-truth box also claims the default box it overlaps most, whatever the IoU, so no object goes unmatched.
    Returns ``(B, 4)`` boxes (left, top, right, bottom; unmatched default boxes keep their own, so their offsets
    are zero) and ``(B,)`` labels (0 = background).
    """
    defaults = xywh_to_ltrb(torch.as_tensor(defaults_xywh, dtype=torch.float32, device=gt_ltrb.device))
    boxes, labels = defaults.clone(), torch.zeros(len(defaults), dtype=torch.long, device=gt_ltrb.device)
    if len(gt_ltrb) == 0:
        return boxes, labels
    iou = torchvision.ops.box_iou(gt_ltrb.float(), defaults)  # (G, B)
    best_iou, best_gt = iou.max(dim=0)
    best_default = iou.argmax(dim=1)  # (G,)
    # Forced matches override the threshold; when two ground-truth boxes claim one default box, one of them gets it.
    best_gt[best_default] = torch.arange(len(gt_ltrb), device=gt_ltrb.device)
    best_iou[best_default] = 2.0
    matched = best_iou > iou_threshold
    boxes[matched] = gt_ltrb[best_gt[matched]].float()
    labels[matched] = gt_labels[best_gt[matched]].long()
    return boxes, labels


def postprocess(locs: np.ndarray, scores: np.ndarray, defaults_xywh: np.ndarray, *,
                score_threshold: float = SCORE_THRESHOLD, iou_threshold: float = IOU_THRESHOLD,
                max_detections: int = MAX_DETECTIONS, max_per_class: int = MAX_PER_CLASS) -> list[np.ndarray]:
    """Raw head outputs of any backend -> per image detections ``(K, 6)`` ``[ymin, xmin, ymax, xmax, score,
    label]`` (float32, boxes clamped to 0..1, best score first).

    locs ``(N, 4, B)`` and scores ``(N, C, B)`` are the network's raw outputs (logits; class 0 the background).
    Softmax over the classes; per foreground class, the candidates scoring above ``score_threshold``, at most
    ``max_per_class`` of them; torchvision's per-class NMS at ``iou_threshold``; the best ``max_detections``.
    """
    locs_t = torch.as_tensor(np.asarray(locs), dtype=torch.float32)
    scores_t = torch.as_tensor(np.asarray(scores), dtype=torch.float32)
    if locs_t.ndim != 3 or locs_t.shape[1] != 4 or scores_t.ndim != 3 or scores_t.shape[2] != locs_t.shape[2] \
            or scores_t.shape[0] != locs_t.shape[0] or locs_t.shape[2] != len(defaults_xywh):
        raise ValueError(f"expected locs (N, 4, {len(defaults_xywh)}) and scores (N, C, {len(defaults_xywh)}), "
                         f"got {tuple(locs_t.shape)} and {tuple(scores_t.shape)}")
    with torch.inference_mode():
        boxes = decode(locs_t.transpose(1, 2), torch.as_tensor(defaults_xywh))  # (N, B, 4) ltrb
        probs = torch.softmax(scores_t, dim=1)[:, 1:, :].transpose(1, 2)  # (N, B, C-1), background dropped
        return [_detect_one(b, p, score_threshold, iou_threshold, max_detections, max_per_class)
                for b, p in zip(boxes, probs, strict=True)]


def _detect_one(boxes: torch.Tensor, probs: torch.Tensor, score_threshold: float, iou_threshold: float,
                max_detections: int, max_per_class: int) -> np.ndarray:
    box_idx, cls = torch.nonzero(probs > score_threshold, as_tuple=True)
    score = probs[box_idx, cls]
    if len(score) > max_per_class:
        # Keep each class's best max_per_class: order by score, then (stably) by class, and rank within a class.
        order = torch.argsort(score, descending=True)
        order = order[torch.argsort(cls[order], stable=True)]
        cls_sorted = cls[order]
        counts = torch.bincount(cls_sorted)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(len(order)) - starts[cls_sorted]
        keep = order[rank < max_per_class]
        box_idx, cls, score = box_idx[keep], cls[keep], score[keep]
    chosen = boxes[box_idx]
    kept = torchvision.ops.batched_nms(chosen, score, cls, iou_threshold)[:max_detections]  # best score first
    ltrb = chosen[kept].clamp(0.0, 1.0)
    rows = torch.stack([ltrb[:, 1], ltrb[:, 0], ltrb[:, 3], ltrb[:, 2], score[kept], (cls[kept] + 1).float()], 1)
    return rows.numpy().astype(np.float32, copy=False)
