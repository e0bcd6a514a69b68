"""WMT English-German on disk: fetching a recipe's archives, laying out its raw files, and verifying the folder;
behind ``python -m translation.data download`` and ``verify``.

A recipe of wmt_files.json (``wmt16``: GNMT's; ``wmt17``: the Transformer's) is fetched in three steps:

1. each archive into ``<root>/archives/`` under the reference's name (resumed, retried, its sha256 or md5
   checked where one is published, else its published size; see the manifest's ``_source``), extracted safely
   into a partial folder, and the members the recipe reads moved to ``<root>/data/<archive key>/``;
2. the raw layout at the top of ``<root>``: ``train.en`` and ``train.de``, the training corpora concatenated in
   the reference's order (the two sides must have as many lines); the test sets' SGM files under WMT's names
   (``newstest2014-deen-src.en.sgm``, ...) and plain dev files (``newstest2013.en``), each with its published
   number of sentences;
3. the processing of :mod:`translation.data.wmt` (``prepare`` or ``prepare_sentencepiece``), which writes
   ``manifest.json`` last.

Every file appears under its name only whole (downloads as ``.part`` renamed once checked, archives extracted
into a partial folder, text written to a temporary file and renamed), so a second run does only what is missing.
No ML framework is imported.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from loadgen.data.archives import extract
from loadgen.data.atomic import partial_folder
from loadgen.data.download import download, join_url
from loadgen.data.errors import ChecksumError, DataError, one_line
from loadgen.data.manifest import Manifest, verify
from translation.data import wmt


@dataclass(frozen=True)
class Archive:
    """One archive: where it comes from, its checksums (None where none is published), and the files a recipe
    takes from it (paths inside the archive)."""

    key: str
    file: str
    url: str
    members: tuple[str, ...]
    sha256: str | None = None
    md5: str | None = None
    bytes: int | None = None

    def folder(self, root: Path) -> Path:
        """Where its members go: ``<root>/data/<key>/``, under their own names."""
        return root / "data" / self.key

    def checks(self) -> dict:
        """Its manifest entry: what can be checked of it."""
        given = {"sha256": self.sha256, "md5": self.md5, "size": self.bytes}
        return {k: v for k, v in given.items() if v is not None}


@dataclass(frozen=True)
class Recipe:
    """One dataset of wmt_files.json: its archives; its training corpora (archive key, file stem: ``<stem>.en``
    and ``<stem>.de``) in the reference's order; its SGM test sets (name -> archive key, the two file names,
    sentences) and plain-text sets (name -> archive key, file stem, sentences); its processing."""

    name: str
    archives: dict[str, Archive]
    train: tuple[tuple[str, str], ...]
    sgm: dict[str, tuple[str, tuple[str, str], int]]
    plain: dict[str, tuple[str, str, int]]
    processing: str

    @classmethod
    def load(cls, path: str | os.PathLike, name: str) -> Recipe:
        """Recipe ``name`` of the manifest ``path``; anything else raises DataError naming the file and the fault."""
        try:
            spec = json.loads(Path(path).read_text())[name]
            archives = {
                key: Archive(
                    key=key,
                    file=str(item["file"]),
                    url=str(item["url"]),
                    members=tuple(item["members"]),
                    sha256=item.get("sha256"),
                    md5=item.get("md5"),
                    bytes=item.get("bytes"),
                )
                for key, item in spec["archives"].items()
            }
            recipe = cls(
                name=name,
                archives=archives,
                train=tuple((str(key), str(stem)) for key, stem in spec["train"]),
                sgm={k: (v["archive"], tuple(v["files"]), int(v["sentences"])) for k, v in spec["sgm"].items()},
                plain={k: (v["archive"], v["stem"], int(v["sentences"])) for k, v in spec["plain"].items()},
                processing=str(spec["processing"]),
            )
            unknown = [k for k, _ in recipe.train] + [v[0] for v in (*recipe.sgm.values(), *recipe.plain.values())]
            if missing := sorted(set(unknown) - set(archives)):
                raise KeyError(f"no archive {missing[0]!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(
                f"{path}: no usable recipe {name!r} ({type(exc).__name__}: {one_line(exc)}); each archive needs "
                "file, url and members, and the recipe train, sgm, plain and processing"
            ) from exc
        return recipe


def source_url(archive: Archive, base_url: str | None) -> str:
    """The URL to fetch ``archive`` from: its own, or the mirror ``base_url`` plus its URL's path (a mirror keeps
    statmt.org's layout: ``<base>/wmt16/translation-task/dev.tgz``; WMT16's and WMT17's dev.tgz differ)."""
    if not base_url:
        return archive.url
    return join_url(base_url, urllib.parse.urlparse(archive.url).path)


def fetch_archive(
    archive: Archive, root: Path, base_url: str | None = None, delete_archive: bool = False, progress: bool = True
) -> str:
    """Download ``archive`` into ``root/archives`` and move its members to ``root/data/<key>/``; what was done.

    Members already there are kept without a request: they are only ever moved in whole. An archive with no
    published checksum is kept once whole under its name (a download is renamed from ``.part`` only when complete);
    one with a published size is checked against it.
    """
    target = archive.folder(root)
    names = [PurePosixPath(m).name for m in archive.members]
    if all((target / name).is_file() for name in names):
        return f"{target}: {', '.join(names)} already there"
    dest = root / "archives" / archive.file
    # download() keeps a file that matches its checksum without a request; one without is whole once under its name
    if not dest.is_file() or archive.sha256 or archive.md5:
        download(source_url(archive, base_url), dest, sha256=archive.sha256, md5=archive.md5, progress=progress)
    if archive.bytes is not None and dest.stat().st_size != archive.bytes:
        raise ChecksumError(
            f"{dest}: {dest.stat().st_size} bytes, expected {archive.bytes}; delete it to download it again"
        )
    work = partial_folder(root, f"wmt-{archive.key}")
    try:
        unpacked = extract(dest, work / "unpacked")
        if missing := [m for m in archive.members if not (unpacked / m).is_file()]:
            raise DataError(f"{dest}: holds no {missing[0]} (is it {archive.url}?)")
        target.mkdir(parents=True, exist_ok=True)
        for member, name in zip(archive.members, names, strict=True):  # each whole under its name
            os.replace(unpacked / member, target / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if delete_archive:
        dest.unlink()
    return f"{target}: {', '.join(names)} from {archive.file}"


def _lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def _concatenate(sources: list[Path], dest: Path) -> None:
    """``dest`` holding the bytes of ``sources`` one after the other (``cat``), whole or not at all."""
    with wmt.atomic_output(dest, binary=True) as out:
        for source in sources:
            with open(source, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)


def layout(recipe: Recipe, root: Path) -> list[str]:
    """The raw layout at the top of ``root`` from the members in ``root/data`` (step 2 of the module docstring);
    a line per file saying what was done. Files already there are kept (they only ever appear whole)."""
    done = []
    for lang in wmt.LANGS:
        dest = root / f"{wmt.TRAIN}.{lang}"
        if not dest.is_file():
            _concatenate([recipe.archives[key].folder(root) / f"{stem}.{lang}" for key, stem in recipe.train], dest)
        done.append(f"{dest}: {_lines(dest)} lines")
    if (en := _lines(root / f"{wmt.TRAIN}.en")) != (de := _lines(root / f"{wmt.TRAIN}.de")):
        raise DataError(
            f"{root / 'train.de'}: {de} lines, train.en has {en}; the corpora of a pair must have as "
            "many lines (delete both to rebuild them)"
        )
    copies = [(key, name, name) for key, names, _ in recipe.sgm.values() for name in names]
    copies += [
        (key, f"{stem}.{lang}", f"{name}.{lang}") for name, (key, stem, _) in recipe.plain.items() for lang in wmt.LANGS
    ]
    for key, member, name in copies:
        if not (root / name).is_file():
            _concatenate([recipe.archives[key].folder(root) / member], root / name)
    counted = [
        (root / file, len(wmt.read_sgm(root / file)), expected)
        for _, files, expected in recipe.sgm.values()
        for file in files
    ]
    counted += [
        (root / f"{name}.{lang}", _lines(root / f"{name}.{lang}"), expected)
        for name, (_, _, expected) in recipe.plain.items()
        for lang in wmt.LANGS
    ]
    for path, count, expected in counted:
        if count != expected:
            raise DataError(f"{path}: {count} sentences, expected {expected} (from a wrong archive or mirror?)")
        done.append(f"{path}: {count} sentences")
    return done


def fetch(
    recipe: Recipe,
    root: str | os.PathLike,
    base_url: str | None = None,
    delete_archives: bool = False,
    progress: bool = True,
) -> list[str]:
    """Steps 1 and 2 of the module docstring: every archive of ``recipe``, then the raw layout; what was done, a
    line each (also printed)."""
    root = Path(root)
    done = []
    for archive in recipe.archives.values():
        done.append(fetch_archive(archive, root, base_url, delete_archives, progress))
        print(done[-1])
    for line in layout(recipe, root):
        done.append(line)
        print(line)
    return done


def check(recipe: Recipe, root: str | os.PathLike, checksums: bool = True, progress: bool = True) -> list[str]:
    """Every problem of a folder, one message per bad file: the archives present in ``root/archives`` against
    wmt_files.json (sha256 or md5, else size, where published), and the files at the top of ``root`` against the
    ``manifest.json`` written when they were built (missing, unlisted, size, sha256).

    The reference's verify_dataset.sh lists md5 sums of its own processed files; those depend on its Perl
    tokenizer's exact output, which sacremoses does not reproduce byte for byte, so they are not checked here: the
    folder is checked against what this suite wrote.
    """
    root = Path(root)
    present = {
        f"archives/{a.file}": a.checks() for a in recipe.archives.values() if (root / "archives" / a.file).is_file()
    }
    problems = verify(root, Manifest(files=present), checksums=checksums, progress=progress, extras=False)
    built = root / wmt.MANIFEST
    if not built.is_file():
        return problems + [
            f"{built}: missing, so the folder was never processed whole; run ./download_dataset.sh {root} again"
        ]
    return problems + verify(root, Manifest.load(built), checksums=checksums, progress=progress)
