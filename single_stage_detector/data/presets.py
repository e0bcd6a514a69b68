"""The evaluation preset: one callable that turns a COCO image into the network's input, shared by training-time
evaluation and the inference QSL so that the two always see the same pixels.

    from single_stage_detector.data.presets import eval_preset
    preset = eval_preset("ssd-resnet34", 300)
    x = preset(load_image(path))            # float32 (3, 300, 300)

SSD squashes the whole image to a square (no crop: every object stays in view, boxes stay relative to the image),
bilinear: the shared ``loadgen.data.pixels.SquarePreset``, split in two as the inference cache wants it:
``geometry`` (image -> uint8 HWC, 4x smaller than float32) and ``normalize`` (uint8 NHWC batch -> float32 NCHW or
NHWC), done once per batch.

Normalisation per model, as the references do:

- ``imagenet`` (SSD-ResNet34; the training reference's ``Normalize`` and the inference reference's
  ``pre_process_coco_resnet34``): pixels / 255, minus the ImageNet mean, over its standard deviation.
- ``inception`` (SSD-MobileNet-v1; the inference reference's ``pre_process_coco_mobilenet``): pixels to [-1, 1].

PIL and numpy only.
"""

from __future__ import annotations

import os

from PIL import Image

from loadgen.data import DataError
from loadgen.data.pixels import SquarePreset

#: The input side each model is benchmarked at under LoadGen (the inference reference's sizes); training runs 300.
INFERENCE_SIZE = {"ssd-resnet34": 1200, "ssd-mobilenet": 300}
#: The normalisation each model is trained and evaluated with.
MODEL_PRESET = {"ssd-resnet34": "imagenet", "ssd-mobilenet": "inception"}


def presets(size: int = 300) -> dict[str, SquarePreset]:
    """The evaluation presets by name, at ``size``."""
    return {
        "imagenet": SquarePreset(size, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1 / 255),
        "inception": SquarePreset(size, mean=(1.0, 1.0, 1.0), scale=2 / 255),
    }


def eval_preset(model: str, size: int | None = None, preset: str | None = None) -> SquarePreset:
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
