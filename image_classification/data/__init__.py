"""ImageNet (ILSVRC2012) on disk: layouts, image decoding, preprocessing presets, the inference cache, and the
``download`` / ``verify`` commands behind download_dataset.sh and verify_dataset.sh.

On-disk layout (the real set and the embedded mini set alike)::

    <root>/train/<wnid>/*.JPEG
    <root>/val/*.JPEG + <root>/val_map.txt        what the MLPerf inference reference reads
      or <root>/val/<wnid>/*.JPEG                  the ImageFolder layout
    <root>/synset_words.txt                        "<wnid> <words>", one class a line, in label order

Labels are the index of the wnid in sorted order, as torchvision's ImageFolder and val_map.txt both number them.
This module imports no ML framework: the training loop wraps its datasets, the inference QSL reads its cache.

One module per job: ``layout`` (synsets, train folders, val_map.txt), ``images`` (decoding, presets, the
training dataset), ``cache`` (the inference cache), ``verify`` (decode and val_map checks), ``cli`` (``download``
and ``verify``). The names below are the package's API.
"""

# ruff: noqa: I001 - the API in a few wrapped lines, not one name a line
from image_classification.data.cache import build_cache
from image_classification.data.cli import get_args_parser, main, prepare_from_archives
from image_classification.data.images import (BadImageError, EvalPreset, ImageList, check_image, load_image, presets,
                                              train_transform)
from image_classification.data.layout import (ARCHIVES_MANIFEST, NUM_CLASSES, TRAIN_IMAGES, VAL_IMAGES, class_count,
                                              read_synsets, read_val_map, train_samples, val_samples)
from image_classification.data.verify import check_tree, decode_problems
from loadgen.data import DataError

__all__ = [
    "ARCHIVES_MANIFEST", "NUM_CLASSES", "TRAIN_IMAGES", "VAL_IMAGES", "BadImageError", "DataError", "EvalPreset",
    "ImageList", "build_cache", "check_image", "check_tree", "class_count", "decode_problems", "get_args_parser",
    "load_image", "main", "prepare_from_archives", "presets", "read_synsets", "read_val_map", "train_samples",
    "train_transform", "val_samples",
]
