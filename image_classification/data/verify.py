"""Checks of an ImageNet tree without a manifest: every image decoded in parallel, val_map.txt validated."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from image_classification.data.images import check_image
from image_classification.data.layout import class_count, read_val_map
from loadgen.data import (
    process_pool,
)


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
