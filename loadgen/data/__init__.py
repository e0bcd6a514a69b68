"""Data helpers shared by every benchmark, one module per job:

- ``errors``     DataError and its kinds; every message names the file it concerns.
- ``download``   downloads that resume (HTTP Range), retry and verify checksums; mirrors; URL joining.
- ``archives``   safe extraction of tar and zip archives.
- ``manifest``   dataset manifests and verification, naming every bad, missing or unlisted file.
- ``atomic``     whole-or-nothing files and folders, partial folders of dead runs reclaimed, finished builds.
- ``cache``      preprocessing caches keyed by their parameters and their sources.
- ``coco``       COCO 2017: reading instances files, the 80 category ids, the real-pixel mini-set builder.
- ``coco_files`` COCO 2017 on disk: its archives fetched and extracted, pretrained weights checked by name, the
                 folder verified (counts, instances files, every image decoded). Imported as a module
                 (``from loadgen.data import coco_files``), as its names are COCO's alone.
- ``pixels``     uint8 images to normalised network input, for every image benchmark's evaluation preset.
- ``processes``  worker pools whose workers die with their parent; a prefetching iterator.
- ``cli``        ``python -m loadgen.data`` (verify, download, extract).

The names below are the package's API, imported from here (``from loadgen.data import download``). No ML framework
is imported, and importing has no side effects.
"""

from loadgen.data.archives import check_archive, extract
from loadgen.data.atomic import (
    atomic_folder,
    build_command,
    ensure_built,
    finished,
    partial_folder,
    reclaim_partials,
    write_atomic,
)
from loadgen.data.cache import PreprocessCache
from loadgen.data.coco import (
    CATEGORIES,
    CATEGORY_IDS,
    CATEGORY_OF_LABEL,
    LABEL_OF_CATEGORY,
    MiniLayout,
    annotated_image_ids,
    annotation_file,
    build_mini_coco,
    category_to_label,
    image_folder,
    label_to_category,
    load_annotations,
    mask_box,
    mask_to_polygons,
    mask_to_rle,
    read_rgb,
)
from loadgen.data.download import download, download_url, file_digest, join_url, mirrored, url_problem
from loadgen.data.errors import ChecksumError, DataError, UnsafeArchiveError, one_line
from loadgen.data.manifest import Manifest, report, unlisted, verify
from loadgen.data.processes import end_with_parent, prefetch, process_pool

__all__ = [
    "CATEGORIES", "CATEGORY_IDS", "CATEGORY_OF_LABEL", "LABEL_OF_CATEGORY", "MiniLayout", "annotated_image_ids",
    "annotation_file", "build_mini_coco", "category_to_label", "image_folder", "label_to_category", "load_annotations",
    "mask_box", "mask_to_polygons", "mask_to_rle", "read_rgb",
    "ChecksumError", "DataError", "Manifest", "PreprocessCache", "UnsafeArchiveError", "atomic_folder",
    "build_command", "check_archive", "download", "download_url", "end_with_parent", "ensure_built", "extract",
    "file_digest", "finished", "join_url", "mirrored", "one_line", "partial_folder", "prefetch", "process_pool",
    "reclaim_partials", "report", "unlisted", "url_problem", "verify", "write_atomic",
]
