"""SSD -> TF SavedModel and TFLite, through the shared weight-transfer twin (``loadgen.nets.tf_twin``).

The exported graphs take the image batch **NHWC**: float32 ``(N, size, size, 3)``, the same normalised values the
PyTorch model takes as ``(N, 3, size, size)``. They return the raw head outputs in PyTorch's layout and box order,
``locs (N, 4, B)`` and ``scores (N, C, B)``, so ``boxes.postprocess`` serves every backend. Both are named in the
``serving_default`` signature (``locs``, ``scores``); the tf backend lists them in that (sorted) order. The TFLite
model is float32, converted from the SavedModel; its flat output list does NOT follow the names (the converter put
``scores`` first), so read its outputs by signature key (``Interpreter.get_signature_runner``), not by position.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from loadgen.nets import tf_twin

OUTPUTS = ("locs", "scores")  # what SSD.forward returns, in its order


def export_tf(model: nn.Module, size: int, saved_model_dir: str | Path, tflite_path: str | Path | None) -> None:
    """Write ``model`` (an ``SSD`` in eval mode, for ``size`` x ``size`` images) as a SavedModel in
    ``saved_model_dir`` and, unless ``tflite_path`` is None, as a float32 TFLite file."""
    tf_twin.save(model, size, saved_model_dir, tflite_path, output_names=OUTPUTS)
