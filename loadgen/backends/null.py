"""The null backend: returns its first input unchanged, so a run measures the harness and LoadGen alone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from loadgen import __version__
from loadgen.backends.base import Backend


class NullBackend(Backend):
    name = "null"
    needs_model = False

    def version(self) -> str:
        return __version__

    def load(self, path: str) -> NullBackend:
        return self

    def predict(self, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [feeds[0]]
