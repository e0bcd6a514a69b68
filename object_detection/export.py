"""RetinaNet checkpoint -> ``.pt2`` (torch.export) and ONNX, each checked against PyTorch.

The checkpoint is the training driver's folder (model.safetensors + model.json with ``model: retinanet`` and its
``image_size``). Both graphs are :class:`models.RetinaNetHeads`: a normalised square input of any batch -> the raw
head outputs ``cls_logits (N, A, 264)`` and ``bbox_regression (N, A, 4)``; ``boxes.postprocess`` does the rest
for every backend. The export folder holds ``retinanet.pt2``, ``retinanet.onnx`` and one ``export.json`` of what
inference must match (model, size) and what the parity check measured.

Parity: each format runs on the subset's (by default the mini set's) validation images through the harness's own
backend, and its detections go through the same ``boxes.postprocess`` as PyTorch's. It passes when its mAP is
within 0.5 points of PyTorch's and >= 99 % of detections are matched (same image and class, IoU >= 0.9, score
within 0.02), or when its raw outputs are within 1e-4 of PyTorch's (an untrained model's near-tied scores can make
rounding swap detections; ``loadgen.backends.parity.detection_parity``).

    python -m object_detection.export --checkpoint results/object_detection/train/retinanet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from loadgen import exported
from loadgen.backends.parity import backend_outputs, detection_parity, eager_outputs
from loadgen.cli import die
from loadgen.data import DataError, load_annotations, read_rgb
from loadgen.data.coco_accuracy import qsl_images
from loadgen.training.checkpoint import CheckpointError, load_model
from object_detection import infer, mini, models
from object_detection.data import openimages

PROG = "python -m object_detection.export"
FORMATS = ("pytorch", "onnxruntime")
OUTPUTS = ("cls_logits", "bbox_regression")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    return exported.export_parser(PROG, __doc__, FORMATS, FORMATS, "subset root whose validation images the parity "
                                  "check runs on", ("images", "validation images"), add_help)


def load_checkpoint(folder: str | Path) -> tuple[models.RetinaNetHeads, dict]:
    """The raw-output network a training checkpoint holds, in eval mode. CheckpointError for one that does not
    fit."""
    def make(meta: dict) -> models.RetinaNet:
        if meta.get("model") != infer.MODEL:
            raise CheckpointError(f"{folder}/model.json: 'model' must be {infer.MODEL}, got {meta.get('model')!r}")
        size = meta.get("image_size")
        if not isinstance(size, int) or size < 32:
            raise CheckpointError(f"{folder}/model.json: 'image_size' must be an integer >= 32, got {size!r}")
        head_norm = meta.get("head_norm", False)  # absent from checkpoints older than the normed mini heads
        if not isinstance(head_norm, bool):
            raise CheckpointError(f"{folder}/model.json: 'head_norm' must be true or false, got {head_norm!r}")
        return models.build_retinanet(size, pretrained_backbone=bool(meta.get("pretrained_backbone")),
                                      head_norm=head_norm)

    model, meta = load_model(folder, make)
    return models.RetinaNetHeads(model).eval(), meta


def write(fmt: str, net: models.RetinaNetHeads, target: Path) -> None:
    size = net.image_size
    if fmt == "pytorch":
        batch = torch.export.Dim("batch", min=1, max=1024)
        program = torch.export.export(net, (torch.zeros(2, 3, size, size),), dynamic_shapes=({0: batch},))
        torch.export.save(program, target)
    else:
        torch.onnx.export(net, (torch.zeros(1, 3, size, size),), target, dynamo=False, input_names=["image"],
                          output_names=list(OUTPUTS), opset_version=17,
                          dynamic_axes={name: {0: "batch"} for name in ("image", *OUTPUTS)})


def main(args) -> int:
    ckpt = Path(args.checkpoint)
    if (wanted := exported.wanted_formats(PROG, args.formats, FORMATS)) is None:
        return 2
    try:
        net, meta = load_checkpoint(ckpt)
    except (CheckpointError, FileNotFoundError) as exc:
        die(PROG, str(exc), 1)
    size = net.image_size
    out = Path(args.output or ckpt / "export")
    out.mkdir(parents=True, exist_ok=True)
    targets = {f: out / f"{infer.MODEL}{exported.SUFFIXES[f]}" for f in wanted}
    for fmt in wanted:
        write(fmt, net, targets[fmt])

    root = Path(args.data_dir or meta.get("data_dir") or mini.ensure_openimages())
    try:
        coco = load_annotations(openimages.annotation_file(root))
        images = qsl_images(coco)[: args.parity_images or None]
        preset = infer.preset(size)
        batch = preset.normalize(np.stack([preset.geometry(read_rgb(openimages.image_folder(root) / img["file_name"]))
                                           for img in images]))
    except DataError as exc:
        die(PROG, str(exc), 1)
    indices = range(len(images))

    def outputs_of(fmt: str) -> list[np.ndarray]:
        return backend_outputs(fmt, targets[fmt], batch, threads=args.threads)

    def respond(outputs) -> list[np.ndarray]:
        logits, offsets = outputs
        return infer.responses(logits, offsets, size, indices)

    record = {"checkpoint": str(ckpt), "model": infer.MODEL, "image_size": size, "preset": "imagenet"}
    return detection_parity(PROG, out, record, coco, eager_outputs(net, batch), targets, outputs_of, respond)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
