"""Pixels to network input, for every image benchmark's evaluation preset (numpy; PIL to resize).

A preset splits in two so that an inference cache can keep uint8 pixels (4x smaller than float32) and normalise a
whole batch at once: its own ``geometry`` (resize, crop) and this ``normalize``.
"""

from __future__ import annotations

import dataclasses
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


@dataclasses.dataclass(frozen=True)
class SquarePreset:
    """The detectors' evaluation preset: the whole image squashed to ``size`` x ``size`` (bilinear; no crop, so every
    object stays in view and boxes stay relative to the image), then ``(pixel * scale - mean) / std`` per channel.
    ``__post_init__`` only validates."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")

    def geometry(self, img) -> np.ndarray:
        """A PIL image, or uint8 ``(H, W, 3)`` RGB pixels, as uint8 ``(size, size, 3)`` RGB."""
        from PIL import Image

        img = Image.fromarray(img) if isinstance(img, np.ndarray) else img
        img = img if img.mode == "RGB" else img.convert("RGB")
        return np.asarray(img.resize((self.size, self.size), Image.Resampling.BILINEAR), dtype=np.uint8)

    def normalize(self, batch: np.ndarray, layout: str = "NCHW") -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` -> float32 in ``layout`` (NCHW for PyTorch and ONNX, NHWC for TF)."""
        return normalize(batch, self.scale, self.mean, self.std, layout)

    def __call__(self, img) -> np.ndarray:
        """One image -> float32 ``(3, size, size)``, what a PyTorch model takes."""
        return self.normalize(self.geometry(img)[None])[0]
