"""COCO 2017 on disk, for every benchmark that trains or infers on it: the archives' manifest, fetching them
(resumed, retried, md5-checked, extracted safely, moved into place whole), pretrained weights checked by the sha256
prefix in their torchvision-style name, and verification (image counts, the instances_<split>.json files, every
image decoded in parallel), each problem naming its file.

On-disk layout::

    <root>/train2017/*.jpg  <root>/val2017/*.jpg  <root>/annotations/instances_{train,val}2017.json

A benchmark keeps its own manifest (the archives plus the weights it starts from) and its command line; reading
the annotations for training and inference is :mod:`loadgen.data.coco`'s job. No ML framework is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from loadgen.data.archives import extract
from loadgen.data.atomic import partial_folder
from loadgen.data.download import download, file_digest
from loadgen.data.errors import ChecksumError, DataError, one_line
from loadgen.data.processes import process_pool

SPLITS = ("train2017", "val2017")
# Images per split of COCO 2017 (cocodataset.org; every one is listed in instances_<split>.json, annotated or not).
IMAGES = {"train2017": 118_287, "val2017": 5_000}


@dataclass(frozen=True)
class Archive:
    """One archive of the manifest: where it comes from, its md5, and the top folder it holds. With ``files``,
    those files of its top folder are added to that folder where another archive made it already (COCO's minival
    annotations beside the instances files); ``optional`` ones are fetched only when named in --only."""

    key: str
    file: str
    url: str
    md5: str
    extracts_to: str
    bytes: int | None = None
    files: tuple[str, ...] = ()
    optional: bool = False


@dataclass(frozen=True)
class FilesManifest:
    archives: dict[str, Archive]
    weights_url: str

    @classmethod
    def load(cls, path: str | os.PathLike) -> FilesManifest:
        """The manifest in ``path``; anything else raises DataError naming the file and what is wrong."""
        try:
            spec = json.loads(Path(path).read_text())
            archives = {key: Archive(key=key, file=item["file"], url=item["url"], md5=item["md5"],
                                     extracts_to=item["extracts_to"], bytes=item.get("bytes"),
                                     files=tuple(item.get("files", ())), optional=bool(item.get("optional")))
                        for key, item in spec["archives"].items()}
            weights_url = spec["weights"]["url"]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{path}: not a COCO files manifest ({type(exc).__name__}: {one_line(exc)}); "
                            "each archive needs file, url, md5 and extracts_to, and weights a url") from exc
        return cls(archives=archives, weights_url=weights_url)


def instances_file(data_dir: str | os.PathLike, folder: str) -> Path:
    """``data_dir/annotations/instances_<folder>.json`` for an image folder such as ``val2017``."""
    return Path(data_dir) / "annotations" / f"instances_{folder}.json"


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


# -- fetching ----------------------------------------------------------------------------------------------------
def load_weights(path: str | os.PathLike) -> dict:
    """An ImageNet-pretrained backbone's state dict (name -> tensor), after checking the sha256 prefix its name
    carries (torchvision's ``resnet34-333f7ec4.pth``, ``resnet50-0676ba61.pth``).

    Loaded with ``weights_only=True``: tensors and plain containers only, so a file that would run code when
    unpickled is refused instead. torch is imported here, when called, so this module stays framework-free.
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


def _check_space(archive: Archive, dest: Path) -> None:
    """Refuse a download the disk cannot hold, before it starts, rather than after hours of it."""
    if archive.bytes is None:
        return
    part = dest.with_name(dest.name + ".part")
    need = archive.bytes - (part.stat().st_size if part.is_file() else 0)
    free = shutil.disk_usage(dest.parent).free
    if need > free:
        raise DataError(f"{dest.parent}: {need / 1e9:.1f} GB more are needed for {archive.file}, "
                        f"{free / 1e9:.1f} GB are free")


def fetch_archive(archive: Archive, data_dir: Path, archives_dir: Path, mirror: str | None = None,
                  delete_archive: bool = False) -> str:
    """Download ``archive`` into ``archives_dir`` and extract its top folder to ``data_dir``; what was done.

    A top folder already in ``data_dir`` is kept without a request: it only ever appears whole, since the archive
    is extracted into a partial folder beside it and renamed into place (a killed run's leftovers are reclaimed
    by the next run).
    """
    target = data_dir / archive.extracts_to
    if archive.files and all((target / name).is_file() for name in archive.files):
        return f"{target}: {', '.join(archive.files)} already there"
    if target.exists() and not archive.files:
        return f"{target}: already there"
    dest = archives_dir / archive.file
    archives_dir.mkdir(parents=True, exist_ok=True)
    if not dest.is_file():
        _check_space(archive, dest)
    download(archive.url, dest, md5=archive.md5, mirror=mirror)
    work = partial_folder(data_dir, f"coco-{archive.key}")
    try:
        unpacked = extract(dest, work / "unpacked")
        top = unpacked / archive.extracts_to
        if not top.is_dir():
            found = ", ".join(sorted(p.name for p in unpacked.iterdir())[:5]) or "nothing"
            raise DataError(f"{dest}: holds no {archive.extracts_to}/ folder at its top (found: {found})")
        if archive.files:
            missing = [name for name in archive.files if not (top / name).is_file()]
            if missing:
                raise DataError(f"{dest}: holds no {archive.extracts_to}/{missing[0]}")
            target.mkdir(parents=True, exist_ok=True)
            for name in archive.files:  # each file whole under its name: renamed in from beside it
                os.replace(top / name, target / name)
        else:
            os.replace(top, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if delete_archive:
        dest.unlink()
    return f"{target}: {', '.join(archive.files) or 'extracted'} from {archive.file}"


def fetch_weights(url: str, weights_dir: Path) -> str:
    """Download the weights file at ``url`` into ``weights_dir``, kept only if its sha256 starts with the prefix
    its name carries; what was done. A file already there that passes the check is kept without a request."""
    dest = weights_dir / PurePosixPath(urllib.parse.urlparse(url).path).name
    if sha256_prefix(dest.name) is None:
        raise DataError(f"{url}: the file name carries no sha256 prefix to check (expected <name>-<8 hex digits>.pth)")
    problem = weights_problem(dest)
    if problem is None:
        return f"{dest}: already there"
    if dest.is_file():  # present but wrong: replaced below, and only by a file that passes
        print(f"{problem}; fetching it again")
    # Downloaded under a side name and renamed once checked, so the real name only ever holds checked bytes.
    unverified = download(url, dest.with_name(dest.name + ".unverified"))
    if problem := weights_problem(unverified, name=dest.name):
        unverified.unlink()
        raise ChecksumError(f"{url}: downloaded file refused, {problem.partition(': ')[2]}")
    os.replace(unverified, dest)
    return f"{dest}: downloaded, sha256 prefix checked"


def fetch(parts: Iterable[str], archives: dict[str, Archive], data_dir: Path, archives_dir: Path,
          weights_url: str, weights_dir: Path, mirror: str | None = None, delete_archives: bool = False) -> list[str]:
    """Fetch each of ``parts`` (archive keys, or ``weights``) in turn; a line per part saying what was done."""
    done = []
    for part in parts:
        if part == "weights":
            done.append(fetch_weights(weights_url, weights_dir))
        else:
            done.append(fetch_archive(archives[part], data_dir, archives_dir, mirror, delete_archives))
        print(done[-1])
    return done


# -- verifying ---------------------------------------------------------------------------------------------------
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
                listed: dict[str, tuple[int | None, int | None]],
                listing: str | None = None) -> tuple[list[str], list[tuple]]:
    """Problems of ``data_dir/split`` (an image folder, ``val2017`` or ``validation/data``) against its count and
    the ``listed`` images of the annotation file named ``listing`` (default: ``instances_<split>.json``), and the
    images to decode."""
    folder = Path(data_dir) / split
    if not folder.is_dir():
        return [f"{folder}: missing"], []
    present = sorted(p.name for p in folder.iterdir() if p.name.endswith(".jpg"))
    problems = []
    if expected is not None and len(present) != expected:
        problems.append(f"{folder}: {len(present)} .jpg files, expected {expected}")
    ann = listing or instances_file(data_dir, split).name
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
        listed, found = read_listing(instances_file(data_dir, split))
        problems += found
        count = expected[split] if expected is not None else (len(listed) if listed else None)
        more, to_decode = check_split(data_dir, split, count, listed)
        problems += more
        items += to_decode
    return problems + decode_problems(items, workers, progress)


def parse_counts(text: str) -> dict[str, int] | str:
    """``--expected-counts``: ``coco2017`` or ``TRAIN,VAL`` (images per split), or ``annotations`` (as many as the
    annotation files list, returned as that word)."""
    if text == "coco2017":
        return dict(IMAGES)
    if text == "annotations":
        return text
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not coco2017, annotations, or TRAIN,VAL image counts")
    return {"train2017": int(parts[0]), "val2017": int(parts[1])}
