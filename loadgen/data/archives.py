"""Safe extraction of tar and zip archives.

Absolute paths, ``..``, links that point outside the target, links whose meaning depends on other links and
device files are refused before anything is written; the target is filled through a temporary folder renamed
into place."""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from loadgen.data.atomic import partial_folder
from loadgen.data.errors import DataError, UnsafeArchiveError, one_line


def _member_problem(name: str, link: str | None, kind: str) -> str | None:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")):
        return f"absolute path {name!r}"
    if ".." in path.parts:
        return f"path {name!r} leaves the target folder"
    if kind in ("device", "fifo"):
        return f"{kind} file {name!r}"
    if link is not None:
        target = PurePosixPath(link) if kind == "hardlink" else path.parent / link
        if PurePosixPath(link).is_absolute() or ".." in PurePosixPath(os.path.normpath(str(target))).parts \
                or os.path.normpath(str(target)).startswith(".."):
            return f"link {name!r} -> {link!r} points outside the target folder"
    return None


def _within(name: str) -> str:
    """A member path as the archive's own key: normalised, without a leading ``./``."""
    return os.path.normpath(name).lstrip("/") if name not in ("", ".") else "."


def _link_problems(members: list[tuple[str, str | None, str]]) -> list[str]:
    """Links whose meaning depends on other links, refused as a rule.

    A path is only checked lexically above; through a symlink (``a/b -> ..`` then ``a/b/c -> ../..``) a name
    that looks inside can land outside, and a chain or a loop of links can only be judged by following it on
    disk. Real datasets need none of these, so a link to a link, a member written through a link, and a
    hardlink to anything but an earlier regular file are all refused, before anything is written.
    """
    problems = []
    symlinks = {_within(name) for name, _, kind in members if kind == "symlink"}
    files: set[str] = set()

    def through_link(path: str) -> str | None:
        """The first symlink member that ``path`` passes through, checked before each ``..`` is applied
        (``l/../f`` goes through ``l`` on disk, however it normalises)."""
        at: list[str] = []
        for part in PurePosixPath(path).parts:
            if part == "..":
                if at:
                    at.pop()
            elif part not in (".", "/"):
                at.append(part)
                if "/".join(at) in symlinks:
                    return "/".join(at)
        return None

    for name, link, kind in members:
        rel = _within(name)
        parent = os.path.dirname(rel)
        if parent and (via := through_link(parent)):
            problems.append(f"{name!r} is written through the link {via!r}")
        if kind == "symlink" and link is not None:
            if via := through_link(os.path.join(parent, link)):
                problems.append(f"link {name!r} -> {link!r} leads to another link ({via!r}); chained links "
                                "are refused")
        elif kind == "hardlink" and link is not None:
            if _within(link) not in files:
                problems.append(f"hardlink {name!r} -> {link!r} is not to an earlier regular file of the archive")
        if kind == "file":
            files.add(rel)
    return problems


def check_archive(archive: str | os.PathLike) -> list[str]:
    """Every unsafe member of a tar or zip archive, as messages; empty when it is safe to extract.

    A file that is not a readable archive (truncated, corrupt) raises DataError naming it.
    """
    archive = str(archive)
    problems = []
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if problem := _member_problem(info.filename, None, "file"):
                        problems.append(problem)
            return problems
        members = []
        with tarfile.open(archive) as tf:
            for m in tf:
                kind = ("device" if m.isdev() and not m.isfifo() else "fifo" if m.isfifo() else
                        "symlink" if m.issym() else "hardlink" if m.islnk() else "dir" if m.isdir() else "file")
                link = m.linkname if m.issym() or m.islnk() else None
                members.append((m.name, link, kind))
                if problem := _member_problem(m.name, link, kind):
                    problems.append(problem)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise DataError(f"{archive}: not a readable tar or zip archive ({one_line(exc)})") from exc
    return problems + _link_problems(members)


def extract(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract ``archive`` into ``dest`` (which must not exist yet) safely and atomically."""
    dest = Path(dest)
    if dest.exists():
        raise DataError(f"{dest}: already exists; remove it to extract {archive} again")
    problems = check_archive(archive)
    if problems:
        raise UnsafeArchiveError(f"{archive}: refused, {'; '.join(problems[:5])}"
                                 + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    tmp = partial_folder(dest.parent, dest.name)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")  # the stdlib's own guard, behind ours
        os.replace(tmp, dest)
    except tarfile.FilterError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UnsafeArchiveError(f"{archive}: refused, {one_line(exc)}") from exc
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"{archive}: cannot extract ({one_line(exc)})") from exc
    except BaseException:  # KeyboardInterrupt included: no half-extracted folder left; re-raised
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
