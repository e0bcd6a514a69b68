"""Run any model file under LoadGen on synthetic inputs: ``python -m loadgen --backend onnxruntime --model m.onnx``.

For measuring a backend and the harness without a dataset. The inputs are random (labelled synthetic in the
results); the benchmark folders' ``infer.py`` run real datasets.

No model's rules apply unless asked for: the default ``--model-name`` is "synthetic", a name LoadGen's mlperf.conf
does not know, so only its rules for every model (``*.Scenario.key``) apply. ``--model-name resnet50`` gives a
run ResNet-50's rules (Server bound, sample counts).
"""

from __future__ import annotations

import functools
import sys

import numpy as np

from loadgen import cli
from loadgen.backends import BACKENDS
from loadgen.harness import InMemoryTask

#: The model name LoadGen's mlperf.conf does not know: its rules for every model apply, no model's own.
NEUTRAL_MODEL_NAME = "synthetic"
DEFAULT_INPUT_SHAPE = [3, 224, 224]
PROFILES = {
    "null": {"backend": "null", "input_shape": [1]},
    "onnxruntime": {"backend": "onnxruntime"},
}
FALLBACKS = {"backend": "onnxruntime", "model_name": NEUTRAL_MODEL_NAME, "input_shape": DEFAULT_INPUT_SHAPE}


def get_args_parser(add_help: bool = True) -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m loadgen", description=__doc__, add_help=add_help)
    cli.add_inference_args(parser, backends=list(BACKENDS),
                           model_name_default=f"{NEUTRAL_MODEL_NAME}, unknown to mlperf.conf: no model's rules")
    g = parser.add_argument_group("synthetic inputs")
    g.add_argument("--input-shape", type=cli.csv_list(int), default=None,
                   help="shape of one sample, without the batch axis (default: from --profile, else "
                        f"{','.join(map(str, DEFAULT_INPUT_SHAPE))})")
    g.add_argument("--dtype", default="float32", choices=["float32", "float16", "int64", "int32", "uint8"],
                   help="input element type (default: float32)")
    g.add_argument("--dataset-size", type=cli.positive(int), default=1024,
                   help="synthetic samples in the QSL (default: 1024)")
    g.add_argument("--seed", type=int, default=0, help="seed of the synthetic inputs (default: 0)")
    return parser


def _synthetic_sample(i: int, shape, dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, i])
    return rng.standard_normal(shape).astype(dtype) if dtype.startswith("float") else \
        rng.integers(0, 100, size=shape).astype(dtype)


def synthetic_task(args) -> InMemoryTask:
    """The task factory: ``--dataset-size`` random samples of ``--input-shape``, the same for a seed."""
    make = functools.partial(_synthetic_sample, shape=args.input_shape, dtype=args.dtype, seed=args.seed)
    return InMemoryTask(make, total_count=args.dataset_size)


def main(args) -> int:
    return cli.execute(args, synthetic_task, prog="python -m loadgen")


if __name__ == "__main__":
    sys.exit(main(cli.parse_args(get_args_parser(), sys.argv[1:], PROFILES, fallbacks=FALLBACKS)))
