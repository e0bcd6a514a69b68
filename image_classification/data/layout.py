"""ImageNet's layouts on disk: synsets, the train/<wnid>/ folders, val_map.txt (each bad line named by number)."""

from __future__ import annotations

import os
from pathlib import Path

from loadgen.data import (
    DataError,
)

TRAIN_IMAGES, VAL_IMAGES = 1_281_167, 50_000  # ILSVRC2012 (Russakovsky et al. 2015, Table 2)
NUM_CLASSES = 1000  # ILSVRC2012; the label range of a val_map.txt read without synsets beside it
HERE = Path(__file__).resolve().parents[1]  # the benchmark folder
ARCHIVES_MANIFEST = HERE / "imagenet_archives.json"



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
        raise DataError(summarize(f"{m}: missing (a class without its train folder)" for m in missing))
    if not samples:
        raise DataError(f"{root / 'train'}: no images")
    return samples


def summarize(problems, limit: int = 5) -> str:
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
            raise DataError(summarize(problems))
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
