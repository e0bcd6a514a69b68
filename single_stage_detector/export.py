"""SSD checkpoint -> ``.pt2`` (torch.export), ONNX, TF SavedModel and TFLite, each checked against PyTorch.

The checkpoint is the training driver's folder (model.safetensors + model.json naming the ``model``). Every graph
ends at the raw head outputs ``locs (N, 4, B)`` and ``scores (N, C, B)`` for a fixed square input (``--image-size``,
by default the size the model is benchmarked at: 1200 for ssd-resnet34, 300 for ssd-mobilenet) and any batch.
The export folder holds ``<model>.pt2``, ``<model>.onnx``, ``<model>_savedmodel/``, ``<model>.tflite`` and one
``export.json`` of what inference must match (model, size, preset) and what the parity check measured.

Parity: each format runs on the mini (or given) val set through the harness's own backend, and its detections go
through the same ``boxes.postprocess`` as PyTorch's. It passes when its COCO mAP is within 0.5 points of
PyTorch's and >= 99 % of detections are matched (same image and class, IoU >= 0.9, score within 0.02), or when
its raw outputs are within 1e-4 of PyTorch's (``loadgen.backends.parity.detection_parity`` says why).

    python -m single_stage_detector.export --checkpoint results/single_stage_detector/train/ssd-resnet34
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from loadgen import exported
from loadgen.backends.parity import backend_outputs, detection_parity, eager_outputs
from loadgen.cli import positive
from loadgen.data import DataError, annotation_file, image_folder, load_annotations
from loadgen.data.coco_accuracy import qsl_images
from loadgen.training.checkpoint import CheckpointError, load_model
from single_stage_detector import infer, mini, models
from single_stage_detector.data.presets import INFERENCE_SIZE, MODEL_PRESET, load_image, presets

PROG = "python -m single_stage_detector.export"


def export_pytorch(model: torch.nn.Module, size: int, targets: dict[str, Path]) -> None:
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (torch.zeros(2, 3, size, size),), dynamic_shapes=({0: batch},))
    torch.export.save(program, targets["pytorch"])


def export_onnx(model: torch.nn.Module, size: int, targets: dict[str, Path]) -> None:
    torch.onnx.export(model, (torch.zeros(1, 3, size, size),), targets["onnxruntime"], dynamo=False,
                      input_names=["image"], output_names=["locs", "scores"], opset_version=17,
                      dynamic_axes={"image": {0: "batch"}, "locs": {0: "batch"}, "scores": {0: "batch"}})


def export_tensorflow(model: torch.nn.Module, size: int, targets: dict[str, Path]) -> None:
    """SavedModel and, when asked for, TFLite in one pass (TFLite is converted from the SavedModel)."""
    from single_stage_detector.export_tf import export_tf

    export_tf(model, size, targets["tf"], targets.get("tflite"))


# format -> the function that writes it; formats sharing a function (tf, tflite) are written by one call.
FORMATS: dict[str, Callable[[torch.nn.Module, int, dict[str, Path]], None]] = {
    "pytorch": export_pytorch, "onnxruntime": export_onnx, "tf": export_tensorflow, "tflite": export_tensorflow,
}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = exported.export_parser(PROG, __doc__, list(FORMATS), ("pytorch", "onnxruntime"),
                                    "COCO root whose val2017 the parity check runs on", ("images", "val images"),
                                    add_help)
    parser.add_argument("--image-size", type=positive(int), default=None,
                        help="square input side of the graphs (default: 1200 for ssd-resnet34, 300 for ssd-mobilenet)")
    return parser


def load_checkpoint(folder: str | Path, size: int | None = None) -> tuple[models.SSD, dict]:
    """The model a training checkpoint describes (``model`` in model.json) for ``size`` x ``size`` inputs (default:
    its inference size), its weights loaded, in eval mode. CheckpointError for a checkpoint that does not fit;
    ValueError for a size the architecture does not take."""
    def make(meta: dict) -> models.SSD:
        name = meta.get("model")
        if name not in models.MODELS:
            raise CheckpointError(f"{folder}/model.json: 'model' must be one of {', '.join(models.MODELS)}, "
                                  f"got {name!r}")
        return models.build(name, size or INFERENCE_SIZE[name])

    return load_model(folder, make)


def main(args) -> int:
    ckpt = Path(args.checkpoint)
    if (wanted := exported.wanted_formats(PROG, args.formats, list(FORMATS))) is None:
        return 2
    try:
        model, meta = load_checkpoint(ckpt, args.image_size)
    except (CheckpointError, FileNotFoundError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a size the architecture does not take
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    name, size = meta["model"], model.image_size
    preset_name = meta.get("preset") or MODEL_PRESET[name]
    out = Path(args.output or ckpt / "export")
    out.mkdir(parents=True, exist_ok=True)
    targets = {f: out / f"{name}{exported.SUFFIXES[f]}" for f in wanted}
    for writer in dict.fromkeys(FORMATS[f] for f in wanted):  # each writer once, in FORMATS order
        writer(model, size, targets)

    root = Path(args.data_dir or meta.get("data_dir") or mini.ensure())
    try:
        coco = load_annotations(annotation_file(root, "val"))
        images = qsl_images(coco)[: args.parity_images or None]
        preset = presets(size)[preset_name]
        batch = preset.normalize(np.stack([preset.geometry(load_image(image_folder(root, "val") / img["file_name"]))
                                           for img in images]))
    except DataError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    defaults = model.default_boxes.numpy()
    indices = range(len(images))

    def outputs_of(fmt: str) -> list[np.ndarray]:
        return backend_outputs(fmt, targets[fmt], batch, threads=args.threads)

    def respond(outputs) -> list[np.ndarray]:
        locs, scores = outputs
        return infer.responses(locs, scores, defaults, indices)

    record = {"checkpoint": str(ckpt), "model": name, "image_size": size, "preset": preset_name}
    return detection_parity(PROG, out, record, coco, eager_outputs(model, batch), targets, outputs_of, respond)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
