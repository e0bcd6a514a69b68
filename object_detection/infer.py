"""RetinaNet on the MLPerf OpenImages subset under LoadGen: the reference's ``retinanet`` profiles.

    python -m object_detection.infer --profile retinanet-onnxruntime --scenario Offline --accuracy

The QSL is the subset's images in ``annotations/openimages-mlperf.json``'s order; LoadGen loads them squashed to the
model's square input (800x800 for the benchmark; a mini model's size comes from its export.json), normalised with
ImageNet's mean and deviation. Every backend's graph returns the raw head outputs, ``cls_logits (N, A, 264)`` and
``bbox_regression (N, A, 4)``, and one function (``boxes.postprocess``: torchvision's RetinaNet post-processing,
score 0.05, 1,000 candidates a level, NMS at IoU 0.5, 300 detections) turns them into detections, so the backends
agree by construction. LoadGen knows the model as ``retinanet`` (64 performance samples, Server 100 ms, MultiStream
528 ms at p99, from its built-in mlperf.conf).

Each response is float32 groups of 7, ``[qsl_idx, ymin, xmin, ymax, xmax, score, label]``, boxes in 0..1 and
``label`` the subset's category id (0..263), as the reference's accuracy-openimages tool reads them
(``accuracy.py``).

Backends: ``pytorch`` (``.pt2``) and ``onnxruntime`` (``.onnx``). TF and TFLite are not offered: the weight-transfer
twin the single-stage detector uses covers plain convolution stacks, not ResNeXt's grouped convolutions and the
feature pyramid, and no converter on this stack is trusted to do it (the README says so).

Without flags it reads RetinaNet's embedded mini set and the model ``export.py`` wrote; ``--dataset-path`` and
``--model`` (or DATA_DIR / MODEL_DIR in run_local.sh) point it at the real ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from loadgen import cli, exported
from loadgen.backends import BACKENDS
from loadgen.data import load_annotations
from loadgen.data.coco_accuracy import detection_rows
from loadgen.data.coco_task import DetectionTask
from loadgen.data.pixels import SquarePreset
from object_detection import mini
from object_detection.data import openimages
from object_detection.models import IMAGE_MEAN, IMAGE_STD, RETINANET_CLASSES, RETINANET_SIZE

PROG = "python -m object_detection.infer"
MODEL = "retinanet"  # LoadGen's name, and the exported files' stem
BACKENDS_OFFERED = ("pytorch", "onnxruntime")
DEFAULT_MODEL_DIR = "results/object_detection/train/retinanet/export"
PROFILES = {f"{MODEL}-{backend}": {"backend": backend, "model_name": MODEL} for backend in BACKENDS_OFFERED}


def get_args_parser(add_help: bool = True) -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog=PROG, description=__doc__, add_help=add_help)
    cli.add_inference_args(parser, backends=list(BACKENDS), model_name_default=MODEL)
    g = parser.add_argument_group("OpenImages detection")
    g.add_argument("--model-dir", default=DEFAULT_MODEL_DIR,
                   help=f"folder of exported models named {MODEL}.pt2 and {MODEL}.onnx; --model overrides "
                        f"(default: {DEFAULT_MODEL_DIR})")
    g.add_argument("--dataset-path", type=cli.existing_dir, default=None,
                   help="subset root with validation/data/ and annotations/openimages-mlperf.json "
                        f"(default: the mini set, {mini.OPENIMAGES_OUT})")
    g.add_argument("--image-size", type=cli.positive(int), default=None,
                   help=f"square input side (default: the model's export.json, else {RETINANET_SIZE})")
    return parser


def preset(size: int) -> SquarePreset:
    """RetinaNet's evaluation preset: squashed to ``size`` x ``size``, pixels / 255 normalised with ImageNet's mean
    and deviation (what torchvision's detection transform does inside the reference's model)."""
    return SquarePreset(size, mean=IMAGE_MEAN, std=IMAGE_STD, scale=1 / 255)


def responses(cls_logits: np.ndarray, bbox_regression: np.ndarray, image_size: int, indices) -> list[np.ndarray]:
    """Raw head outputs of a batch -> one response per sample, through the one ``boxes.postprocess``."""
    from object_detection.boxes import postprocess

    if cls_logits.shape[-1] != RETINANET_CLASSES:
        raise ValueError(f"the model scores {cls_logits.shape[-1]} classes; expected {RETINANET_CLASSES}")
    return [detection_rows(d, int(i)) for d, i in zip(postprocess(cls_logits, bbox_regression, image_size),
                                                      indices, strict=True)]


def resolve(args) -> None:
    """Fill what the user left out: the model name, the model file and its input size from export.json."""
    args.model_name = args.model_name or MODEL
    if args.model_name != MODEL:
        cli.die(PROG, f"--model-name must be {MODEL}, got {args.model_name!r}")
    meta = exported.resolve(args, MODEL, BACKENDS_OFFERED)
    if meta.get("model", MODEL) != MODEL:
        cli.die(PROG, f"{args.model} is an exported {meta['model']}, not {MODEL}")
    args.image_size = args.image_size or meta.get("image_size") or RETINANET_SIZE


def make_task(args) -> DetectionTask:
    """The task factory ``cli.execute`` calls in the process of each run."""
    root = Path(args.dataset_path) if args.dataset_path else mini.ensure_openimages()
    coco = load_annotations(openimages.annotation_file(root))
    size = args.image_size

    def decode(outputs, indices):
        if len(outputs) != 2:
            raise ValueError(f"expected 2 outputs (cls_logits, bbox_regression), got {len(outputs)}")
        return responses(outputs[0], outputs[1], size, indices)

    return DetectionTask(coco, openimages.image_folder(root), preset(size), "NCHW", decode, args.count)


def main(args) -> int:
    return cli.resolve_and_execute(args, resolve, make_task, PROG)


if __name__ == "__main__":
    ns = cli.parse_args(get_args_parser(), sys.argv[1:], PROFILES, fallbacks={"backend": "onnxruntime"})
    sys.exit(main(ns))
