"""SSD checkpoint -> ``.pt2`` (torch.export), ONNX, TF SavedModel and TFLite, each checked against PyTorch.

The checkpoint is the training driver's folder (model.safetensors + model.json naming the ``model``). Every graph
ends at the raw head outputs ``locs (N, 4, B)`` and ``scores (N, C, B)`` for a fixed square input (``--image-size``,
by default the size the model is benchmarked at: 1200 for ssd-resnet34, 300 for ssd-mobilenet) and any batch.
The export folder holds ``<model>.pt2``, ``<model>.onnx``, ``<model>_savedmodel/``, ``<model>.tflite`` and one
``export.json`` of what inference must match (model, size, preset) and what the parity check measured.

Parity: each format runs on the mini (or given) val set through the harness's own backend, and its detections go
through the same ``boxes.postprocess`` as PyTorch's. It passes when its COCO mAP is within 0.5 points of
PyTorch's and >= 99 % of detections are matched (same image and class, IoU >= 0.9, score within 0.02).

    python -m single_stage_detector.export --checkpoint results/single_stage_detector/train/ssd-resnet34
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from loadgen import exported, report
from loadgen.cli import ArgumentParser, existing_dir, positive
from loadgen.data import DataError, annotation_file, image_folder, load_annotations
from loadgen.data.coco_accuracy import accuracy_from_responses, qsl_images
from loadgen.training.checkpoint import CheckpointError, load_model
from single_stage_detector import infer, mini, models
from single_stage_detector.data.presets import INFERENCE_SIZE, MODEL_PRESET, load_image, presets

PROG = "python -m single_stage_detector.export"
MAP_TOLERANCE = 0.5  # mAP points (the bar)
MATCHED = 0.99  # share of detections an export must reproduce (the bar)
MATCH_IOU, MATCH_SCORE = 0.9, 0.02  # what "the same detection" means between two runtimes


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
    parser = ArgumentParser(prog=PROG, description=__doc__, add_help=add_help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=existing_dir, required=True,
                        help="folder with model.safetensors and model.json (default: required)")
    parser.add_argument("--output", default=None, help="folder for the exported models (default: <checkpoint>/export)")
    parser.add_argument("--formats", default="pytorch,onnxruntime",
                        help=f"comma list from {','.join(FORMATS)} (default: pytorch,onnxruntime)")
    parser.add_argument("--image-size", type=positive(int), default=None,
                        help="square input side of the graphs (default: 1200 for ssd-resnet34, 300 for ssd-mobilenet)")
    parser.add_argument("--data-dir", type=existing_dir, default=None,
                        help="COCO root whose val2017 the parity check runs on (default: the checkpoint's "
                             "data_dir, else the mini set)")
    parser.add_argument("--parity-images", type=positive(int, allow_zero=True), default=0,
                        help="val images in the parity check, 0 for all (default: 0)")
    parser.add_argument("--threads", type=positive(int), default=2,
                        help="CPU threads of each backend in the parity check (default: 2)")
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


def run_backend(name: str, path: Path, images: np.ndarray, threads: int, batch: int = 8) -> list[np.ndarray]:
    """locs and scores of ``images`` (NCHW float32) from the exported ``path`` run by backend ``name``."""
    from loadgen.backends import BackendConfig, create_backend

    backend = create_backend(name, BackendConfig(threads=threads)).load(str(path))
    if backend.input_layout == "NHWC":
        images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    parts = [backend.predict([images[i:i + batch]]) for i in range(0, len(images), batch)]
    return [np.concatenate([p[k] for p in parts]) for k in range(2)]


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
    rows of 7 (:func:`infer.detection_rows`); 1.0 when neither has any."""
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


def main(args) -> int:
    ckpt = Path(args.checkpoint)
    wanted = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(wanted) - set(FORMATS))
    if unknown or not wanted:
        print(f"{PROG}: error: unknown format(s) {', '.join(unknown) or '(none given)'} "
              f"(choose from {', '.join(FORMATS)})", file=sys.stderr)
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
    with torch.inference_mode():
        outs = [model(torch.from_numpy(batch[i:i + 8])) for i in range(0, len(batch), 8)]
    reference = infer.responses(torch.cat([o[0] for o in outs]).numpy(), torch.cat([o[1] for o in outs]).numpy(),
                                defaults, indices)
    ref_map = accuracy_from_responses(dict(enumerate(reference)), coco)[0]["mAP"]
    parity = {}
    for fmt in wanted:
        locs, scores = run_backend(fmt, targets[fmt], batch, args.threads)
        got = infer.responses(locs, scores, defaults, indices)
        parity[fmt] = {"mAP": accuracy_from_responses(dict(enumerate(got)), coco)[0]["mAP"],
                       "matched": matched_share(reference, got), "detections": int(sum(len(g) for g in got) // 7)}
    report.write_json_atomic(out / exported.METADATA, {
        "checkpoint": str(ckpt), "model": name, "image_size": size, "preset": preset_name,
        "files": {f: targets[f].name for f in wanted}, "images": len(images), "pytorch_mAP": ref_map,
        "pytorch_detections": int(sum(len(r) for r in reference) // 7), "parity": parity})
    print(f"export: pytorch (eager)  mAP {ref_map:.3f} on {len(images)} images")
    bad = []
    for fmt in wanted:
        p = parity[fmt]
        print(f"export: {fmt:12s} {targets[fmt]}  mAP {p['mAP']:.3f}, {100 * p['matched']:.2f} % of detections "
              "matched")
        if abs(p["mAP"] - ref_map) > MAP_TOLERANCE or p["matched"] < MATCHED:
            bad.append(fmt)
    if bad:
        print(f"{PROG}: error: {', '.join(bad)} differ from PyTorch (mAP beyond {MAP_TOLERANCE} points or under "
              f"{100 * MATCHED:.0f} % of detections matched); see {out / exported.METADATA}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
