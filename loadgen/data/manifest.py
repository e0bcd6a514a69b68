"""Dataset manifests and verification: every bad file and count is reported, not only the first, and files the
manifest does not list are reported too."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen.data.download import _check, file_digest
from loadgen.data.errors import DataError


@dataclass(frozen=True)
class Manifest:
    """Expected files (size and checksum) and file counts of a dataset folder.

    JSON form: ``{"files": {"rel/path": {"size": 123, "sha256": "...", "md5": "..."}},
    "counts": [{"glob": "train/*/*.JPEG", "count": 1281167}], "ignore": ["notes/*"]}``; every field but the
    path is optional. ``ignore`` lists globs of files that may be present without being listed (see
    :func:`verify`).
    """

    files: Mapping[str, Mapping[str, Any]]
    counts: tuple[Mapping[str, Any], ...] = ()
    ignore: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | os.PathLike) -> Manifest:
        """The manifest in ``path``; a file that is not a manifest raises DataError naming it."""
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict) or not isinstance(data.get("files", {}), dict):
                raise ValueError("not a JSON object with a 'files' object")
            return cls(files=data.get("files", {}), counts=tuple(data.get("counts", ())),
                       ignore=tuple(data.get("ignore", ())))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a manifest ({exc})") from exc

    @classmethod
    def of_folder(cls, root: str | os.PathLike, patterns: Iterable[str] = ("**/*",)) -> Manifest:
        root = Path(root)
        files = {}
        for pattern in patterns:
            for p in sorted(root.glob(pattern)):
                if p.is_file():
                    files[p.relative_to(root).as_posix()] = {"size": p.stat().st_size, "sha256": file_digest(p)}
        return cls(files=files)

    def dump(self, path: str | os.PathLike) -> None:
        body = {"files": dict(self.files), "counts": list(self.counts)}
        if self.ignore:
            body["ignore"] = list(self.ignore)
        Path(path).write_text(json.dumps(body, indent=1) + "\n")


# Present without being listed, in any dataset folder: the manifest itself and a provenance note beside the
# data (the mini sets write SOURCE.txt). Hidden files and folders are skipped as well: our own partial folders
# (a live build's, or one reclaimed on the next run) and the litter of file managers.
ALWAYS_IGNORED = ("manifest.json", "SOURCE.txt", "README*")


def unlisted(root: str | os.PathLike, manifest: Manifest) -> list[str]:
    """Files under ``root`` that ``manifest`` does not list (paths relative to ``root``), minus the ignored ones."""
    import fnmatch

    root = Path(root)
    patterns = ALWAYS_IGNORED + tuple(manifest.ignore)
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel_folder = Path(folder).relative_to(root)
        for name in sorted(names):
            rel = (rel_folder / name).as_posix()
            if name.startswith(".") or rel in manifest.files or any(fnmatch.fnmatch(rel, p) for p in patterns):
                continue
            found.append(rel)
    return found


def verify(root: str | os.PathLike, manifest: Manifest, checksums: bool = True, progress: bool = True,
           extras: bool = True) -> list[str]:
    """Every problem of ``root`` against ``manifest``, one message per bad file or count; empty when all is well.

    With ``extras``, a file present but not in the manifest is a problem too (a stray or misplaced file is read
    by loaders that list folders), except those :func:`unlisted` ignores.
    """
    from tqdm import tqdm

    root = Path(root)
    problems = []
    if extras and manifest.files:
        problems += [f"{root / rel}: present but not in the manifest" for rel in unlisted(root, manifest)]
    for rel, expect in tqdm(sorted(manifest.files.items()), desc="verify", unit="file",
                            disable=None if progress else True, leave=False):
        path = root / rel
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        if "size" in expect and path.stat().st_size != expect["size"]:
            problems.append(f"{path}: size {path.stat().st_size}, expected {expect['size']}")
            continue
        if checksums:
            problem = _check(path, expect.get("sha256"), expect.get("md5"), progress=False)
            if problem:
                problems.append(f"{path}: {problem}")
    for rule in manifest.counts:
        found = sum(1 for p in root.glob(rule["glob"]) if p.is_file())
        if found != rule["count"]:
            problems.append(f"{root / rule['glob']}: {found} files, expected {rule['count']}")
    return problems


def report(root: str | os.PathLike, problems: list[str]) -> int:
    """Print every problem (``bad: ...`` on stderr) and one verdict line for ``root``; the exit status: 1 if any."""
    for problem in problems:
        print(f"bad: {problem}", file=sys.stderr)
    print(f"{root}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0
