"""ImageNet classification under LoadGen: the QSL over the validation set, with the reference's profiles.

    python -m image_classification.infer --profile resnet50-onnxruntime --scenario Offline --accuracy

Without flags it reads the embedded mini set and the models ``make demo`` exported; ``--dataset-path`` and
``--model`` (or DATA_DIR / MODEL_DIR in run_local.sh) point it at the real ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from image_classification import accuracy, data, mini
from loadgen import cli, exported
from loadgen.accuracy import Accuracy
from loadgen.backends import BACKENDS, backend_class
from loadgen.harness import InMemoryTask

DEFAULT_MODEL_DIR = Path("results/image_classification/train/export")
# The reference's profiles: <model>-<backend>. Our models are trained with torchvision's preprocessing; the
# reference's own model files use the "vgg" (ResNet-50) and "mobilenet" presets, which --preset selects.
PROFILES = {f"{arch}-{backend}": {"backend": backend, "arch": arch, "model_name": arch}
            for arch in ("resnet50", "mobilenet") for backend in exported.SUFFIXES}


def get_args_parser(add_help: bool = True) -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m image_classification.infer", description=__doc__, add_help=add_help)
    cli.add_inference_args(parser, backends=list(BACKENDS))
    g = parser.add_argument_group("ImageNet")
    g.add_argument("--arch", choices=["resnet50", "mobilenet"], default=None,
                   help="architecture, for the default model file name (default: from --profile, else resnet50)")
    g.add_argument("--model-dir", default=str(DEFAULT_MODEL_DIR),
                   help=f"folder of exported models, named <arch>.onnx and so on; --model overrides "
                        f"(default: {DEFAULT_MODEL_DIR})")
    g.add_argument("--dataset-path", type=cli.existing_dir, default=None,
                   help=f"ImageNet-format root or its val/ folder (default: the mini set, {mini.DEFAULT_OUT})")
    g.add_argument("--dataset-list", type=cli.existing_file, default=None,
                   help="val_map.txt (default: <dataset-path>/val_map.txt)")
    g.add_argument("--data-format", choices=["NCHW", "NHWC"], default=None,
                   help="input layout (default: the backend's, NCHW for pytorch/onnxruntime, NHWC for tf/tflite)")
    g.add_argument("--preset", choices=list(data.presets()), default=None,
                   help="preprocessing (default: the model's export.json, else torchvision)")
    g.add_argument("--image-size", type=cli.positive(int), default=None,
                   help="crop size (default: the model's export.json, else 224)")
    g.add_argument("--cache", type=cli.positive(int, allow_zero=True), default=0,
                   help="use the preprocessing cache: 1 to use it, 0 to preprocess in memory (default: 0)")
    g.add_argument("--cache-dir", default="build/image_classification/cache",
                   help="where --cache 1 keeps preprocessed images (default: build/image_classification/cache)")
    return parser


class ImageNetTask(InMemoryTask):
    """Validation images, preprocessed up to the uint8 crop when LoadGen loads them; normalised per batch."""

    def __init__(self, samples, preset: data.EvalPreset, layout: str, images=None) -> None:
        self.preset, self.layout = preset, layout
        self.labels = [label for _, label in samples]
        if images is not None:
            make = images.__getitem__
        else:
            def make(i: int) -> np.ndarray:
                return preset.geometry(data.load_image(samples[i][0]))
        super().__init__(make, total_count=len(samples))

    def inputs(self, indices: np.ndarray):
        return [self.preset.normalize(super().inputs(indices)[0], self.layout)]

    def postprocess(self, outputs, indices):
        return outputs[0].argmax(axis=1).astype(np.int64)

    def accuracy(self, accuracy_log: Path) -> Accuracy:
        return accuracy.top1(accuracy_log, self.labels)

    def accuracy_text(self, result: Accuracy) -> str:
        return accuracy.line(result)


def resolve(args) -> None:
    """Fill what the user left out: model file, mlperf.conf's model name, image size and preset from the
    export, data format."""
    args.arch = args.arch or "resnet50"
    args.model_name = args.model_name or args.arch
    meta = exported.resolve(args, args.arch)
    args.image_size = args.image_size or meta.get("image_size", 224)
    args.preset = args.preset or meta.get("preset", "torchvision")
    if args.data_format is None:
        args.data_format = backend_class(args.backend).input_layout or "NCHW"


def make_task(args) -> ImageNetTask:
    """The task factory ``cli.execute`` calls in the process of each run."""
    root = Path(args.dataset_path) if args.dataset_path else mini.ensure()
    samples = data.val_samples(root, args.dataset_list)[: args.count or None]
    preset = data.presets(args.image_size)[args.preset]
    images = None
    if args.cache:
        images = np.load(data.build_cache(samples, preset, args.cache_dir) / "images.npy", mmap_mode="r",
                         allow_pickle=False)  # numpy's default too; said here because this file is a cache
    return ImageNetTask(samples, preset, args.data_format, images)


def main(args) -> int:
    prog = "python -m image_classification.infer"
    return cli.resolve_and_execute(args, resolve, make_task, prog)


if __name__ == "__main__":
    ns = cli.parse_args(get_args_parser(), sys.argv[1:], PROFILES, fallbacks={"backend": "onnxruntime"})
    sys.exit(main(ns))
