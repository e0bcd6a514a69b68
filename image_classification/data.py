"""ImageNet (ILSVRC2012) on disk: layouts, image decoding, preprocessing presets, the inference cache, and the
``download`` / ``verify`` commands behind download_dataset.sh and verify_dataset.sh.

On-disk layout (the real set and the embedded mini set alike)::

    <root>/train/<wnid>/*.JPEG
    <root>/val/*.JPEG + <root>/val_map.txt        what the MLPerf inference reference reads
      or <root>/val/<wnid>/*.JPEG                  the ImageFolder layout
    <root>/synset_words.txt                        "<wnid> <words>", one class a line, in label order

Labels are the index of the wnid in sorted order, as torchvision's ImageFolder and val_map.txt both number them.
This module imports no ML framework: the training loop wraps its datasets, the inference QSL reads its cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from loadgen.data import (
    DataError,
    Manifest,
    PreprocessCache,
    download,
    extract,
    partial_folder,
    process_pool,
    verify,
    write_atomic,
)

TRAIN_IMAGES, VAL_IMAGES = 1_281_167, 50_000  # ILSVRC2012 (Russakovsky et al. 2015, Table 2)
NUM_CLASSES = 1000  # ILSVRC2012; the label range of a val_map.txt read without synsets beside it
HERE = Path(__file__).resolve().parent
ARCHIVES_MANIFEST = HERE / "imagenet_archives.json"


class BadImageError(DataError):
    """An image that cannot be decoded; the message names the file."""


# ------------------------------------------------------------------------------------------------- layouts
def read_synsets(root: str | os.PathLike) -> list[str]:
    """wnids in label order: synset_words.txt when present, else the sorted train/ folder names."""
    root = Path(root)
    words = root / "synset_words.txt"
    if words.is_file():
        return [line.split()[0] for line in words.read_text().splitlines() if line.strip()]
    train = root / "train"
    if train.is_dir():
        return sorted(p.name for p in train.iterdir() if p.is_dir())
    raise DataError(f"{root}: neither synset_words.txt nor train/<wnid>/ folders found")


def class_count(root: str | os.PathLike) -> int:
    """Classes of the dataset at ``root``: its synsets when it has them (the mini set has 10), else ImageNet's."""
    try:
        return len(read_synsets(root))
    except DataError:  # the inference reference's layout: val/ and val_map.txt only
        return NUM_CLASSES


def train_samples(root: str | os.PathLike) -> list[tuple[str, int]]:
    root = Path(root)
    wnids = read_synsets(root)
    samples = []
    missing = []
    for label, wnid in enumerate(wnids):
        folder = root / "train" / wnid
        if not folder.is_dir():
            missing.append(str(folder))
            continue
        samples += [(str(p), label) for p in sorted(folder.iterdir()) if p.is_file()]
    if missing:
        raise DataError(_summary(f"{m}: missing (a class without its train folder)" for m in missing))
    if not samples:
        raise DataError(f"{root / 'train'}: no images")
    return samples


def _summary(problems, limit: int = 5) -> str:
    """Up to ``limit`` problems on one line, and how many more there are."""
    problems = list(problems)
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


def read_val_map(path: str | os.PathLike, num_classes: int | None = None) -> tuple[list[tuple[str, int, int]],
                                                                                    list[str]]:
    """``(file, label, line number)`` of each entry of a val_map.txt, and every problem as ``path:line: what``.

    Problems are malformed lines, labels outside ``0..num_classes-1`` (when given) and files listed twice.
    Blank lines are skipped, CRLF line ends are accepted.
    """
    path = Path(path)
    try:
        text = path.read_text()  # universal newlines: "\r\n" is a line end
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a text file ({exc})") from exc
    entries, problems = [], []
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            problems.append(f"{path}:{lineno}: expected '<file> <label>', got {line!r}")
            continue
        name, label = parts[0], int(parts[1])
        if num_classes is not None and not 0 <= label < num_classes:
            problems.append(f"{path}:{lineno}: label {label} of {name} is outside 0..{num_classes - 1}")
            continue
        if name in first_line:
            problems.append(f"{path}:{lineno}: {name} is listed again (first on line {first_line[name]})")
            continue
        first_line[name] = lineno
        entries.append((name, label, lineno))
    return entries, problems


def val_samples(root: str | os.PathLike, val_map: str | os.PathLike | None = None) -> list[tuple[str, int]]:
    """(path, label) of the validation images, from val_map.txt if there is one, else from val/<wnid>/.

    A ``val_map`` given explicitly must exist. Bad lines (malformed, label out of range, listed twice) and
    listed files that are missing raise DataError naming the file and line.
    """
    root = Path(root)
    if val_map is not None and not Path(val_map).is_file():
        raise DataError(f"{val_map}: no such file (given as the val_map / --dataset-list)")
    map_path = Path(val_map) if val_map else root / "val_map.txt"
    base = root / "val" if (root / "val").is_dir() else root
    if map_path.is_file():
        entries, problems = read_val_map(map_path, class_count(root))
        samples = [(str(base / name), label) for name, label, _ in entries]
        problems += [f"{map_path}:{lineno}: {base / name} is missing" for name, _, lineno in entries
                     if not (base / name).is_file()]
        if problems:
            raise DataError(_summary(problems))
        return samples
    wnids = read_synsets(root)
    samples = []
    for label, wnid in enumerate(wnids):
        folder = base / wnid
        if folder.is_dir():
            samples += [(str(p), label) for p in sorted(folder.iterdir()) if p.is_file()]
    if not samples:
        raise DataError(f"{root}: no val_map.txt and no val/<wnid>/ images")
    return samples


# ---------------------------------------------------------------------------------------------- decoding
def load_image(path: str) -> Image.Image:
    """Decode any image PIL knows as RGB: CMYK, grayscale, palette, and PNG bytes behind a .JPEG name included.

    Missing, truncated or empty files raise BadImageError naming the file.
    """
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so a truncated file fails here and not later
            return img if img.mode == "RGB" else img.convert("RGB")
    except FileNotFoundError as exc:
        raise BadImageError(f"{path}: missing (no such file)") from exc
    except IsADirectoryError as exc:
        raise BadImageError(f"{path}: is a folder, not an image") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        size = os.path.getsize(path) if os.path.exists(path) else 0
        reason = "empty file" if size == 0 else f"{type(exc).__name__}: {exc}"
        raise BadImageError(f"{path}: cannot decode image ({reason})") from exc


# ----------------------------------------------------------------------------------------------- presets
@dataclasses.dataclass(frozen=True)
class EvalPreset:
    """Resize the shorter side to ``resize``, centre-crop ``crop``, then normalise.

    Split in two so the inference cache can store the uint8 crop (4x smaller than float32) and normalise a whole
    batch at once: ``geometry`` (PIL image -> uint8 HWC) and ``normalize`` (uint8 NHWC -> float32 NCHW/NHWC).
    Training-time evaluation calls the preset itself, so it and the QSL see the same pixels.
    """

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0  # pixel values are multiplied by scale before mean/std
    interpolation: str = "bilinear"

    def geometry(self, img: Image.Image) -> np.ndarray:
        w, h = img.size
        short = min(w, h)
        nw, nh = max(self.crop, round(w * self.resize / short)), max(self.crop, round(h * self.resize / short))
        method = {"bilinear": Image.Resampling.BILINEAR, "area": Image.Resampling.BOX}[self.interpolation]
        img = img.resize((nw, nh), method)
        left, top = (nw - self.crop) // 2, (nh - self.crop) // 2
        return np.asarray(img.crop((left, top, left + self.crop, top + self.crop)), dtype=np.uint8)

    def normalize(self, batch: np.ndarray, layout: str = "NCHW") -> np.ndarray:
        x = batch.astype(np.float32)
        x *= self.scale
        x -= np.asarray(self.mean, np.float32)
        x /= np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if layout == "NCHW" else x

    def __call__(self, img: Image.Image) -> np.ndarray:
        return self.normalize(self.geometry(img)[None])[0]


def presets(crop: int = 224) -> dict[str, EvalPreset]:
    """Evaluation presets by name; ``resize`` keeps the reference's 87.5 % central crop for any ``crop``."""
    resize = round(crop / 0.875)
    return {
        # torchvision's references/classification eval transform (ImageNet mean/std on [0, 1] pixels).
        "torchvision": EvalPreset(resize, crop, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                                  scale=1 / 255),
        # The inference reference's pre_process_vgg (resnet50 tf/onnxruntime profiles): area resize, mean only.
        "vgg": EvalPreset(resize, crop, mean=(123.68, 116.78, 103.94), interpolation="area"),
        # The inference reference's pre_process_mobilenet: pixels scaled to [-1, 1].
        "mobilenet": EvalPreset(resize, crop, mean=(1.0, 1.0, 1.0), scale=2 / 255),
    }


def train_transform(crop: int, scale: tuple[float, float] = (0.08, 1.0), flip: bool = True):
    """Random-resized crop and horizontal flip (torchvision's training preset), to a uint8 HWC crop.

    Normalisation is left to the batch (``EvalPreset.normalize``), once per batch rather than once per image.
    These are torchvision's v1 transforms, the default of its classification references: on PIL images they
    cost 0.1 ms an image here, the v2 ones 0.7 ms (dispatch overhead), which stalled the training step.
    """
    from torchvision import transforms

    steps = [transforms.RandomResizedCrop(crop, scale=scale)] + ([transforms.RandomHorizontalFlip()] if flip else [])
    augment = transforms.Compose(steps)

    def transform(img: Image.Image) -> np.ndarray:
        return np.asarray(augment(img), dtype=np.uint8)

    return transform


class ImageList:
    """A map-style dataset over (path, label) pairs giving uint8 HWC crops; the training loop hands it to torch's
    DataLoader, with a collate function that normalises each batch (train.py).

    When every image fits in ``keep_decoded_bytes`` (judged from the first image), decoded images are kept after
    their first use, so later epochs skip JPEG decoding. ImageNet does not fit and is decoded every epoch.
    """

    def __init__(self, samples: Sequence[tuple[str, int]], transform, keep_decoded_bytes: int = 0) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.budget = keep_decoded_bytes
        self.decoded: dict[int, Image.Image] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int, int]) -> tuple[np.ndarray, int]:
        """``key`` is an index, or ``(index, epoch, seed)`` from ``loadgen.training.distributed.SeededShards``: the
        augmentation is then drawn from those three alone, the same whichever process or worker loads the sample."""
        if isinstance(key, tuple):
            import torch

            i, epoch, seed = key
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed((seed * 1_000_003 + epoch) * len(self.samples) + i)
                return self._get(i)
        return self._get(key)

    def _get(self, i: int) -> tuple[np.ndarray, int]:
        path, label = self.samples[i]
        img = self.decoded.get(i) if self.decoded is not None else None
        if img is None:
            img = load_image(path)
            if self.decoded is None and self.budget:
                fits = img.width * img.height * 3 * len(self.samples) <= self.budget
                self.decoded = {} if fits else None
                self.budget = self.budget if fits else 0
            if self.decoded is not None:
                self.decoded[i] = img
        return self.transform(img), label


# --------------------------------------------------------------------------------------- inference cache
def _cache_chunk(job: tuple[str, int, list[str], EvalPreset]) -> list[str]:
    """Worker: preprocess ``paths`` into rows [start, start + len) of the memory-mapped array."""
    array_path, start, paths, preset = job
    images = np.lib.format.open_memmap(array_path, mode="r+")
    errors = []
    for offset, path in enumerate(paths):
        try:
            images[start + offset] = preset.geometry(load_image(path))
        except BadImageError as exc:  # reported by the parent, with every other bad file
            errors.append(str(exc))
    images.flush()
    return errors


def check_image(path: str) -> str | None:
    """None when ``path`` decodes whole, else what is wrong (naming the file).

    JPEGs are decoded at 1/8 scale (PIL's draft mode): every byte of the stream is still read, so truncation
    and corruption are found, at a fraction of the cost of a full decode.
    """
    try:
        with Image.open(path) as img:
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except FileNotFoundError:
        return f"{path}: missing (no such file)"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = "empty file" if os.path.isfile(path) and os.path.getsize(path) == 0 else \
            f"{type(exc).__name__}: {exc}"
        return f"{path}: cannot decode image ({reason})"
    return None


def _check_chunk(paths: list[str]) -> list[str]:
    return [problem for p in paths if (problem := check_image(p))]


def decode_problems(paths: Sequence[str], workers: int = 1, progress: bool = True) -> list[str]:
    """Every image of ``paths`` that does not decode, over ``workers`` processes, with a progress bar."""
    from tqdm import tqdm

    chunks = [list(paths[i:i + 64]) for i in range(0, len(paths), 64)]
    problems: list[str] = []
    with tqdm(total=len(paths), desc="decode", unit="img", disable=None if progress else True, leave=False) as bar:
        if workers <= 1 or len(chunks) <= 1:
            results = map(_check_chunk, chunks)
            for chunk, found in zip(chunks, results, strict=True):
                problems += found
                bar.update(len(chunk))
        else:
            with process_pool(workers) as pool:
                for chunk, found in zip(chunks, pool.map(_check_chunk, chunks), strict=True):
                    problems += found
                    bar.update(len(chunk))
    return problems


def check_tree(data_dir: str | os.PathLike, workers: int = 1, progress: bool = True) -> list[str]:
    """Problems of an ImageNet folder that has no manifest: val_map.txt's lines, and every image decoded.

    val_map.txt: malformed lines, labels outside the class range, files listed twice, listed files missing, and
    images in val/ it does not list. A flat val/ without a val_map.txt has no labels, which is a problem too.
    """
    root = Path(data_dir)
    val, map_path = root / "val", root / "val_map.txt"
    problems: list[str] = []
    flat_val = sorted(p for p in val.iterdir() if p.is_file()) if val.is_dir() else []
    if map_path.is_file():
        entries, problems = read_val_map(map_path, class_count(root))
        base = val if val.is_dir() else root
        problems += [f"{map_path}:{lineno}: {base / name} is missing" for name, _, lineno in entries
                     if not (base / name).is_file()]
        # Every name a line gives counts as listed, bad lines' too: their problem is already reported.
        listed = {line.split()[0] for line in map_path.read_text().splitlines() if line.split()}
        problems += [f"{p}: not listed in {map_path.name}" for p in flat_val if p.name not in listed]
    elif flat_val:
        problems.append(f"{map_path}: missing, so the {len(flat_val)} images in {val} have no labels")
    images = [str(p) for p in sorted(root.glob("train/*/*")) if p.is_file()]
    images += [str(p) for p in flat_val] + [str(p) for p in sorted(val.glob("*/*")) if p.is_file()]
    return problems + decode_problems(images, workers, progress)


def _source_identity(samples: Sequence[tuple[str, int]]) -> str:
    """What the cache of ``samples`` depends on: each file's path, label and identity on disk.

    Size alone would keep a replaced image of the same size; size, modification time (ns) and inode change
    when a file is rewritten in place or replaced by a rename. Hashing the contents would cost as much as
    the preprocessing.
    """
    h = hashlib.sha256()
    missing = []
    for path, label in samples:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            missing.append(f"{path}: missing (no such file)")
            continue
        h.update(f"{path}\t{label}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_ino}\n".encode())
    if missing:
        raise BadImageError(_summary(missing))
    return h.hexdigest()


def build_cache(samples: Sequence[tuple[str, int]], preset: EvalPreset, cache_root: str | os.PathLike,
                workers: int | None = None, progress: bool = True) -> Path:
    """Preprocess every image once into ``images.npy`` (uint8 N x crop x crop x 3) and ``labels.npy``.

    Parallel over processes (PIL's decoder releases the GIL, but the per-image Python and numpy work around it
    does not, so threads would not scale) that end with this one, written straight into one memory-mapped
    array, atomic and keyed by the preset and the files' identities (loadgen.data.PreprocessCache).
    """
    from tqdm import tqdm

    cache = PreprocessCache(cache_root, dataclasses.asdict(preset), _source_identity(samples))
    workers = workers or os.cpu_count() or 1

    def build(folder: Path) -> None:
        n = len(samples)
        array_path = str(folder / "images.npy")
        np.lib.format.open_memmap(array_path, mode="w+", dtype=np.uint8, shape=(n, preset.crop, preset.crop, 3))
        np.save(folder / "labels.npy", np.asarray([label for _, label in samples], dtype=np.int64))
        step = max(1, min(256, n // (workers * 4) or 1))
        jobs = [(array_path, s, [p for p, _ in samples[s:s + step]], preset) for s in range(0, n, step)]
        errors: list[str] = []
        with process_pool(workers) as pool, tqdm(total=n, desc="preprocess", unit="img",
                                                        disable=None if progress else True, leave=False) as bar:
            for job, errs in zip(jobs, pool.map(_cache_chunk, jobs), strict=True):
                errors += errs
                bar.update(len(job[2]))
        if errors:
            raise BadImageError(_summary(errors))

    return cache.get_or_build(build)


# --------------------------------------------------------------------------------- download and verify
def prepare_from_archives(data_dir: Path, archives: dict[str, Path]) -> None:
    """Extract ILSVRC2012 train/val tars and the devkit into the layout above; build val_map.txt and synsets.

    Resumable: every step's output appears whole or not at all (each folder is extracted beside its final name
    and renamed), so a run killed at any point is finished by the next one, which skips what is done and
    reclaims the dead run's partial folders (loadgen.data.partial_folder).
    """
    import scipy.io

    work = partial_folder(data_dir, "imagenet-archives")
    try:
        devkit = extract(archives["devkit"], work / "devkit")
        meta = scipy.io.loadmat(str(next(devkit.rglob("meta.mat"))), squeeze_me=True)["synsets"]
        # ILSVRC ids 1..1000 are the leaf synsets; their wnids sorted give the label order both layouts use.
        leaves = sorted((str(s["WNID"]), int(s["ILSVRC2012_ID"]), str(s["words"])) for s in meta
                        if int(s["ILSVRC2012_ID"]) <= 1000)
        label_of_id = {ilsvrc_id: label for label, (_, ilsvrc_id, _) in enumerate(leaves)}
        write_atomic(data_dir / "synset_words.txt", "".join(f"{w} {words}\n" for w, _, words in leaves))
        truth = next(devkit.rglob("ILSVRC2012_validation_ground_truth.txt")).read_text().split()
        if not (data_dir / "val").is_dir():
            extract(archives["val"], data_dir / "val")
        names = sorted(p.name for p in (data_dir / "val").iterdir())
        write_atomic(data_dir / "val_map.txt", "".join(
            f"{n} {label_of_id[int(t)]}\n" for n, t in zip(names, truth, strict=True)))
        # The train tar holds one tar per class, each extracted to train/<wnid> and then deleted, so the peak
        # extra space is one copy; classes a killed run finished are skipped.
        outer = extract(archives["train"], work / "train_tars")
        for inner in sorted(outer.glob("*.tar")):
            if not (data_dir / "train" / inner.stem).is_dir():
                extract(inner, data_dir / "train" / inner.stem)
            inner.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def get_args_parser(add_help: bool = True):
    from loadgen.cli import ArgumentParser, existing_dir, existing_file, positive
    from loadgen.data import download_url

    parser = ArgumentParser(prog="python -m image_classification.data", add_help=add_help, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="fetch or take the ILSVRC2012 archives, check md5, extract (default: -)")
    d.add_argument("--data-dir", required=True, help="dataset root to create (default: required)")
    d.add_argument("--archives-dir", type=existing_dir, default=None,
                   help="folder holding already-downloaded ILSVRC2012_*.tar files (default: <data-dir>/archives)")
    d.add_argument("--base-url", type=download_url, default=os.environ.get("IMAGENET_URL") or None,
                   help="mirror holding the archive files; ImageNet itself needs an account "
                        "(default: $IMAGENET_URL, else the official URLs)")
    d.add_argument("--manifest", type=existing_file, default=str(ARCHIVES_MANIFEST),
                   help=f"archive names, URLs and md5 sums (default: {ARCHIVES_MANIFEST.name} beside this file)")
    v = sub.add_parser("verify", help="check images, val_map.txt and checksums; exit 1 naming every bad file and "
                                      "line (default: -)")
    v.add_argument("--data-dir", required=True, type=existing_dir, help="dataset root (default: required)")
    v.add_argument("--no-checksums", dest="checksums", action="store_false",
                   help="check file counts and sizes only (default: checksums on)")
    v.add_argument("--workers", type=positive(int), default=os.cpu_count() or 1,
                   help=f"processes that decode images, without a manifest (default: {os.cpu_count()})")
    return parser


def main(args) -> int:
    prog = "python -m image_classification.data"
    try:
        data_dir = Path(args.data_dir)
        if args.command == "download":
            try:
                spec = json.loads(Path(args.manifest).read_text())
                if not all({"file", "url", "md5"} <= set(item) for item in spec["archives"].values()):
                    raise KeyError("file, url and md5 of every archive")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise DataError(f"{args.manifest}: not an archive manifest ({type(exc).__name__}: {exc})") from exc
            archives_dir = Path(args.archives_dir or data_dir / "archives")
            archives = {}
            for key, item in spec["archives"].items():
                archives[key] = download(item["url"], archives_dir / item["file"], md5=item["md5"],
                                         mirror=args.base_url)
            prepare_from_archives(data_dir, archives)
            print(f"{data_dir}: ImageNet ready; check it with ./verify_dataset.sh {data_dir}")
            return 0
        if (data_dir / "manifest.json").is_file():
            problems = verify(data_dir, Manifest.load(data_dir / "manifest.json"), checksums=args.checksums)
        else:
            rules = ({"glob": "train/*/*.JPEG", "count": TRAIN_IMAGES},
                     {"glob": "val/*.JPEG", "count": VAL_IMAGES})
            problems = verify(data_dir, Manifest(files={}, counts=rules), checksums=False)
            problems += check_tree(data_dir, workers=args.workers)
            archives_dir = data_dir / "archives"
            if args.checksums and archives_dir.is_dir():
                spec = json.loads(ARCHIVES_MANIFEST.read_text())["archives"].values()
                files = {f"archives/{a['file']}": {"md5": a["md5"]} for a in spec
                         if (archives_dir / a["file"]).exists()}
                problems += verify(data_dir, Manifest(files=files), extras=False)
        for problem in problems:
            print(f"bad: {problem}", file=sys.stderr)
        print(f"{data_dir}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
        return 1 if problems else 0
    except (DataError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
