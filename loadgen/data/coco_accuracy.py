"""COCO detection accuracy from LoadGen's ``mlperf_log_accuracy.json``: bbox mAP with pycocotools.

The log format is the inference reference's for its COCO detectors: each sample's response is float32 groups of
7, one per detection, ``[qsl_idx, ymin, xmin, ymax, xmax, score, label]``, the box relative to the image (0..1).
``label`` is the COCO category id, or with ``use_inv_map`` a contiguous label 1..80 that is mapped to its category
id (what the reference's 81-class PyTorch and ONNX SSD-ResNet34 runs log).

Sample ``qsl_idx`` is the ``qsl_idx``-th image of the instances file, in the file's order (:func:`qsl_images`);
with ``remove_empty`` the images without any annotation (48 in COCO's val2017) are left out of that list first.
A benchmark's QSL builds its list with the same function, so the two never disagree.

mAP is COCO's AP at IoU 0.50:0.95 over the images the log holds (a run on part of the set is scored on that part).
numpy and pycocotools only: no ML framework.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from loadgen.accuracy import Accuracy, Metric, read_log
from loadgen.data.coco import load_annotations

ROW = 7  # qsl_idx, ymin, xmin, ymax, xmax, score, label
MATCH_IOU, MATCH_SCORE = 0.9, 0.02  # what "the same detection" means between two runtimes (matched_share)
# COCOeval.stats, in the order its summarize() fills them.
STAT_NAMES = ("mAP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def qsl_images(coco, remove_empty: bool = False) -> list[dict]:
    """The image entries of ``coco`` (a pycocotools COCO) in the instances file's order: LoadGen's sample order.
    ``remove_empty`` leaves out the images with no annotation at all (crowd ones count)."""
    images = list(coco.dataset["images"])
    if remove_empty:
        images = [img for img in images if coco.imgToAnns.get(img["id"])]
    return images


def detection_rows(detections: np.ndarray, index: int, categories: np.ndarray | None = None) -> np.ndarray:
    """``(K, 6)`` ``[ymin, xmin, ymax, xmax, score, label]`` of sample ``index`` -> its response: float32
    ``(K * 7,)`` ``[index, ymin, xmin, ymax, xmax, score, category id]`` per detection, ``categories[label]`` the
    category id of a label (none: the label is the id)."""
    out = np.empty((len(detections), ROW), np.float32)
    out[:, 0] = index
    out[:, 1:6] = detections[:, :5]
    labels = detections[:, 5].astype(np.int64)
    out[:, 6] = labels if categories is None else categories[labels]
    return out.reshape(-1)


def rows(response: np.ndarray) -> np.ndarray:
    """A response's float32 values as ``(K, 7)`` detection rows; ValueError if they are not whole groups of 7."""
    if response.size % ROW:
        raise ValueError(f"{response.size} values are not whole detections of {ROW}")
    return response.reshape(-1, ROW)


def to_coco(detections: Iterable[tuple[int, np.ndarray]], images: Sequence[Mapping],
            inv_map: np.ndarray | None = None, source: str = "detections") -> list[dict]:
    """``(qsl_idx, (K, 7) rows)`` pairs -> COCO result dicts (``image_id``, ``category_id``, pixel ``bbox``
    [x, y, w, h], ``score``). ValueError naming ``source`` for a sample past the image list, a row whose own
    index differs from its sample's, or a label that is no category."""
    out: list[dict] = []
    for idx, dets in detections:
        if not 0 <= idx < len(images):
            raise ValueError(f"{source}: sample {idx} is beyond the {len(images)} images of the annotation file")
        if len(dets) == 0:
            continue
        if np.any(dets[:, 0] != idx):
            raise ValueError(f"{source}: sample {idx} holds a detection of sample {int(dets[0, 0])}; "
                             "each row must start with its own qsl_idx")
        image = images[idx]
        w, h = float(image["width"]), float(image["height"])
        labels = dets[:, 6].astype(np.int64)
        if inv_map is not None:
            if labels.min() < 1 or labels.max() >= len(inv_map):
                raise ValueError(f"{source}: sample {idx}: labels must be 1..{len(inv_map) - 1} with "
                                 f"--use-inv-map, got {sorted(set(labels.tolist()))[:5]}")
            labels = inv_map[labels]
        for (_, ymin, xmin, ymax, xmax, score, _), category in zip(dets.tolist(), labels.tolist(), strict=True):
            out.append({"image_id": image["id"], "category_id": int(category), "score": float(score),
                        "bbox": [xmin * w, ymin * h, (xmax - xmin) * w, (ymax - ymin) * h]})
    return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every row of ``a`` (K, 4) with every row of ``b`` (M, 4); boxes [ymin, xmin, ymax, xmax]."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(-1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def matched_share(reference: Sequence[np.ndarray], other: Sequence[np.ndarray]) -> float:
    """Share of detections found by both (per image, greedy by score): same class, IoU >= MATCH_IOU, score within
    MATCH_SCORE; over the larger of the two counts, so missing and extra detections both count. Responses are
    rows of 7 (:func:`detection_rows`); 1.0 when neither has any."""
    found = total = 0
    for ref, got in zip(reference, other, strict=True):
        ref, got = ref.reshape(-1, 7), got.reshape(-1, 7)
        total += max(len(ref), len(got))
        if not len(ref) or not len(got):
            continue
        overlap = iou(ref[:, 1:5], got[:, 1:5])
        same = (ref[:, None, 6] == got[None, :, 6]) & (np.abs(ref[:, None, 5] - got[None, :, 5]) <= MATCH_SCORE)
        ok = same & (overlap >= MATCH_IOU)
        taken = np.zeros(len(got), bool)
        for r in range(len(ref)):
            free = np.flatnonzero(ok[r] & ~taken)
            if len(free):
                taken[free[np.argmax(overlap[r, free])]] = True
                found += 1
    return 1.0 if total == 0 else found / total


def coco_map(coco, results: list[dict], image_ids: Sequence[int], iou_type: str = "bbox") -> dict[str, float]:
    """COCOeval (``iou_type`` "bbox", or "segm" for results with RLE ``segmentation``) of ``results`` on
    ``image_ids``: its 12 statistics by name (:data:`STAT_NAMES`), fractions.
    Detections of categories the file does not have are left out. With no detection left every statistic is 0
    (pycocotools refuses an empty result list)."""
    from pycocotools.cocoeval import COCOeval

    known = set(coco.getCatIds())
    # COCOeval scores only the file's categories; a detection of another (TF's label map has 10 ids COCO never
    # used) cannot be right, and pycocotools would ignore it, so it is dropped here.
    results = [r for r in results if r["category_id"] in known]
    if not results:
        return dict.fromkeys(STAT_NAMES, 0.0)
    # pycocotools prints its progress and the summary table; a library call stays quiet.
    with contextlib.redirect_stdout(io.StringIO()):
        detections = coco.loadRes(results)
        evaluator = COCOeval(coco, detections, iouType=iou_type)
        evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    # -1 is COCOeval's "no ground truth in this area range"; as a score it is 0.
    return {name: max(0.0, float(v)) for name, v in zip(STAT_NAMES, evaluator.stats, strict=True)}


def accuracy_from_responses(responses: Mapping[int, np.ndarray], annotations: str | os.PathLike | object,
                            use_inv_map: bool = False, remove_empty: bool = False,
                            source: str = "detections") -> tuple[Accuracy, list[dict]]:
    """mAP of ``{qsl_idx: float32 response}`` against ``annotations`` (an instances file, or a loaded COCO): the
    Accuracy (``mAP`` in percent, the other statistics and counts as details) and the COCO result dicts."""
    coco = load_annotations(annotations) if isinstance(annotations, (str, os.PathLike)) else annotations
    images = qsl_images(coco, remove_empty)
    pairs = []
    for idx, response in sorted(responses.items()):
        try:
            pairs.append((idx, rows(response)))
        except ValueError as exc:
            raise ValueError(f"{source}: sample {idx}: {exc}") from None
    # The reference tools' inverse map: label k is the k-th category id of the file (COCO: 1..80 -> ids).
    inv_map = np.array([0, *coco.getCatIds()], dtype=np.int64) if use_inv_map else None
    results = to_coco(pairs, images, inv_map, source)
    seen = [images[idx]["id"] for idx, _ in pairs]
    stats = coco_map(coco, results, seen)
    details = {**{k: v for k, v in stats.items() if k != "mAP"}, "images": len(seen), "detections": len(results)}
    return Accuracy((Metric("mAP", 100.0 * stats["mAP"], "percent"),), details), results


def coco_accuracy(accuracy_log: str | os.PathLike, annotations: str | os.PathLike | object,
                  use_inv_map: bool = False, remove_empty: bool = False) -> tuple[Accuracy, list[dict]]:
    """mAP from LoadGen's accuracy log (see the module docstring for its format), with the COCO result dicts."""
    responses = read_log(accuracy_log, np.float32)
    return accuracy_from_responses(responses, annotations, use_inv_map, remove_empty, source=str(accuracy_log))


def get_args_parser(prog: str, description: str | None, add_help: bool = True):
    """The parser of a COCO detector's ``accuracy.py``: the reference accuracy-coco tool's flags."""
    from loadgen.accuracy import get_args_parser as accuracy_parser
    from loadgen.cli import existing_file

    parser = accuracy_parser(prog, description, add_help)
    parser.add_argument("--coco-dir", default=None,
                        help="COCO root holding annotations/instances_val2017.json (default: --annotations)")
    parser.add_argument("--annotations", type=existing_file, default=None,
                        help="the instances file, instead of --coco-dir (default: <coco-dir>/annotations/"
                             "instances_val2017.json)")
    parser.add_argument("--use-inv-map", action="store_true",
                        help="labels in the log are contiguous 1..80, mapped to COCO category ids (default: False)")
    parser.add_argument("--remove-48-empty-images", action="store_true",
                        help="the run's sample list left out the images without annotations (default: False)")
    parser.add_argument("--output-file", default=None,
                        help="also write the detections as COCO results JSON here (default: None)")
    return parser


def main(prog: str, args) -> int:
    """The body of a COCO detector's ``accuracy.py`` main: prints ``mAP=XX.XXX%`` or one error line."""
    from loadgen.cli import die

    if (args.coco_dir is None) == (args.annotations is None):
        die(prog, "give one of --coco-dir and --annotations")
    annotations = args.annotations or Path(args.coco_dir) / "annotations" / "instances_val2017.json"
    return report(prog, args, annotations, args.remove_48_empty_images)


def report(prog: str, args, annotations: str | os.PathLike, remove_empty: bool = False) -> int:
    """Score ``args.mlperf_accuracy_file`` against ``annotations`` (``args.use_inv_map``; ``args.output_file``
    receives the COCO results) and print ``mAP=XX.XXX%``, or one error line: any COCO-format detector's tool."""
    import json

    from loadgen.accuracy import command
    from loadgen.data.atomic import write_atomic
    from loadgen.data.errors import DataError

    def compute() -> Accuracy:
        try:
            acc, results = coco_accuracy(args.mlperf_accuracy_file, annotations, args.use_inv_map, remove_empty)
        except DataError as exc:
            raise ValueError(str(exc)) from None
        if args.output_file:
            write_atomic(args.output_file, json.dumps(results).encode())
        return acc

    return command(prog, compute, line)


def line(result: Accuracy) -> str:
    """The reference tools' ``mAP=XX.XXX%`` (accuracy-coco.py, accuracy-openimages.py), which the submission
    checker reads from accuracy.txt, with the counts behind it."""
    return f"mAP={result['mAP']:.3f}%, images={result['images']}, detections={result['detections']}"
