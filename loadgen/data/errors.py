"""The data helpers' errors: each message names the file it concerns (exit status 1 in the scripts)."""

from __future__ import annotations


class DataError(RuntimeError):
    """A data problem with the file it concerns in the message (exit status 1 in the scripts)."""


class ChecksumError(DataError):
    pass


class UnsafeArchiveError(DataError):
    pass


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (tarfile's open error lists every method it tried, a line each)."""
    return " ".join(str(exc).split()) or type(exc).__name__
