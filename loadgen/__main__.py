"""Run any model file under LoadGen on synthetic inputs: ``python -m loadgen --backend onnxruntime --model m.onnx``.

For measuring a backend and the harness without a dataset. The inputs are random (labelled synthetic in the
results); the benchmark folders' ``infer.py`` run real datasets.
"""

from __future__ import annotations

import sys

import numpy as np

from loadgen import cli
from loadgen.backends import BACKENDS
from loadgen.harness import InMemoryTask

PROFILES = {
    "null": {"backend": "null", "model_name": "resnet50", "input_shape": [1]},
    "resnet50-onnxruntime": {"backend": "onnxruntime", "model_name": "resnet50", "input_shape": [3, 224, 224]},
}


def get_args_parser(add_help: bool = True) -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m loadgen", description=__doc__, add_help=add_help)
    cli.add_inference_args(parser, backends=list(BACKENDS))
    g = parser.add_argument_group("synthetic inputs")
    g.add_argument("--input-shape", type=cli.csv_list(int), default=None,
                   help="shape of one sample, without the batch axis (default: from --profile, else 3,224,224)")
    g.add_argument("--dtype", default="float32", choices=["float32", "float16", "int64", "int32", "uint8"],
                   help="input element type (default: float32)")
    g.add_argument("--dataset-size", type=cli.positive(int), default=1024,
                   help="synthetic samples in the QSL (default: 1024)")
    g.add_argument("--seed", type=int, default=0, help="seed of the synthetic inputs (default: 0)")
    return parser


def synthetic_task(shape, dtype: str, size: int, seed: int, model_name: str) -> InMemoryTask:
    def make(i: int) -> np.ndarray:
        rng = np.random.default_rng([seed, i])
        return rng.standard_normal(shape).astype(dtype) if dtype.startswith("float") else \
            rng.integers(0, 100, size=shape).astype(dtype)

    return InMemoryTask(make, total_count=size, model_name=model_name)


def main(args) -> int:
    task = synthetic_task(args.input_shape, args.dtype, args.dataset_size, args.seed, args.model_name)
    return cli.execute(args, task, prog="python -m loadgen")


if __name__ == "__main__":
    parser = get_args_parser()
    ns = cli.parse_args(parser, sys.argv[1:], PROFILES,
                        fallbacks={"backend": "onnxruntime", "model_name": "resnet50", "input_shape": [3, 224, 224]})
    sys.exit(main(ns))
