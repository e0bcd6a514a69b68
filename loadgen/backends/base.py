"""The contract between the harness and a backend.

The harness calls, in order: ``Backend(config)``, ``load(path)``, then ``predict(feeds)`` from one or more worker
threads. Nothing else. A backend never sees LoadGen, sample ids or files other than its model.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Sequence
from typing import ClassVar

import numpy as np


@dataclasses.dataclass(frozen=True)
class BackendConfig:
    """What every backend is built from. ``__post_init__`` only validates."""

    device: str = "cpu"
    threads: int = 1
    inputs: tuple[str, ...] | None = None
    outputs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "gpu"):
            raise ValueError(f"device must be cpu or gpu, got {self.device!r}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


class BackendError(RuntimeError):
    """A backend cannot do what was asked (missing file, missing GPU, unknown tensor name)."""


class Backend(abc.ABC):
    """A model runtime.

    ``predict`` takes one batch as a sequence of arrays, one per model input, each with the batch on axis 0,
    and returns the outputs as numpy arrays with the batch on axis 0, in the order of ``config.outputs`` when
    given, else the model's own order. It must be safe to call from several threads at once.
    """

    name: ClassVar[str]
    #: layout of image inputs the backend expects: "NCHW", "NHWC", or None when not an image model.
    input_layout: ClassVar[str | None] = None
    #: whether load() needs a model path.
    needs_model: ClassVar[bool] = True

    def __init__(self, config: BackendConfig | None = None) -> None:
        self.config = config or BackendConfig()

    @abc.abstractmethod
    def version(self) -> str:
        """The framework's version, for the results JSON."""

    @abc.abstractmethod
    def load(self, path: str) -> Backend:
        """Load the model at ``path``; return self. Raise BackendError with the path on failure."""

    @abc.abstractmethod
    def predict(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one batch."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.config.device}, threads={self.config.threads})"


def pick(names: Sequence[str], wanted: Sequence[str] | None, what: str, path: str) -> list[str]:
    """Select tensor names: all of ``names`` or the ``wanted`` ones, refusing names the model lacks."""
    if not wanted:
        return list(names)
    missing = [w for w in wanted if w not in names]
    if missing:
        raise BackendError(f"{path}: no {what} named {', '.join(missing)} (the model has: {', '.join(names)})")
    return list(wanted)


def require_file(path: str, folder: bool = False) -> None:
    ok = os.path.isdir(path) if folder else os.path.isfile(path)
    if not ok:
        kind = "model folder" if folder else "model file"
        raise BackendError(f"{kind} not found: {path}")
