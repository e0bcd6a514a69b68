"""The object detection benchmark's file manifests: coco_files.json (COCO 2017's archives and the ImageNet ResNet-50
Mask R-CNN starts from) and openimages_files.json (the OpenImages CSVs and image bucket of RetinaNet's MLPerf
subset). The weights' loader and the rest of COCO on disk are loadgen.data.coco_files; the OpenImages subset on
disk is object_detection.data.openimages_files."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # the benchmark folder
FILES_MANIFEST = HERE / "coco_files.json"
OPENIMAGES_MANIFEST = HERE / "openimages_files.json"
