"""RetinaNet's anchors and the one post-processing every backend's raw head outputs go through.

Every RetinaNet graph (PyTorch eager, ``.pt2``, ONNX) ends at the raw head outputs for a square ``S`` x ``S`` input:

- ``cls_logits`` ``(N, A, C)``: one logit per anchor and class (sigmoid scores, no background class; C = 264);
- ``bbox_regression`` ``(N, A, 4)``: offsets of each anchor's box,

anchors ordered level by level (P3..P7), then row, column and anchor shape, as torchvision's ``RetinaNet`` orders
them. :func:`postprocess` turns them into detections with torchvision's own ``RetinaNet.postprocess_detections``
(per level the 1,000 best scores above 0.05, decoded against the anchors and clipped to the image; NMS at IoU 0.5
per class; the best 300), the MLPerf inference reference's settings (torchvision's defaults), so backends agree by
construction and match the model's own forward.

Detections: per image ``(K, 6)`` float32 rows ``[ymin, xmin, ymax, xmax, score, label]``, boxes in 0..1 of the
input, ``label`` the class index (0..C-1), which is the category id of the subset's annotation file.
"""

from __future__ import annotations

import functools
import math
import types

import numpy as np
import torch
from torchvision.models.detection import RetinaNet
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.image_list import ImageList

from object_detection.models import anchor_generator

SCORE_THRESHOLD = 0.05
IOU_THRESHOLD = 0.5
TOPK_CANDIDATES = 1000  # per level
MAX_DETECTIONS = 300
LEVEL_STRIDES = (8, 16, 32, 64, 128)  # P3..P7


def level_sizes(image_size: int) -> list[int]:
    """Feature-map sides of P3..P7 for a square input: every stride-2 layer (the stem's convolution and pooling,
    layer2..layer4, P6, P7) gives ceil(side / 2)."""
    sizes, side = [], image_size
    for halvings in range(1, int(math.log2(LEVEL_STRIDES[-1])) + 1):
        side = -(-side // 2)
        if 2 ** halvings in LEVEL_STRIDES:
            sizes.append(side)
    return sizes


@functools.lru_cache(maxsize=4)
def anchors(image_size: int) -> tuple[torch.Tensor, ...]:
    """The anchors of each level, ``(H * W * shapes, 4)`` (x1, y1, x2, y2) in input pixels, from the model's own
    ``AnchorGenerator`` (only the feature maps' sizes matter to it)."""
    sizes = level_sizes(image_size)
    images = ImageList(torch.zeros(1, 3, image_size, image_size), [(image_size, image_size)])
    (flat,) = anchor_generator()(images, [torch.zeros(1, 1, s, s) for s in sizes])
    counts = [s * s * (len(flat) // sum(s * s for s in sizes)) for s in sizes]
    return tuple(flat.split(counts))


def anchor_count(image_size: int) -> int:
    return sum(len(a) for a in anchors(image_size))


# What RetinaNet.postprocess_detections reads from its model, with the reference's values.
_SETTINGS = types.SimpleNamespace(score_thresh=SCORE_THRESHOLD, nms_thresh=IOU_THRESHOLD,
                                  detections_per_img=MAX_DETECTIONS, topk_candidates=TOPK_CANDIDATES,
                                  box_coder=det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0)))


def postprocess(cls_logits: np.ndarray, bbox_regression: np.ndarray, image_size: int) -> list[np.ndarray]:
    """Raw head outputs of any backend -> per image detections ``(K, 6)`` (see the module docstring), best score
    first. ValueError for outputs that do not fit ``image_size``'s anchors."""
    logits = torch.as_tensor(np.asarray(cls_logits), dtype=torch.float32)
    offsets = torch.as_tensor(np.asarray(bbox_regression), dtype=torch.float32)
    by_level = anchors(image_size)
    total = sum(len(a) for a in by_level)
    if logits.ndim != 3 or offsets.shape != (logits.shape[0], total, 4) or logits.shape[1] != total:
        raise ValueError(f"expected cls_logits (N, {total}, C) and bbox_regression (N, {total}, 4) for "
                         f"{image_size}x{image_size} inputs, got {tuple(logits.shape)} and {tuple(offsets.shape)}")
    counts = [len(a) for a in by_level]
    heads = {"cls_logits": list(logits.split(counts, dim=1)), "bbox_regression": list(offsets.split(counts, dim=1))}
    n = len(logits)
    with torch.inference_mode():
        found = RetinaNet.postprocess_detections(_SETTINGS, heads, [list(by_level)] * n,
                                                 [(image_size, image_size)] * n)
    out = []
    for det in found:
        xyxy = det["boxes"] / image_size
        rows = torch.stack([xyxy[:, 1], xyxy[:, 0], xyxy[:, 3], xyxy[:, 2], det["scores"],
                            det["labels"].float()], dim=1)
        out.append(rows.numpy().astype(np.float32, copy=False))
    return out
