"""The SSD benchmark's COCO files: its archive manifest (coco_files.json: COCO 2017's archives and the ImageNet
ResNet-34 it starts from). The weights' loader and the rest of COCO on disk are loadgen.data.coco_files."""

from __future__ import annotations

from pathlib import Path

from loadgen.data.coco_files import load_weights as load_backbone_weights  # noqa: F401 - this package's API

HERE = Path(__file__).resolve().parents[1]  # the benchmark folder
FILES_MANIFEST = HERE / "coco_files.json"
