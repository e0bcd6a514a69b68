"""The MLPerf OpenImages subset on disk (what it is: :mod:`object_detection.data.openimages`): fetching it and
verifying it, behind ``python -m object_detection.data download-openimages`` and ``verify-openimages``.

Fetching does what the inference reference's ``tools/openimages.py`` does (it fetches from the same bucket), in
four steps:

1. the three CSV files of openimages_files.json into ``<root>/annotations/`` under their own names (or from a mirror
   holding them under those names): the validation boxes, the class names (``LabelName,DisplayName``, no header)
   and the validation image list;
2. the boxes whose class display name is one of the 264 :data:`~object_detection.data.openimages.CLASSES`, and the
   images of the list with such a box (24,781), in ImageID order (``max_images``: the first N only);
3. each image from ``<images_url>/<split>/<ImageID>.jpg`` (the public bucket's layout) to
   ``<root>/validation/data/<ImageID>.jpg``, several at once, through the shared resuming download (written to
   ``<name>.part``, renamed once whole);
4. ``<root>/annotations/openimages-mlperf.json`` from the boxes and the images' sizes (read from their headers),
   written whole.

A second run downloads nothing that is there: a CSV only appears under its name whole, an image already there is
kept if it decodes, and a ``.part`` is resumed. No checksum is published for these files. The image list's
OriginalMD5 is the md5 of the original Flickr file while the bucket holds copies rescaled to at most 1024 pixels
a side (the CVDF's README), so it is not checked: a download is checked against its Content-Length and by decoding.
Nothing read from a download is run: the CSVs are parsed as text, an ImageID must be 16 hex digits before it names
a file or a URL. Standard library and PIL: no ML framework.
"""

from __future__ import annotations

import csv
import json
import re
import urllib.parse
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from loadgen.data import coco_files
from loadgen.data.atomic import write_atomic
from loadgen.data.coco import load_annotations
from loadgen.data.download import download, join_url
from loadgen.data.errors import DataError, one_line
from object_detection.data.openimages import (
    CLASSES,
    FLAGS,
    VALIDATION_COUNT,
    VALIDATION_IMAGES,
    Box,
    annotation_file,
    image_folder,
    subset_json,
)

CSV_KEYS = ("boxes", "classes", "images")  # openimages_files.json's "csv": boxes, class names, image list
CORNERS = ("XMin", "XMax", "YMin", "YMax")
BOX_COLUMNS = ("ImageID", "LabelName", *CORNERS, *FLAGS)  # the box file's columns this reads (it has more)
VALUES = [(c, float, "a number") for c in CORNERS] + [(f, int, "a whole number") for f in FLAGS]  # parsed, as what
IMAGE_ID = re.compile(r"[0-9a-f]{16}")  # an OpenImages ImageID; checked before it names a file or a URL
WORKERS = 8  # images fetched at once


@dataclass(frozen=True)
class OpenImagesFiles:
    """openimages_files.json: the URL of each CSV (:data:`CSV_KEYS`), the split, the base URL holding
    ``<split>/<ImageID>.jpg``, and the URL of the ImageNet ResNeXt50 weights."""

    csv: dict[str, str]
    split: str
    images_url: str
    weights_url: str  # the ImageNet backbone RetinaNet's reference training starts from

    @classmethod
    def load(cls, path: str | Path) -> OpenImagesFiles:
        """The manifest in ``path``; anything else raises DataError naming the file and what is wrong."""
        try:
            spec = json.loads(Path(path).read_text())
            return cls(csv={key: str(spec["csv"][key]) for key in CSV_KEYS}, split=str(spec["split"]),
                       images_url=str(spec["images_url"]), weights_url=str(spec["weights"]["url"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: not an OpenImages files manifest ({type(exc).__name__}: {one_line(exc)}); "
                            f"it needs split, images_url, weights with a url and csv with "
                            f"{', '.join(CSV_KEYS)}") from exc


# -- reading the CSV files -----------------------------------------------------------------------------------------
def rows(path: Path, columns: Sequence[str], header: bool = True) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, {column: value})`` for each row of the CSV file ``path``, whose first line names its columns,
    ``columns`` among them (or, without ``header``, whose columns are ``columns`` in that order). A missing column,
    a row of another length, or text that is not UTF-8 CSV raises DataError naming the file and the line."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        try:
            names = next(reader, []) if header else list(columns)
            if missing := [c for c in columns if c not in names]:
                raise DataError(f"{path}: line 1: no {', '.join(missing)} column (its header has "
                                f"{', '.join(names) or 'nothing'})")
            for row in reader:
                if not row:
                    continue  # a blank line
                if len(row) != len(names):
                    raise DataError(f"{path}: line {reader.line_num}: {len(row)} fields, expected {len(names)}")
                yield reader.line_num, dict(zip(names, row, strict=True))
        except UnicodeDecodeError as exc:  # decoded in blocks: the line is not known
            raise DataError(f"{path}: not UTF-8 text ({one_line(exc)})") from None
        except csv.Error as exc:
            raise DataError(f"{path}: line {reader.line_num}: not CSV ({one_line(exc)})") from None


def checked_id(text: str, where: str) -> str:
    if not IMAGE_ID.fullmatch(text):
        raise DataError(f"{where}: ImageID {text!r} is not 16 hex digits")
    return text


def read_classes(path: Path, classes: Sequence[str] = CLASSES) -> dict[str, str]:
    """``{LabelName: display name}`` of ``classes`` from class-descriptions-boxable.csv; a class it does not name
    raises DataError."""
    wanted = set(classes)
    labels = {row["LabelName"]: row["DisplayName"] for _, row in rows(path, ("LabelName", "DisplayName"), False)
              if row["DisplayName"] in wanted}
    if missing := sorted(wanted - set(labels.values())):
        raise DataError(f"{path}: no LabelName for {len(missing)} of the {len(classes)} MLPerf classes "
                        f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); is it OpenImages' "
                        "class-descriptions-boxable.csv?")
    return labels


def read_boxes(path: Path, labels: dict[str, str]) -> list[Box]:
    """The boxes of validation-annotations-bbox.csv whose LabelName is one of ``labels``, with its display name."""
    boxes = []
    for line, row in rows(path, BOX_COLUMNS):
        if (label := labels.get(row["LabelName"])) is None:
            continue
        where = f"{path}: line {line}"
        values: dict[str, float] = {}
        for column, kind, what in VALUES:
            try:
                values[column] = kind(row[column])
            except ValueError:
                raise DataError(f"{where}: {column} is {row[column]!r}, not {what}") from None
        boxes.append(Box(checked_id(row["ImageID"], where), label, *(values[c] for c in CORNERS),
                         flags={f: int(values[f]) for f in FLAGS}))
    return boxes


def read_image_list(path: Path) -> set[str]:
    """The ImageIDs of validation-images-with-rotation.csv (the split's images)."""
    return {checked_id(row["ImageID"], f"{path}: line {line}") for line, row in rows(path, ("ImageID",))}


def select(boxes: list[Box], listed: set[str], max_images: int | None = None) -> list[str]:
    """The subset's ImageIDs: the ``listed`` images with one of ``boxes``, in ImageID order (the first
    ``max_images`` where given)."""
    return sorted({box.image for box in boxes} & listed)[:max_images]


# -- fetching ------------------------------------------------------------------------------------------------------
def fetch_sources(files: OpenImagesFiles, folder: Path, mirror: str | None = None) -> dict[str, Path]:
    """Each CSV of ``files`` in ``folder`` under its own name (``{key: path}``); one already there is kept, since a
    download appears under its name only whole."""
    paths = {}
    for key, url in files.csv.items():
        paths[key] = folder / PurePosixPath(urllib.parse.urlparse(url).path).name
        if paths[key].is_file():
            print(f"{paths[key]}: already there")
        else:
            print(f"{download(url, paths[key], mirror=mirror)}: downloaded")
    return paths


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image file's header, without decoding it."""
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def fetch_image(url: str, dest: Path) -> tuple[tuple[int, int], bool]:
    """``dest``'s (width, height), once it is there and decodes (else it is downloaded from ``url``), and whether it
    was downloaded."""
    fetch = coco_files.check_image((str(dest), None, None)) is not None
    if fetch:
        download(url, dest, progress=False)
        if problem := coco_files.check_image((str(dest), None, None)):
            dest.unlink()
            raise DataError(f"{url}: not a readable image ({problem.partition(': ')[2]}); removed")
    return image_size(dest), fetch


def fetch_images(ids: list[str], images_url: str, split: str, folder: Path, workers: int = WORKERS,
                 progress: bool = True) -> tuple[dict[str, tuple[int, int]], int]:
    """``{ImageID: (width, height)}`` of ``ids``, each fetched from ``<images_url>/<split>/<ImageID>.jpg`` into
    ``folder`` unless there, ``workers`` at a time; and how many were downloaded. The images that could not be
    fetched raise one DataError at the end, naming one, the others being kept."""
    from tqdm import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, tuple[int, int]] = {}
    failures: list[str] = []
    fetched = 0
    pool = ThreadPoolExecutor(workers, thread_name_prefix="openimages")
    try:
        jobs = {pool.submit(fetch_image, join_url(images_url, f"{split}/{i}.jpg"), folder / f"{i}.jpg"): i
                for i in ids}
        with tqdm(total=len(jobs), desc="images", unit="img", disable=None if progress else True) as bar:
            for job in as_completed(jobs):
                try:
                    sizes[jobs[job]], new = job.result()
                    fetched += new
                except (DataError, OSError) as exc:
                    failures.append(one_line(exc))
                bar.update(1)
    finally:  # an interrupt (Ctrl-C) starts no more downloads; the ones running end whole or as a .part
        pool.shutdown(cancel_futures=True)
    if failures:
        raise DataError(f"{len(failures)} of {len(ids)} images not fetched, e.g. {min(failures)}; the others are "
                        "kept, run again to fetch the rest")
    return sizes, fetched


def download_subset(data_dir: str | Path, files: OpenImagesFiles, mirror: str | None = None,
                    images_url: str | None = None, max_images: int | None = None, workers: int = WORKERS,
                    progress: bool = True) -> int:
    """Fetch the subset into ``data_dir`` (the module docstring's four steps), saying what was done; the number of
    images its annotation file lists."""
    data_dir = Path(data_dir)
    csvs = fetch_sources(files, annotation_file(data_dir).parent, mirror)
    try:
        boxes = read_boxes(csvs["boxes"], read_classes(csvs["classes"]))
        listed = read_image_list(csvs["images"])
    except DataError as exc:  # a whole download that is not what it should be: from a wrong URL or mirror
        raise DataError(f"{exc} (delete the file to download it again)") from exc
    if unlisted := {box.image for box in boxes} - listed:
        print(f"note: {len(unlisted)} images with boxes of the classes are not in {csvs['images'].name}; left out")
    ids = select(boxes, listed)
    partial = max_images is not None and max_images < len(ids)
    if partial:
        print(f"{len(ids)} images with a box of the {len(CLASSES)} classes; fetching the first {max_images} only: "
              "not the benchmark's set")
        ids = ids[:max_images]
    sizes, fetched = fetch_images(ids, images_url or files.images_url, files.split, image_folder(data_dir), workers,
                                  progress)
    print(f"{image_folder(data_dir)}: {fetched} images downloaded, {len(ids) - fetched} already there")
    subset = subset_json(sizes, boxes, description="openimages_mlperf" + (
        f" (the first {len(ids)} images only)" if partial else ""))
    write_atomic(annotation_file(data_dir), json.dumps(subset))
    print(f"{annotation_file(data_dir)}: {len(subset['images'])} images, {len(subset['annotations'])} boxes of "
          f"{len(CLASSES)} classes")
    return len(subset["images"])


# -- verifying -----------------------------------------------------------------------------------------------------
def check(data_dir: str | Path, expected: int = VALIDATION_COUNT, workers: int = 1, progress: bool = True) -> list[str]:
    """Every problem of a subset folder, each naming its file: the annotation file (COCO instances that pycocotools
    loads, listing ``expected`` images), the images it lists that are missing and those present it does not list,
    and the images that do not decode whole at their listed size."""
    data_dir = Path(data_dir)
    path = annotation_file(data_dir)
    listed, problems = coco_files.read_listing(path)
    if not problems:
        try:
            load_annotations(path)
        except DataError as exc:
            problems.append(str(exc))
    if listed and len(listed) != expected:
        problems.append(f"{path}: lists {len(listed)} images, expected {expected}")
    more, items = coco_files.check_split(data_dir, VALIDATION_IMAGES.as_posix(), expected, listed, path.name)
    return problems + more + coco_files.decode_problems(items, workers, progress)
