"""Pixels to network input, for every image benchmark's evaluation preset (numpy only).

A preset splits in two so that an inference cache can keep uint8 pixels (4x smaller than float32) and normalise a
whole batch at once: its own ``geometry`` (resize, crop) and this ``normalize``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def normalize(batch: np.ndarray, scale: float, mean: Sequence[float], std: Sequence[float],
              layout: str = "NCHW") -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` -> float32 ``(pixel * scale - mean) / std`` per channel, in ``layout`` (NCHW for
    PyTorch and ONNX, NHWC for TF)."""
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout must be NCHW or NHWC, got {layout!r}")
    x = batch.astype(np.float32)
    x *= scale
    x -= np.asarray(mean, np.float32)
    x /= np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if layout == "NCHW" else x
