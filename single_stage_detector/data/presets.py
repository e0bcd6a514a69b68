"""The evaluation preset: one callable that turns a COCO image into the network's input, shared by training-time
evaluation and the inference QSL so that the two always see the same pixels.

    from single_stage_detector.data.presets import eval_preset
    preset = eval_preset("ssd-resnet34", 300)
    x = preset(load_image(path))            # float32 (3, 300, 300)

SSD squashes the whole image to a square (no crop: every object stays in view, boxes stay relative to the image),
bilinear. Split in two, as the inference cache wants it: ``geometry`` (PIL image -> uint8 HWC, 4x smaller than
float32) and ``normalize`` (uint8 NHWC batch -> float32 NCHW or NHWC), done once per batch.

Normalisation per model, as the references do:

- ``imagenet`` (SSD-ResNet34; the training reference's ``Normalize`` and the inference reference's
  ``pre_process_coco_resnet34``): pixels / 255, minus the ImageNet mean, over its standard deviation.
- ``inception`` (SSD-MobileNet-v1; the inference reference's ``pre_process_coco_mobilenet``): pixels to [-1, 1].

PIL and numpy only.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from PIL import Image

from loadgen.data import DataError, pixels

#: The input side each model is benchmarked at under LoadGen (the inference reference's sizes); training runs 300.
INFERENCE_SIZE = {"ssd-resnet34": 1200, "ssd-mobilenet": 300}
#: The normalisation each model is trained and evaluated with.
MODEL_PRESET = {"ssd-resnet34": "imagenet", "ssd-mobilenet": "inception"}


@dataclasses.dataclass(frozen=True)
class EvalPreset:
    """Resize to ``size`` x ``size`` (bilinear), then ``(pixel * scale - mean) / std`` per channel.
    ``__post_init__`` only validates."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be >= 1, got {self.size}")

    def geometry(self, img: Image.Image) -> np.ndarray:
        """The image as uint8 ``(size, size, 3)`` RGB."""
        img = img if img.mode == "RGB" else img.convert("RGB")
        return np.asarray(img.resize((self.size, self.size), Image.Resampling.BILINEAR), dtype=np.uint8)

    def normalize(self, batch: np.ndarray, layout: str = "NCHW") -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` -> float32 in ``layout`` (NCHW for PyTorch and ONNX, NHWC for TF)."""
        return pixels.normalize(batch, self.scale, self.mean, self.std, layout)

    def __call__(self, img: Image.Image) -> np.ndarray:
        """One image -> float32 ``(3, size, size)``, what the PyTorch model takes."""
        return self.normalize(self.geometry(img)[None])[0]


def presets(size: int = 300) -> dict[str, EvalPreset]:
    """The evaluation presets by name, at ``size``."""
    return {
        "imagenet": EvalPreset(size, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1 / 255),
        "inception": EvalPreset(size, mean=(1.0, 1.0, 1.0), scale=2 / 255),
    }


def eval_preset(model: str, size: int | None = None, preset: str | None = None) -> EvalPreset:
    """The preset of ``model`` (``ssd-resnet34`` or ``ssd-mobilenet``) at ``size`` (default: its inference size);
    ``preset`` names another normalisation."""
    if model not in MODEL_PRESET:
        raise ValueError(f"unknown model {model!r} (choose from {', '.join(MODEL_PRESET)})")
    table = presets(size or INFERENCE_SIZE[model])
    name = preset or MODEL_PRESET[model]
    if name not in table:
        raise ValueError(f"unknown preset {name!r} (choose from {', '.join(table)})")
    return table[name]


def load_image(path: str | os.PathLike) -> Image.Image:
    """The image at ``path`` decoded as RGB; a missing or undecodable file is one DataError line naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:  # PIL: UnidentifiedImageError, truncated
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from None
