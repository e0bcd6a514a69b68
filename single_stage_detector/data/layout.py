"""COCO 2017 on disk, the archive manifest (coco_files.json) and the pretrained ResNet-34 weights file."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from loadgen.data import ChecksumError, DataError, file_digest, one_line

HERE = Path(__file__).resolve().parents[1]  # the benchmark folder
FILES_MANIFEST = HERE / "coco_files.json"
SPLITS = ("train2017", "val2017")
# Images per split of COCO 2017 (cocodataset.org; every one is listed in instances_<split>.json, annotated or not).
IMAGES = {"train2017": 118_287, "val2017": 5_000}
PARTS = ("annotations", "train2017", "val2017", "weights")  # what `download --only` may name
WEIGHTS_SUBDIR = "pretrained"


@dataclass(frozen=True)
class Archive:
    """One archive of the manifest: where it comes from, its md5, and the top folder it holds."""

    key: str
    file: str
    url: str
    md5: str
    extracts_to: str
    bytes: int | None = None


@dataclass(frozen=True)
class FilesManifest:
    archives: dict[str, Archive]
    weights_url: str

    @classmethod
    def load(cls, path: str | os.PathLike = FILES_MANIFEST) -> FilesManifest:
        """The manifest in ``path``; anything else raises DataError naming the file and what is wrong."""
        try:
            spec = json.loads(Path(path).read_text())
            archives = {key: Archive(key=key, file=item["file"], url=item["url"], md5=item["md5"],
                                     extracts_to=item["extracts_to"], bytes=item.get("bytes"))
                        for key, item in spec["archives"].items()}
            weights_url = spec["weights"]["url"]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{path}: not a COCO files manifest ({type(exc).__name__}: {one_line(exc)}); "
                            "each archive needs file, url, md5 and extracts_to, and weights a url") from exc
        return cls(archives=archives, weights_url=weights_url)


def annotation_file(data_dir: str | os.PathLike, split: str) -> Path:
    return Path(data_dir) / "annotations" / f"instances_{split}.json"


# torchvision names its weight files <name>-<first 8 hex digits of the sha256>.<ext> (torch.hub checks the same).
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[^.]+$")


def sha256_prefix(name: str) -> str | None:
    """The sha256 prefix a torchvision-style file name carries (``resnet34-333f7ec4.pth`` -> ``333f7ec4``)."""
    match = _HASH_IN_NAME.search(PurePosixPath(name).name)
    return match.group(1) if match else None


def weights_problem(path: str | os.PathLike, name: str | None = None) -> str | None:
    """None when the file's sha256 starts with the prefix its name (or ``name``) carries, else what is wrong,
    naming the file."""
    path = Path(path)
    prefix = sha256_prefix(name or path.name)
    if prefix is None:
        return f"{path}: its name carries no sha256 prefix (expected <name>-<8 hex digits>.pth)"
    if not path.is_file():
        return f"{path}: missing"
    actual = file_digest(path, "sha256")
    if not actual.startswith(prefix):
        return f"{path}: sha256 is {actual}, expected it to start with {prefix}"
    return None


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
