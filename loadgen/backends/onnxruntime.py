"""ONNX Runtime backend: CPU, or the CUDA execution provider with ``device=gpu``.

A model's external tensor data must lie in its own folder (:func:`loadgen.backends.model_files.check_onnx`):
ONNX Runtime would read any path the file names.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from loadgen.backends.base import Backend, BackendError, pick, require_file
from loadgen.backends.model_files import check_onnx


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    input_layout = "NCHW"

    def version(self) -> str:
        return ort.__version__

    def load(self, path: str) -> OnnxRuntimeBackend:
        require_file(path)
        check_onnx(path)
        opts = ort.SessionOptions()
        # The reference never passed --threads to ORT, so every worker ran a pool as large as the machine.
        # Here the harness divides the cores between workers and gives each session its share.
        opts.intra_op_num_threads = self.config.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if self.config.device == "gpu":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendError("device gpu needs onnxruntime-gpu with the CUDA execution provider; "
                                   f"this onnxruntime has {', '.join(ort.get_available_providers())}")
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(path, sess_options=opts, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for bad files
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BackendError(f"{path}: onnxruntime cannot load it: {first}") from exc
        self.input_names = pick([i.name for i in self.session.get_inputs()], self.config.inputs, "input", path)
        self.output_names = pick([o.name for o in self.session.get_outputs()], self.config.outputs, "output", path)
        return self

    def predict(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.output_names, dict(zip(self.input_names, feeds, strict=True)))
