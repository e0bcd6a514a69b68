"""The SSD benchmark's COCO files: its archive manifest (coco_files.json: COCO 2017's archives and the ImageNet
ResNet-34 it starts from) and the loader of those weights. The rest of COCO on disk is loadgen.data.coco_files."""

from __future__ import annotations

import os
from pathlib import Path

from loadgen.data import ChecksumError, DataError, one_line
from loadgen.data.coco_files import weights_problem

HERE = Path(__file__).resolve().parents[1]  # the benchmark folder
FILES_MANIFEST = HERE / "coco_files.json"
PARTS = ("annotations", "train2017", "val2017", "weights")  # what `download --only` may name
WEIGHTS_SUBDIR = "pretrained"


def load_backbone_weights(path: str | os.PathLike) -> dict:
    """The ImageNet-pretrained ResNet-34 state dict (name -> tensor), after checking its sha256 prefix.

    Loaded with ``weights_only=True``: tensors and plain containers only, so a file that would run code when
    unpickled is refused instead. torch is imported here, so the rest of this package stays framework-free.
    """
    import pickle

    import torch

    if problem := weights_problem(path):
        raise ChecksumError(problem)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise DataError(f"{path}: not a plain weights file ({one_line(exc)})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{path}: not a state dict of tensors ({type(state).__name__})")
    return state
