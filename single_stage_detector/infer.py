"""COCO detection under LoadGen: SSD-ResNet34 (1200x1200) and SSD-MobileNet-v1 (300x300), the reference's profiles.

    python -m single_stage_detector.infer --profile ssd-mobilenet-onnxruntime --scenario Offline --accuracy

The QSL is val2017 in the instances file's order; LoadGen loads images resized to the model's square input
(``data.presets``, the eval preset training evaluates with). Every backend's graph returns the raw head outputs,
``locs (N, 4, B)`` and ``scores (N, C, B)``, and one function (``boxes.postprocess``: decoding, NMS at IoU 0.5,
score 0.05, 200 detections) turns them into detections, so the backends agree by construction.

Each response is float32 groups of 7, ``[qsl_idx, ymin, xmin, ymax, xmax, score, label]``, boxes in 0..1 and
``label`` the COCO category id, as the reference's accuracy-coco tool reads them (``accuracy.py``).

Without flags it reads the embedded mini set and the models ``export.py`` wrote; ``--dataset-path`` and
``--model`` (or DATA_DIR / MODEL_DIR in run_local.sh) point it at the real ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from loadgen import cli, exported
from loadgen.backends import BACKENDS, backend_class
from loadgen.data import CATEGORY_OF_LABEL, annotation_file, image_folder, load_annotations
from loadgen.data.coco_accuracy import detection_rows
from loadgen.data.coco_task import DetectionTask
from single_stage_detector import mini
from single_stage_detector.data.presets import INFERENCE_SIZE, MODEL_PRESET, presets

PROG = "python -m single_stage_detector.infer"
DEFAULT_MODEL_DIR = "results/single_stage_detector/train/{model}/export"
# The reference's profiles: <LoadGen model name>-<backend>; the size comes from the model's export.json.
PROFILES = {f"{model}-{backend}": {"backend": backend, "model_name": model}
            for model in INFERENCE_SIZE for backend in exported.SUFFIXES}
# Classes of a head -> how its label becomes a COCO category id: SSD-ResNet34's 81 are contiguous (80 + background);
# SSD-MobileNet-v1's 91 follow TF's label map, whose index is the category id itself.
CATEGORY_MAPS = {81: CATEGORY_OF_LABEL, 91: np.arange(91, dtype=np.int64)}


def get_args_parser(add_help: bool = True) -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog=PROG, description=__doc__, add_help=add_help)
    cli.add_inference_args(parser, backends=list(BACKENDS), model_name_default="from --profile, else ssd-resnet34")
    g = parser.add_argument_group("COCO detection")
    g.add_argument("--model-dir", default=DEFAULT_MODEL_DIR,
                   help="folder of exported models named <model-name>.onnx and so on ({model} is the model name); "
                        f"--model overrides (default: {DEFAULT_MODEL_DIR})")
    g.add_argument("--dataset-path", type=cli.existing_dir, default=None,
                   help="COCO root with val2017/ and annotations/instances_val2017.json "
                        f"(default: the mini set, {mini.DEFAULT_OUT})")
    g.add_argument("--data-format", choices=["NCHW", "NHWC"], default=None,
                   help="input layout (default: the backend's, NCHW for pytorch/onnxruntime, NHWC for tf/tflite)")
    g.add_argument("--preset", choices=list(presets()), default=None,
                   help="normalisation (default: the model's export.json, else imagenet for ssd-resnet34 and "
                        "inception for ssd-mobilenet)")
    g.add_argument("--image-size", type=cli.positive(int), default=None,
                   help="square input side (default: the model's export.json, else 1200 for ssd-resnet34 and 300 "
                        "for ssd-mobilenet)")
    g.add_argument("--remove-48-empty-images", dest="remove_empty", action="store_true",
                   help="leave the images without annotations out of the sample list, as the reference's PyTorch "
                        "and ONNX SSD-ResNet34 runs do (default: False)")
    return parser


def responses(locs: np.ndarray, scores: np.ndarray, defaults: np.ndarray, indices) -> list[np.ndarray]:
    """Raw head outputs of a batch -> one response per sample (``detection_rows``), through the one
    ``boxes.postprocess`` every backend shares."""
    from single_stage_detector.boxes import postprocess

    classes = scores.shape[1]
    if classes not in CATEGORY_MAPS:
        raise ValueError(f"the model scores {classes} classes; expected 81 (SSD-ResNet34) or 91 (SSD-MobileNet-v1)")
    return [detection_rows(d, int(i), CATEGORY_MAPS[classes])
            for d, i in zip(postprocess(locs, scores, defaults), indices, strict=True)]


def resolve(args) -> None:
    """Fill what the user left out: mlperf.conf's model name, the model file, size and preset from its export.json,
    the data format."""
    args.model_name = args.model_name or "ssd-resnet34"
    if args.model_name not in INFERENCE_SIZE:
        cli.die(PROG, f"--model-name must be one of {', '.join(INFERENCE_SIZE)}, got {args.model_name!r}")
    args.model_dir = args.model_dir.replace("{model}", args.model_name)
    meta = exported.resolve(args, args.model_name)
    if meta.get("model", args.model_name) != args.model_name:
        cli.die(PROG, f"{args.model} is an exported {meta['model']}, not {args.model_name}")
    args.image_size = args.image_size or meta.get("image_size") or INFERENCE_SIZE[args.model_name]
    args.preset = args.preset or meta.get("preset") or MODEL_PRESET[args.model_name]
    if args.data_format is None:
        args.data_format = backend_class(args.backend).input_layout or "NCHW"


def make_task(args) -> DetectionTask:
    """The task factory ``cli.execute`` calls in the process of each run."""
    from single_stage_detector.models import default_boxes

    root = Path(args.dataset_path) if args.dataset_path else mini.ensure()
    coco = load_annotations(annotation_file(root, "val"))
    defaults = default_boxes(args.model_name, args.image_size)

    def decode(outputs, indices):
        if len(outputs) != 2:
            raise ValueError(f"expected 2 outputs (locs, scores), got {len(outputs)}")
        return responses(outputs[0], outputs[1], defaults, indices)

    return DetectionTask(coco, image_folder(root, "val"), presets(args.image_size)[args.preset], args.data_format,
                         decode, args.count, args.remove_empty)


def main(args) -> int:
    return cli.resolve_and_execute(args, resolve, make_task, PROG)


if __name__ == "__main__":
    ns = cli.parse_args(get_args_parser(), sys.argv[1:], PROFILES, fallbacks={"backend": "onnxruntime"})
    sys.exit(main(ns))
