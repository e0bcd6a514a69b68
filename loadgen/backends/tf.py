"""TensorFlow backend: a SavedModel's ``serving_default`` signature, on CPU or GPU.

TensorFlow's start-up chatter (oneDNN notices, cpu_feature_guard, absl) is hidden unless ``MLPERF_TF_VERBOSE=1``
is set or ``TF_CPP_MIN_LOG_LEVEL`` is set by the user (see :mod:`loadgen.backends.quiet`). A SavedModel whose
graph would write files or call Python on load or when served is refused (``model_files.check_savedmodel``).
Keras metadata and assets are never read: ``tf.saved_model.load`` restores the TF graph and variables only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import numpy as np

from loadgen.backends.quiet import filtered_stderr, quiet_absl, quiet_tensorflow

quiet_tensorflow()  # before TensorFlow loads: its C++ logging reads the level once

if importlib.util.find_spec("triton") is not None:
    # Triton (installed with the CUDA build of torch) and TensorFlow both bundle LLVM. Loading TensorFlow first
    # makes Triton's later load segfault, which torch.export triggers (seen with tensorflow-cpu 2.21 and
    # triton 3.8). Loading Triton first works both ways. Import TensorFlow from this module to get the order.
    import triton  # noqa: F401

with filtered_stderr():
    import tensorflow as tf  # noqa: E402

from loadgen.backends.base import Backend, BackendError, pick, require_file  # noqa: E402
from loadgen.backends.model_files import check_savedmodel  # noqa: E402

quiet_absl()


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
        check_savedmodel(path)
        try:
            loaded = tf.saved_model.load(path)
        except Exception as exc:  # OSError, ValueError, OpError, KeyError, protobuf errors from a crafted graph
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BackendError(f"{path}: TensorFlow cannot load it: {first}") from exc
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
