"""Images: decoding any image PIL knows as RGB, the preprocessing presets (one eval preset for training-time
evaluation and the inference QSL alike), the training augmentation and the training dataset."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from loadgen.data import DataError, pixels


class BadImageError(DataError):
    """An image that cannot be decoded; the message names the file."""



def load_image(path: str) -> Image.Image:
    """Decode any image PIL knows as RGB: CMYK, grayscale, palette, and PNG bytes behind a .JPEG name included.

    Missing, truncated or empty files raise BadImageError naming the file.
    """
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a truncated file fails here and not later
            return img if img.mode == "RGB" else img.convert("RGB")
    except FileNotFoundError as exc:
        raise BadImageError(f"{path}: missing (no such file)") from exc
    except IsADirectoryError as exc:
        raise BadImageError(f"{path}: is a folder, not an image") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        size = os.path.getsize(path) if os.path.exists(path) else 0
        reason = "empty file" if size == 0 else f"{type(exc).__name__}: {exc}"
        raise BadImageError(f"{path}: cannot decode image ({reason})") from exc



def check_image(path: str) -> str | None:
    """None when ``path`` decodes whole, else what is wrong (naming the file).

    JPEGs are decoded at 1/8 scale (PIL's draft mode): every byte of the stream is still read, so truncation
    and corruption are found, at a fraction of the cost of a full decode.
    """
    try:
        with Image.open(path) as img:
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except FileNotFoundError:
        return f"{path}: missing (no such file)"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = "empty file" if os.path.isfile(path) and os.path.getsize(path) == 0 else \
            f"{type(exc).__name__}: {exc}"
        return f"{path}: cannot decode image ({reason})"
    return None



@dataclasses.dataclass(frozen=True)
class EvalPreset:
    """Resize the shorter side to ``resize``, centre-crop ``crop``, then normalise.

    Split in two so the inference cache can store the uint8 crop (4x smaller than float32) and normalise a whole
    batch at once: ``geometry`` (PIL image -> uint8 HWC) and ``normalize`` (uint8 NHWC -> float32 NCHW/NHWC).
    Training-time evaluation calls the preset itself, so it and the QSL see the same pixels.
    """

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0  # pixel values are multiplied by scale before mean/std
    interpolation: str = "bilinear"

    def geometry(self, img: Image.Image) -> np.ndarray:
        w, h = img.size
        short = min(w, h)
        nw, nh = max(self.crop, round(w * self.resize / short)), max(self.crop, round(h * self.resize / short))
        method = {"bilinear": Image.Resampling.BILINEAR, "area": Image.Resampling.BOX}[self.interpolation]
        img = img.resize((nw, nh), method)
        left, top = (nw - self.crop) // 2, (nh - self.crop) // 2
        return np.asarray(img.crop((left, top, left + self.crop, top + self.crop)), dtype=np.uint8)

    def normalize(self, batch: np.ndarray, layout: str = "NCHW") -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` -> float32 in ``layout`` (NCHW for PyTorch and ONNX, NHWC for TF)."""
        return pixels.normalize(batch, self.scale, self.mean, self.std, layout)

    def __call__(self, img: Image.Image) -> np.ndarray:
        return self.normalize(self.geometry(img)[None])[0]


def presets(crop: int = 224) -> dict[str, EvalPreset]:
    """Evaluation presets by name; ``resize`` keeps the reference's 87.5 % central crop for any ``crop``."""
    resize = round(crop / 0.875)
    return {
        # torchvision's references/classification eval transform (ImageNet mean/std on [0, 1] pixels).
        "torchvision": EvalPreset(resize, crop, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                                  scale=1 / 255),
        # The inference reference's pre_process_vgg (resnet50 tf/onnxruntime profiles): area resize, mean only.
        "vgg": EvalPreset(resize, crop, mean=(123.68, 116.78, 103.94), interpolation="area"),
        # The inference reference's pre_process_mobilenet: pixels scaled to [-1, 1].
        "mobilenet": EvalPreset(resize, crop, mean=(1.0, 1.0, 1.0), scale=2 / 255),
    }


def train_transform(crop: int, scale: tuple[float, float] = (0.08, 1.0), flip: bool = True):
    """Random-resized crop and horizontal flip (torchvision's training preset), to a uint8 HWC crop.

    Normalisation is left to the batch (``EvalPreset.normalize``), once per batch rather than once per image.
    These are torchvision's v1 transforms, the default of its classification references: on PIL images they
    cost 0.1 ms an image here, the v2 ones 0.7 ms (dispatch overhead), which stalled the training step.
    """
    from torchvision import transforms

    steps = [transforms.RandomResizedCrop(crop, scale=scale)] + ([transforms.RandomHorizontalFlip()] if flip else [])
    augment = transforms.Compose(steps)

    def transform(img: Image.Image) -> np.ndarray:
        return np.asarray(augment(img), dtype=np.uint8)

    return transform


class ImageList:
    """A map-style dataset over (path, label) pairs giving uint8 HWC crops; the training loop hands it to torch's
    DataLoader, with a collate function that normalises each batch (train.py).

    When every image fits in ``keep_decoded_bytes`` (judged from the first image), decoded images are kept after
    their first use, so later epochs skip JPEG decoding. ImageNet does not fit and is decoded every epoch.
    """

    def __init__(self, samples: Sequence[tuple[str, int]], transform, keep_decoded_bytes: int = 0) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.budget = keep_decoded_bytes
        self.decoded: dict[int, Image.Image] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int, int]) -> tuple[np.ndarray, int]:
        """``key`` is an index, or ``(index, epoch, seed)`` from ``loadgen.training.distributed.SeededShards``: the
        augmentation is then drawn from those three alone, the same whichever process or worker loads the sample."""
        if isinstance(key, tuple):
            import torch

            i, epoch, seed = key
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed((seed * 1_000_003 + epoch) * len(self.samples) + i)
                return self._get(i)
        return self._get(key)

    def _get(self, i: int) -> tuple[np.ndarray, int]:
        path, label = self.samples[i]
        img = self.decoded.get(i) if self.decoded is not None else None
        if img is None:
            img = load_image(path)
            if self.decoded is None and self.budget:
                fits = img.width * img.height * 3 * len(self.samples) <= self.budget
                self.decoded = {} if fits else None
                self.budget = self.budget if fits else 0
            if self.decoded is not None:
                self.decoded[i] = img
        return self.transform(img), label
