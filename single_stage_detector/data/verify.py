"""Checks of a COCO 2017 folder: image counts, the instances_<split>.json files (structure, and every image they
list present at its listed size), every image decoded in parallel. Each problem names its file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from loadgen.data import one_line, process_pool
from single_stage_detector.data.layout import annotation_file

_CHUNK = 64  # images a worker decodes per task: few enough tasks to keep the overhead low, enough to spread work


def check_image(item: tuple[str, int | None, int | None]) -> str | None:
    """None when the image at ``item[0]`` decodes whole (at its listed width and height, when given), else what is
    wrong, naming the file. JPEGs are decoded at 1/8 scale (PIL's draft mode), which still reads every byte of the
    stream, so truncation and corruption are found at a fraction of a full decode's cost."""
    from PIL import Image, UnidentifiedImageError

    path, width, height = item
    try:
        with Image.open(path) as img:
            if width is not None and img.size != (width, height):
                return f"{path}: {img.width}x{img.height} pixels, listed as {width}x{height}"
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except FileNotFoundError:
        return f"{path}: missing"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        empty = os.path.isfile(path) and os.path.getsize(path) == 0
        return f"{path}: cannot decode image ({'empty file' if empty else one_line(exc)})"
    return None


def decode_problems(items: list[tuple[str, int | None, int | None]], workers: int = 1,
                    progress: bool = True) -> list[str]:
    """Every image of ``items`` (path, width, height) that does not decode, over ``workers`` processes."""
    from tqdm import tqdm

    with tqdm(total=len(items), desc="decode", unit="img", disable=None if progress else True, leave=False) as bar:
        if workers <= 1 or len(items) <= _CHUNK:
            results = map(check_image, items)
            return [p for p in bar_over(results, bar) if p]
        with process_pool(min(workers, -(-len(items) // _CHUNK))) as pool:
            return [p for p in bar_over(pool.map(check_image, items, chunksize=_CHUNK), bar) if p]


def bar_over(results, bar):
    for result in results:
        bar.update(1)
        yield result


def read_listing(path: Path) -> tuple[dict[str, tuple[int | None, int | None]], list[str]]:
    """The images an instances_<split>.json lists (file name -> (width, height)), and its problems.

    Problems: a file that is not JSON or lacks the images/annotations/categories lists, images without a file
    name, names or ids listed twice, annotations whose image or category is not listed.
    """
    try:
        with open(path, "rb") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}, [f"{path}: missing"]
    except (ValueError, UnicodeDecodeError) as exc:
        return {}, [f"{path}: not JSON ({one_line(exc)})"]
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list)
                                             for k in ("images", "annotations", "categories")):
        return {}, [f"{path}: not COCO instances (needs the lists images, annotations and categories)"]
    listed: dict[str, tuple[int | None, int | None]] = {}
    ids, problems = set(), []
    for n, image in enumerate(data["images"]):
        name = image.get("file_name") if isinstance(image, dict) else None
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            problems.append(f"{path}: images[{n}] has no plain file_name")
            continue
        if name in listed or image.get("id") in ids:
            problems.append(f"{path}: images[{n}] ({name}, id {image.get('id')}) is listed twice")
            continue
        ids.add(image.get("id"))
        w, h = image.get("width"), image.get("height")
        listed[name] = (w, h) if isinstance(w, int) and isinstance(h, int) else (None, None)
    categories = {c.get("id") for c in data["categories"] if isinstance(c, dict)}
    for what, key, known in (("image", "image_id", ids), ("category", "category_id", categories)):
        stray = [a.get(key) if isinstance(a, dict) else None for a in data["annotations"]]
        stray = [s for s in stray if s not in known]
        if stray:
            problems.append(f"{path}: {len(stray)} annotations refer to a {what} it does not list "
                            f"(e.g. {key} {stray[0]})")
    return listed, problems


def check_split(data_dir: str | os.PathLike, split: str, expected: int | None,
                listed: dict[str, tuple[int | None, int | None]]) -> tuple[list[str], list[tuple]]:
    """Problems of ``data_dir/split`` against its count and ``listed`` images, and the images to decode."""
    folder = Path(data_dir) / split
    if not folder.is_dir():
        return [f"{folder}: missing"], []
    present = sorted(p.name for p in folder.iterdir() if p.name.endswith(".jpg"))
    problems = []
    if expected is not None and len(present) != expected:
        problems.append(f"{folder}: {len(present)} .jpg files, expected {expected}")
    ann = annotation_file(data_dir, split).name
    problems += [f"{folder / name}: listed in {ann}, missing" for name in sorted(set(listed) - set(present))]
    if listed:  # without a readable listing its problem is already reported; every file is still decoded
        problems += [f"{folder / name}: not listed in {ann}" for name in present if name not in listed]
    items = [(str(folder / name), *listed.get(name, (None, None))) for name in present]
    return problems, items


def check_tree(data_dir: str | os.PathLike, splits: list[str], expected: dict[str, int] | None,
               workers: int = 1, progress: bool = True) -> list[str]:
    """Every problem of a COCO folder's ``splits``: counts (``expected``, or as many as each annotation file lists
    when None), the annotation files, listed images missing or unlisted ones present, and images that do not
    decode."""
    problems: list[str] = []
    items: list[tuple] = []
    for split in splits:
        listed, found = read_listing(annotation_file(data_dir, split))
        problems += found
        count = expected[split] if expected is not None else (len(listed) if listed else None)
        more, to_decode = check_split(data_dir, split, count, listed)
        problems += more
        items += to_decode
    return problems + decode_problems(items, workers, progress)


def parse_counts(text: str) -> dict[str, int] | str:
    """``--expected-counts``: ``coco2017`` or ``TRAIN,VAL`` (images per split), or ``annotations`` (as many as the
    annotation files list, returned as that word)."""
    import argparse

    if text == "coco2017":
        from single_stage_detector.data.layout import IMAGES

        return dict(IMAGES)
    if text == "annotations":
        return text
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not coco2017, annotations, or TRAIN,VAL image counts")
    return {"train2017": int(parts[0]), "val2017": int(parts[1])}

