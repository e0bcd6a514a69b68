"""The harness demo: a small ONNX MLP on synthetic inputs, through LoadGen in Offline and SingleStream.

It shows the harness end to end, offline, in seconds. The weights and inputs are random (synthetic): the figures
are about the harness, not a model. The image_classification demo, trained on real images, supersedes it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from loadgen import cli
from loadgen.__main__ import FALLBACKS, get_args_parser, synthetic_task


def tiny_onnx_mlp(path: Path, features: int = 64, hidden: int = 256, classes: int = 10, seed: int = 0) -> Path:
    """Write a 2-layer MLP (random weights) as ONNX with a dynamic batch axis."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array(rng.standard_normal((features, hidden)).astype(np.float32) * 0.1, "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((hidden, classes)).astype(np.float32) * 0.1, "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["logits"]),
             helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0)]
    graph = helper.make_graph(
        nodes, "tiny_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"])], initializer=[w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def main(output: str = "results/demo") -> int:
    out = Path(output)
    model = tiny_onnx_mlp(out / "tiny_mlp.onnx")
    print(f"demo: synthetic inputs and a random-weight MLP ({model}); figures measure the harness")
    # Expected rates sized to this tiny model on 2 cores, so LoadGen plans a run of about the asked duration.
    runs = [("Offline", "300000", []), ("SingleStream", "40000", []),
            ("Offline", "300000", ["--accuracy"]), ("SingleStream", "40000", ["--accuracy"])]
    for scenario, qps, mode in runs:
        argv = ["--backend", "onnxruntime", "--model", str(model),
                "--input-shape", "64", "--dataset-size", "256", "--scenario", scenario,
                "--time", "1", "--qps", qps, "--output", str(out), *mode]
        args = cli.parse_args(get_args_parser(), argv, fallbacks=FALLBACKS)
        code = cli.execute(args, synthetic_task, prog="make demo")
        if code:
            return code
    print(f"demo: LoadGen logs, results.json and latency_histogram.png under {out}/<scenario>/<mode>/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
