"""COCO 2017 for the SSD benchmark: fetching and checking it on disk, and the pretrained backbone's weights.

On-disk layout (the real set; the embedded mini set has the same, plus a manifest.json)::

    <root>/train2017/*.jpg                               118,287 images
    <root>/val2017/*.jpg                                 5,000 images
    <root>/annotations/instances_{train,val}2017.json    COCO instances (images, annotations, categories)
    <root>/archives/*.zip                                the downloaded archives (kept unless --delete-archives)
    <root>/pretrained/resnet34-333f7ec4.pth              torchvision's ImageNet ResNet-34, the reference's start

One module per job: ``layout`` (the layout, the archive manifest coco_files.json, the weights file and its
loader), ``fetch`` (download and safe extraction), ``verify`` (counts, annotation files, decoding), ``cli``
(``download`` and ``verify``, behind download_dataset.sh and verify_dataset.sh). Reading annotations for training
and inference is the shared ``loadgen.data`` COCO code's job. No ML framework is imported here, except by
:func:`load_backbone_weights`, which imports torch when called.
"""

# ruff: noqa: I001 - the API in a few wrapped lines, not one name a line
from loadgen.data import DataError
from single_stage_detector.data.cli import get_args_parser, main
from single_stage_detector.data.fetch import fetch, fetch_archive, fetch_weights
from single_stage_detector.data.layout import (FILES_MANIFEST, IMAGES, PARTS, SPLITS, Archive, FilesManifest,
                                               annotation_file, load_backbone_weights, sha256_prefix, weights_problem)
from single_stage_detector.data.verify import check_image, check_tree, decode_problems, read_listing

__all__ = [
    "FILES_MANIFEST", "IMAGES", "PARTS", "SPLITS", "Archive", "DataError", "FilesManifest", "annotation_file",
    "check_image", "check_tree", "decode_problems", "fetch", "fetch_archive", "fetch_weights", "get_args_parser",
    "load_backbone_weights", "main", "read_listing", "sha256_prefix", "weights_problem",
]
