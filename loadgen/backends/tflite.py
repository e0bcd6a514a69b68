"""TFLite backend through ai-edge-litert (``tflite-runtime`` crashes with numpy 2). CPU only.

An interpreter is not thread-safe, so each worker thread gets its own, and each resizes its input to the batch.

A model converted from a SavedModel carries its ``serving_default`` signature: inputs and outputs are then named by
the signature's keys and listed in their sorted order, as the tf backend lists them, because the flat tensor list's
order is the converter's (SSD's ``locs`` and ``scores`` come out as scores first). A model without a signature keeps
its tensor names, in the flat order.

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
        inputs, outputs = self._tensor_indices(interp)
        self.input_names = pick(list(inputs), self.config.inputs, "input", path)
        self.output_names = pick(list(outputs), self.config.outputs, "output", path)
        self._input_index = [inputs[n] for n in self.input_names]
        self._output_index = [outputs[n] for n in self.output_names]
        return self

    @staticmethod
    def _tensor_indices(interp) -> tuple[dict[str, int], dict[str, int]]:
        """{name: tensor index} of the inputs and of the outputs: the serving signature's keys in sorted order
        when the model has a signature, else the tensor names in the flat order."""
        signatures = interp.get_signature_list()
        if signatures:
            key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
            runner = interp.get_signature_runner(key)
            ins, outs = runner.get_input_details(), runner.get_output_details()
            return ({k: ins[k]["index"] for k in sorted(ins)}, {k: outs[k]["index"] for k in sorted(outs)})
        return ({d["name"]: d["index"] for d in interp.get_input_details()},
                {d["name"]: d["index"] for d in interp.get_output_details()})

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
            self._local.shapes = {d["index"]: tuple(d["shape"]) for d in interp.get_input_details()}
        return interp

    def predict(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        interp = self._interpreter()
        shapes = self._local.shapes
        resized = False
        for index, feed in zip(self._input_index, feeds, strict=True):
            if shapes[index] != feed.shape:
                interp.resize_tensor_input(index, feed.shape, strict=False)
                resized = True
        if resized:
            interp.allocate_tensors()
            self._local.shapes = {d["index"]: tuple(d["shape"]) for d in interp.get_input_details()}
        for index, feed in zip(self._input_index, feeds, strict=True):
            interp.set_tensor(index, feed)
        interp.invoke()
        return [interp.get_tensor(index) for index in self._output_index]
