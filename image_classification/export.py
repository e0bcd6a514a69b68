"""Checkpoint -> ``.pt2`` (torch.export), ONNX, TF SavedModel and TFLite, with a parity check against PyTorch.

ONNX comes from ``torch.onnx.export``. TensorFlow gets a weight-transfer twin: the PyTorch model is traced with
``torch.fx`` and each node becomes the equivalent TF op (convolution with PyTorch's symmetric padding, depthwise
convolution, inference-mode batch norm, pooling, linear, residual add), with the trained weights copied in. The
twin takes NHWC input, TF's native layout; TFLite is converted from its SavedModel. We wrote the twin because no
maintained torch-to-TF converter co-installs with the pinned stack (onnx2tf pins numpy 1.26 and TF 2.19; nobuco
needs Keras 2 internals).

Every format is checked on the validation set: top-1 predictions must agree with PyTorch's on >= 99 % of images.

    python -m image_classification.export --checkpoint results/image_classification/train
"""

from __future__ import annotations

import argparse
import operator
import sys
from pathlib import Path

import numpy as np
import torch

from image_classification import data
from image_classification.train import load_checkpoint
from loadgen import report
from loadgen.cli import ArgumentParser, existing_dir, positive
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


class TfTwin:
    """The PyTorch graph (torch.fx) replayed with TF ops on NHWC tensors, with PyTorch's weights."""

    def __init__(self, model: torch.nn.Module, tf) -> None:
        self.tf = tf
        self.graph = torch.fx.symbolic_trace(model).graph
        self.modules = dict(model.named_modules())
        self.consts: dict[str, object] = {}
        for name, module in self.modules.items():
            self._prepare(name, module)

    def _const(self, key: str, value: np.ndarray):
        self.consts[key] = self.tf.constant(np.ascontiguousarray(value, dtype=np.float32))
        return self.consts[key]

    def _prepare(self, name: str, m: torch.nn.Module) -> None:
        if isinstance(m, torch.nn.Conv2d):
            w = m.weight.detach().numpy()
            if m.groups == 1:
                self._const(f"{name}.w", w.transpose(2, 3, 1, 0))  # out,in,kh,kw -> kh,kw,in,out
            elif m.groups == m.in_channels == m.out_channels:
                self._const(f"{name}.w", w.transpose(2, 3, 0, 1))  # out,1,kh,kw -> kh,kw,in,1 (depthwise)
            else:
                raise NotImplementedError(f"{name}: grouped convolution with groups={m.groups}")
            if m.bias is not None:
                self._const(f"{name}.b", m.bias.detach().numpy())
        elif isinstance(m, torch.nn.BatchNorm2d):
            scale = m.weight.detach().numpy() / np.sqrt(m.running_var.numpy() + m.eps)
            self._const(f"{name}.scale", scale)
            self._const(f"{name}.shift", m.bias.detach().numpy() - m.running_mean.numpy() * scale)
        elif isinstance(m, torch.nn.Linear):
            self._const(f"{name}.w", m.weight.detach().numpy().T)
            self._const(f"{name}.b", m.bias.detach().numpy())

    def _module(self, name: str, x):
        tf, m = self.tf, self.modules[name]
        if isinstance(m, torch.nn.Conv2d):
            (ph, pw), (sh, sw) = m.padding, m.stride
            x = tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]]) if ph or pw else x
            if m.groups == 1:
                y = tf.nn.conv2d(x, self.consts[f"{name}.w"], [1, sh, sw, 1], "VALID")
            else:
                y = tf.nn.depthwise_conv2d(x, self.consts[f"{name}.w"], [1, sh, sw, 1], "VALID")
            return y + self.consts[f"{name}.b"] if m.bias is not None else y
        if isinstance(m, torch.nn.BatchNorm2d):
            return x * self.consts[f"{name}.scale"] + self.consts[f"{name}.shift"]
        if isinstance(m, torch.nn.ReLU):
            return tf.nn.relu(x)
        if isinstance(m, torch.nn.MaxPool2d):
            k, s, p = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride, m.padding))
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=-np.inf) if p else x
            return tf.nn.max_pool2d(x, k, s, "VALID")
        if isinstance(m, torch.nn.AdaptiveAvgPool2d):
            if tuple(np.atleast_1d(m.output_size)) not in ((1,), (1, 1)):
                raise NotImplementedError(f"{name}: adaptive pooling to {m.output_size}")
            return tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        if isinstance(m, torch.nn.Linear):
            return tf.matmul(x, self.consts[f"{name}.w"]) + self.consts[f"{name}.b"]
        raise NotImplementedError(f"{name}: no TF twin for {type(m).__name__}")

    def __call__(self, x):
        tf = self.tf
        env = {}
        for node in self.graph.nodes:
            args = [env[a.name] if isinstance(a, torch.fx.Node) else a for a in node.args]
            if node.op == "placeholder":
                env[node.name] = x
            elif node.op == "call_module":
                env[node.name] = self._module(node.target, args[0])
            elif node.op == "call_function" and node.target in (operator.add, operator.iadd, torch.add):
                env[node.name] = tf.add(args[0], args[1])
            elif node.op == "call_function" and node.target is torch.flatten:
                # After global pooling H = W = 1, so NHWC and NCHW flatten to the same order.
                env[node.name] = tf.reshape(args[0], [tf.shape(args[0])[0], -1])
            elif node.op == "output":
                return env[node.args[0].name]
            else:
                raise NotImplementedError(f"no TF twin for {node.op} {node.target}")
        raise ValueError("graph without output")


def export_tf(model: torch.nn.Module, size: int, path: Path, tflite_path: Path | None) -> None:
    from loadgen.backends.tf import tf  # ordered after Triton, see loadgen/backends/tf.py

    twin = TfTwin(model, tf)
    module = tf.Module()
    module.consts = list(twin.consts.values())
    module.serve = tf.function(lambda x: {"logits": twin(x)},
                               input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="input")])
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    if tflite_path is not None:
        tflite_path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(path)).convert())


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
