"""Checkpoint -> ``.pt2`` (torch.export), ONNX, TF SavedModel and TFLite, with a parity check against PyTorch.

ONNX comes from ``torch.onnx.export``. TensorFlow gets the shared weight-transfer twin (``loadgen.nets.tf_twin``):
the PyTorch model is traced with ``torch.fx`` and each node becomes the equivalent TF op, with the trained weights
copied in. The twin takes NHWC input, TF's native layout; TFLite is converted from its SavedModel.

Every format is checked on the validation set: top-1 predictions must agree with PyTorch's on >= 99 % of images.

    python -m image_classification.export --checkpoint results/image_classification/train
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from image_classification import data
from image_classification.train import load_checkpoint
from loadgen import report
from loadgen.cli import ArgumentParser, existing_dir, positive
from loadgen.nets import tf_twin
from loadgen.training.checkpoint import CheckpointError

FORMATS = ("pytorch", "onnxruntime", "tf", "tflite")
AGREEMENT = 0.99  # the bar: top-1 of every format agrees with PyTorch on >= 99 % of the val images


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    # loadgen's parser prints a usage error on one line (a missing --checkpoint: exit 2).
    parser = ArgumentParser(prog="python -m image_classification.export", description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=existing_dir, default="results/image_classification/train",
                        help="folder with model.safetensors and model.json "
                             "(default: results/image_classification/train)")
    parser.add_argument("--output", default=None, help="folder for the exported models (default: <checkpoint>/export)")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma list (default: {','.join(FORMATS)})")
    parser.add_argument("--data-dir", type=existing_dir, default=None,
                        help="val set for the parity check (default: the checkpoint's)")
    parser.add_argument("--parity-images", type=positive(int, allow_zero=True), default=0,
                        help="val images in the parity check, 0 for all (default: 0)")
    return parser


def paths(out: Path, model: str) -> dict[str, Path]:
    return {"pytorch": out / f"{model}.pt2", "onnxruntime": out / f"{model}.onnx",
            "tf": out / f"{model}_savedmodel", "tflite": out / f"{model}.tflite"}


def export_pytorch(model: torch.nn.Module, size: int, path: Path) -> None:
    example = (torch.zeros(2, 3, size, size),)
    batch = torch.export.Dim("batch", min=1, max=4096)
    torch.export.save(torch.export.export(model, example, dynamic_shapes=({0: batch},)), path)


def export_onnx(model: torch.nn.Module, size: int, path: Path) -> None:
    torch.onnx.export(model, (torch.zeros(1, 3, size, size),), path, dynamo=False, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=17)


def export_tf(model: torch.nn.Module, size: int, path: Path, tflite_path: Path | None) -> None:
    tf_twin.save(model, size, path, tflite_path, output_names=("logits",))


def parity(exported: dict[str, Path], reference: np.ndarray, batch_nchw: np.ndarray) -> dict[str, float]:
    """Share of images whose top-1 from each exported format, run by its backend, equals PyTorch's."""
    from loadgen.backends.parity import exported_outputs

    outputs = exported_outputs(exported, [batch_nchw], images_nchw=True)
    return {fmt: float((logits.argmax(1) == reference).mean()) for fmt, logits in outputs.items()}


def main(args) -> int:
    ckpt = Path(args.checkpoint)
    try:
        model, meta = load_checkpoint(ckpt)
    except (CheckpointError, FileNotFoundError) as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, RuntimeError) as exc:  # model.json without a field, or weights of another shape
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"export: error: {ckpt}: the checkpoint does not describe a model we can build "
              f"({type(exc).__name__}: {first})", file=sys.stderr)
        return 1
    out = Path(args.output or ckpt / "export")
    out.mkdir(parents=True, exist_ok=True)
    wanted = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = set(wanted) - set(FORMATS)
    if unknown:
        print(f"export: error: unknown format(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    size, target = meta["image_size"], paths(out, meta["model"])
    if "pytorch" in wanted:
        export_pytorch(model, size, target["pytorch"])
    if "onnxruntime" in wanted:
        export_onnx(model, size, target["onnxruntime"])
    if "tf" in wanted or "tflite" in wanted:
        export_tf(model, size, target["tf"], target["tflite"] if "tflite" in wanted else None)
    root = Path(args.data_dir or meta["data_dir"])
    preset = data.presets(size)[meta["preset"]]
    samples = data.val_samples(root)[: args.parity_images or None]
    batch = preset.normalize(np.stack([preset.geometry(data.load_image(p)) for p, _ in samples]))
    with torch.inference_mode():
        reference = model(torch.from_numpy(batch)).argmax(1).numpy()
    agreement = parity({f: target[f] for f in wanted}, reference, batch)
    report.write_json_atomic(out / "export.json", {"checkpoint": str(ckpt), "model": meta["model"],
                                                   "image_size": size, "preset": meta["preset"],
                                                   "num_classes": meta["num_classes"],
                                                   "files": {f: target[f].name for f in wanted},
                                                   "top1_agreement_with_pytorch": agreement,
                                                   "images": len(samples)})
    for fmt in wanted:
        print(f"export: {fmt:12s} {target[fmt]}  top-1 agrees with PyTorch on {100 * agreement[fmt]:.2f} % "
              f"of {len(samples)} images")
    bad = [f for f in wanted if agreement[f] < AGREEMENT]
    if bad:
        print(f"export: error: {', '.join(bad)} below {100 * AGREEMENT:.0f} % agreement", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
