"""TensorFlow backend: a SavedModel's ``serving_default`` signature, on CPU or GPU."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import numpy as np

if importlib.util.find_spec("triton") is not None:
    # Triton (installed with the CUDA build of torch) and TensorFlow both bundle LLVM. Loading TensorFlow first
    # makes Triton's later load segfault, which torch.export triggers (seen with tensorflow-cpu 2.21 and
    # triton 3.8). Loading Triton first works both ways. Import TensorFlow from this module to get the order.
    import triton  # noqa: F401

import tensorflow as tf  # noqa: E402

from loadgen.backends.base import Backend, BackendError, pick, require_file


class TensorflowBackend(Backend):
    name = "tf"
    input_layout = "NHWC"

    def version(self) -> str:
        return tf.__version__

    def load(self, path: str) -> TensorflowBackend:
        require_file(path, folder=True)
        # TF's thread pools are per process and fixed once the runtime starts; a later change is refused,
        # which is harmless when the same count was set before.
        try:
            tf.config.threading.set_intra_op_parallelism_threads(self.config.threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass
        if self.config.device == "gpu":
            if not tf.config.list_physical_devices("GPU"):
                raise BackendError("device gpu needs TensorFlow with a visible GPU; tensorflow-cpu has none")
            self.tf_device = "/GPU:0"
        else:
            self.tf_device = "/CPU:0"
        try:
            loaded = tf.saved_model.load(path)
        except (OSError, ValueError, tf.errors.OpError) as exc:
            raise BackendError(f"{path}: TensorFlow cannot load it: {exc}") from exc
        if "serving_default" not in loaded.signatures:
            raise BackendError(f"{path}: the SavedModel has no serving_default signature")
        self._loaded = loaded  # keeps the variables the signature closes over alive
        self.fn = loaded.signatures["serving_default"]
        _, kwargs = self.fn.structured_input_signature
        self.input_names = pick(sorted(kwargs), self.config.inputs, "input", path)
        self.output_names = pick(sorted(self.fn.structured_outputs), self.config.outputs, "output", path)
        return self

    def predict(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        with tf.device(self.tf_device):
            out = self.fn(**{n: tf.constant(f) for n, f in zip(self.input_names, feeds, strict=True)})
        return [out[n].numpy() for n in self.output_names]
