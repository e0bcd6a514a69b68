"""The suite's only wrapper over ``mlperf_logging.mllog``: MLPerf training logs that the compliance checker accepts.

One :class:`MLLog` per training run. It writes ``:::MLLOG`` lines to a file (and, optionally, to stdout) through
a logger of its own, so it changes no global logging state. Only rank 0 writes, as the MLPerf rules ask; on other
ranks every call is a no-op. Keys are ``mllog.constants`` names.

A run resumed from a checkpoint continues the same log: ``MLLog(path, append=True)`` after the file was cut back
to where the checkpoint was taken, and :meth:`MLLog.continue_run` with the first run's ``run_start`` time, so
the log reads as one run and the time to train is measured from the first ``run_start``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

from mlperf_logging.mllog import constants, mllog

_WRAPPER_FILES = frozenset({__file__, contextlib.__file__})


@dataclasses.dataclass(frozen=True)
class Tagged:
    """A hyperparameter's value with the metadata its rule reads, e.g. translation's ``max_sequence_length``,
    whose rule wants ``{"method": "discard"}`` beside the length."""

    value: Any
    metadata: Mapping[str, Any]


def _caller_offset() -> int:
    """mllog's ``stack_offset`` that names the benchmark code behind a log line, as mllog does when called directly.

    Called from :meth:`MLLog.event`/``start``/``end``: offset 2 is their caller. Frames of this module (the
    helpers below) and of contextlib (``with log.epoch(...)``) are skipped, so a line carries the training
    script's file and line, not this wrapper's.
    """
    frame, offset = sys._getframe(2), 2
    while frame is not None and frame.f_code.co_filename in _WRAPPER_FILES:
        frame, offset = frame.f_back, offset + 1
    return offset


def rank_from_env() -> int:
    """The process rank set by torchrun (RANK), else 0."""
    return int(os.environ.get("RANK", "0"))


class MLLog:
    """MLPerf training logger: ``event``, ``start``, ``end`` and helpers for the required keys."""

    def __init__(self, path: str | os.PathLike | None = None, rank: int | None = None, stdout: bool = True,
                 root_dir: str | None = None, append: bool = False) -> None:
        self.rank = rank_from_env() if rank is None else rank
        self.enabled = self.rank == 0
        self.path = None if path is None else os.fspath(path)
        self._handlers: list[logging.Handler] = []
        self._run_start_ms: float | None = None
        self._run_stop_ms: float | None = None
        # A Logger made directly, not through logging.getLogger: nothing is registered or shared globally.
        logger = logging.Logger(f"mlperf.timing.{id(self)}", level=logging.INFO)
        if self.enabled:
            if self.path is not None:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                self._handlers.append(logging.FileHandler(self.path, mode="a" if append else "w"))
            if stdout:
                self._handlers.append(logging.StreamHandler(sys.stdout))
            for h in self._handlers:
                logger.addHandler(h)
        self._mllogger = mllog.MLLogger(logger=logger, root_dir=root_dir)

    # the three mllog calls ---------------------------------------------------------------------------------
    def event(self, key: str, value: Any = None, metadata: Mapping[str, Any] | None = None) -> None:
        if self.enabled:
            self._mllogger.event(key=key, value=value, metadata=dict(metadata or {}), stack_offset=_caller_offset())

    def start(self, key: str, value: Any = None, metadata: Mapping[str, Any] | None = None) -> None:
        now_ms = time.time() * 1000  # the logged time and run_seconds use the same clock reading
        if self.enabled:
            self._mllogger.start(key=key, value=value, metadata=dict(metadata or {}), time_ms=now_ms,
                                 stack_offset=_caller_offset())
        if key == constants.RUN_START:
            self._run_start_ms = now_ms

    def end(self, key: str, value: Any = None, metadata: Mapping[str, Any] | None = None) -> None:
        now_ms = time.time() * 1000
        if self.enabled:
            self._mllogger.end(key=key, value=value, metadata=dict(metadata or {}), time_ms=now_ms,
                               stack_offset=_caller_offset())
        if key == constants.RUN_STOP:
            self._run_stop_ms = now_ms

    # helpers for what every benchmark logs -----------------------------------------------------------------
    def submission(self, benchmark: str, division: str, org: str = "mlperf-suite", platform: str | None = None,
                   status: str = "research") -> None:
        """The submission_* keys. ``division`` is "closed" for the reference config, "open" for reduced ones."""
        if division not in ("closed", "open"):
            raise ValueError(f"division must be closed or open, got {division!r}")
        import platform as _platform

        self.event(constants.SUBMISSION_BENCHMARK, benchmark)
        self.event(constants.SUBMISSION_ORG, org)
        self.event(constants.SUBMISSION_DIVISION, division)
        self.event(constants.SUBMISSION_STATUS, status)
        self.event(constants.SUBMISSION_PLATFORM, platform or f"{_platform.node() or 'host'}-{os.cpu_count()}cpu")

    def hyperparameters(self, values: Mapping[str, Any]) -> None:
        """One event a key; a :class:`Tagged` value carries its metadata."""
        for key, value in values.items():
            if isinstance(value, Tagged):
                self.event(key, value.value, value.metadata)
            else:
                self.event(key, value)

    @contextlib.contextmanager
    def init(self) -> Iterator[None]:
        """init_start ... init_stop, with the cache_clear the rules require before init_stop."""
        self.start(constants.INIT_START)
        yield
        self.event(constants.CACHE_CLEAR, True)
        self.end(constants.INIT_STOP)

    @contextlib.contextmanager
    def block(self, first_epoch_num: int, epoch_count: int) -> Iterator[None]:
        meta = {"first_epoch_num": first_epoch_num, "epoch_count": epoch_count}
        self.start(constants.BLOCK_START, metadata=meta)
        yield
        self.end(constants.BLOCK_STOP, metadata=meta)

    @contextlib.contextmanager
    def epoch(self, epoch_num: int) -> Iterator[None]:
        self.start(constants.EPOCH_START, metadata={"epoch_num": epoch_num})
        yield
        self.end(constants.EPOCH_STOP, metadata={"epoch_num": epoch_num})

    def eval_start(self, epoch_num: float) -> None:
        """Logged before the evaluation runs, so that eval_stop - eval_start is its real duration."""
        self.start(constants.EVAL_START, metadata={"epoch_num": epoch_num})

    def eval_stop(self, epoch_num: float, accuracy: Any) -> None:
        """eval_accuracy (a number, or a dict such as Mask R-CNN's {"BBOX": .., "SEGM": ..}), then eval_stop."""
        meta = {"epoch_num": epoch_num}
        self.event(constants.EVAL_ACCURACY, accuracy, metadata=meta)
        self.end(constants.EVAL_STOP, metadata=meta)

    def run_stop(self, success: bool) -> None:
        self.end(constants.RUN_STOP, metadata={"status": constants.SUCCESS if success else constants.ABORTED})

    @property
    def run_start_ms(self) -> float | None:
        return self._run_start_ms

    def continue_run(self, run_start_ms: float) -> None:
        """A resumed run: its run_start is the first run's (already in the log), which run_seconds counts from."""
        self._run_start_ms = run_start_ms

    @property
    def run_seconds(self) -> float | None:
        """Time from run_start to run_stop, the MLPerf time-to-train."""
        if self._run_start_ms is None or self._run_stop_ms is None:
            return None
        return (self._run_stop_ms - self._run_start_ms) / 1000.0

    def flush(self) -> None:
        for h in self._handlers:
            h.flush()

    def close(self) -> None:
        for h in self._handlers:
            h.flush()
            h.close()
        self._handlers.clear()

    def __enter__(self) -> MLLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
