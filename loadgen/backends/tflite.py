"""TFLite backend through ai-edge-litert (``tflite-runtime`` crashes with numpy 2). CPU only.

An interpreter is not thread-safe, so each worker thread gets its own, and each resizes its input to the batch.

The runtime's start-up notices ("Created TensorFlow Lite XNNPACK delegate") are hidden unless the environment has
``MLPERF_TF_VERBOSE=1`` or sets ``TF_CPP_MIN_LOG_LEVEL`` itself (see :func:`loadgen.backends.quiet.quiet_tensorflow`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from loadgen.backends.base import Backend, BackendError, pick, require_file
from loadgen.backends.quiet import quiet_tensorflow

quiet_tensorflow()  # before the runtime loads: it reads the level once
from ai_edge_litert import interpreter as litert  # noqa: E402


class TfliteBackend(Backend):
    name = "tflite"
    input_layout = "NHWC"

    def version(self) -> str:
        from importlib.metadata import version

        return version("ai-edge-litert")

    def load(self, path: str) -> TfliteBackend:
        require_file(path)
        if self.config.device == "gpu":
            raise BackendError("the tflite backend runs on cpu only (ai-edge-litert ships no GPU delegate here)")
        self.path = path
        self._local = threading.local()
        interp = self._interpreter()  # load once now so a bad file fails before the run
        self.input_names = pick([d["name"] for d in interp.get_input_details()], self.config.inputs, "input", path)
        self.output_names = pick([d["name"] for d in interp.get_output_details()], self.config.outputs,
                                 "output", path)
        return self

    def _interpreter(self):
        interp = getattr(self._local, "interp", None)
        if interp is None:
            try:
                interp = litert.Interpreter(model_path=self.path, num_threads=self.config.threads)
                # A custom op (code the runtime does not have) fails here, not in the constructor.
                interp.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise BackendError(f"{self.path}: TFLite cannot load it: {first}") from exc
            self._local.interp = interp
            self._local.inputs = {d["name"]: d for d in interp.get_input_details()}
            self._local.outputs = {d["name"]: d["index"] for d in interp.get_output_details()}
        return interp

    def predict(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        interp = self._interpreter()
        details = self._local.inputs
        resized = False
        for name, feed in zip(self.input_names, feeds, strict=True):
            if tuple(details[name]["shape"]) != feed.shape:
                interp.resize_tensor_input(details[name]["index"], feed.shape, strict=False)
                resized = True
        if resized:
            interp.allocate_tensors()
            self._local.inputs = details = {d["name"]: d for d in interp.get_input_details()}
        for name, feed in zip(self.input_names, feeds, strict=True):
            interp.set_tensor(details[name]["index"], feed)
        interp.invoke()
        return [interp.get_tensor(self._local.outputs[n]) for n in self.output_names]
