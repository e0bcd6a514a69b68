"""COCO 2017 for the SSD benchmark: fetching and checking it on disk, and the pretrained backbone's weights.

On-disk layout (the real set; the embedded mini set has the same, plus a manifest.json)::

    <root>/train2017/*.jpg                               118,287 images
    <root>/val2017/*.jpg                                 5,000 images
    <root>/annotations/instances_{train,val}2017.json    COCO instances (images, annotations, categories)
    <root>/archives/*.zip                                the downloaded archives (kept unless --delete-archives)
    <root>/pretrained/resnet34-333f7ec4.pth              torchvision's ImageNet ResNet-34, the reference's start

Fetching and verifying COCO is shared with object_detection, in ``loadgen.data.coco_files``; here are what is
the SSD benchmark's own: ``layout`` (its manifest coco_files.json, the pretrained weights' loader) and ``cli``
(``download`` and ``verify``, behind download_dataset.sh and verify_dataset.sh). Reading annotations for training
and inference is ``loadgen.data.coco``'s job. No ML framework is imported here, except by
:func:`load_backbone_weights`, which imports torch when called.
"""

# ruff: noqa: I001 - the API in a few wrapped lines, not one name a line
from loadgen.data import DataError
from loadgen.data.coco_files import (IMAGES, SPLITS, Archive, FilesManifest, check_image, check_tree, decode_problems,
                                     fetch, fetch_archive, fetch_weights, read_listing, sha256_prefix, weights_problem)
from single_stage_detector.data.cli import get_args_parser, main
from single_stage_detector.data.layout import FILES_MANIFEST, load_backbone_weights

__all__ = [
    "FILES_MANIFEST", "IMAGES", "SPLITS", "Archive", "DataError", "FilesManifest", "check_image",
    "check_tree", "decode_problems", "fetch", "fetch_archive", "fetch_weights", "get_args_parser",
    "load_backbone_weights", "main", "read_listing", "sha256_prefix", "weights_problem",
]
