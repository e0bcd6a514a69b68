"""LoadGen's accuracy log, read once for every benchmark, and the named metrics a task reports from it.

``mlperf_log_accuracy.json`` is a JSON list of ``{"seq_id", "qsl_idx", "data" (hex bytes), ...}``. LoadGen pads
the last MultiStream query with repeats, so a sample may appear more than once: :func:`read_log` keeps one
response per ``qsl_idx``, and every benchmark's accuracy tool reads the log through it.

A metric carries its scale, so the summary line prints each as its community does: ``top1`` 0.76 as 76.000%,
``mAP`` 37.5 (already a percentage) as 37.500%, ``BLEU`` 24.0 as 24.000, never as "2400%".
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: How a metric's value reads: "fraction" (0-1, printed as a percentage), "percent" (0-100, printed with %),
#: "score" (a number with no unit, such as BLEU 0-100, printed as it is).
SCALES = ("fraction", "percent", "score")


@dataclasses.dataclass(frozen=True)
class Metric:
    """One named figure of a task's accuracy. ``__post_init__`` only validates."""

    name: str
    value: float
    scale: str = "fraction"

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"metric {self.name!r}: scale must be one of {', '.join(SCALES)}, got {self.scale!r}")
        if not self.name or any(c in self.name for c in " ,="):
            raise ValueError(f"metric name {self.name!r} must be non-empty, without spaces, commas or '='")

    def text(self) -> str:
        """The value as the summary line prints it: ``76.000%``, ``37.500%``, ``24.000``."""
        if self.scale == "fraction":
            return f"{100.0 * self.value:.3f}%"
        if self.scale == "percent":
            return f"{self.value:.3f}%"
        return f"{self.value:.3f}"


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """What ``Task.accuracy`` returns: its metrics, the headline first, and details (counts) for results.json."""

    metrics: tuple[Metric, ...]
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ValueError("an accuracy result needs at least one metric")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names repeat: {', '.join(names)}")

    def __getitem__(self, name: str) -> Any:
        """A metric's value or a detail by name: ``acc["top1"]``, ``acc["total"]``."""
        for m in self.metrics:
            if m.name == name:
                return m.value
        return self.details[name]

    def text(self) -> str:
        """``top1=76.000%`` or, for several, ``bbox_mAP=37.500%, segm_mAP=33.900%``."""
        return ", ".join(f"{m.name}={m.text()}" for m in self.metrics)

    def as_json(self) -> dict[str, Any]:
        """results.json's ``figures.accuracy``: every value by name (metrics first, then details)."""
        return {**{m.name: m.value for m in self.metrics}, **dict(self.details)}

    def metrics_json(self) -> list[dict[str, Any]]:
        """results.json's ``figures.metrics``: each metric with its scale and printed form."""
        return [{"name": m.name, "value": m.value, "scale": m.scale, "text": m.text()} for m in self.metrics]


def read_log(path: str | Path, dtype: np.dtype | str = np.uint8) -> dict[int, np.ndarray]:
    """{qsl_idx: response as a 1-D ``dtype`` array}, one per distinct sample, in the log's order of first sight.

    Raises ValueError naming the file for a log that is not LoadGen's, an entry that does not decode, or a log
    with no responses (a performance run's log is empty).
    """
    try:
        entries = json.loads(Path(path).read_text())
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path}: not a JSON accuracy log ({exc})") from exc
    if not isinstance(entries, list):
        raise ValueError(f"{path}: not a LoadGen accuracy log (a JSON list of responses)")
    responses: dict[int, np.ndarray] = {}
    for entry in entries:
        try:
            idx = int(entry["qsl_idx"])
            if idx not in responses:
                responses[idx] = np.frombuffer(bytes.fromhex(entry["data"]), dtype=dtype)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a LoadGen accuracy log entry: {str(entry)[:80]}") from exc
    if not responses:
        raise ValueError(f"{path}: no responses (was the run in accuracy mode?)")
    return responses


def in_order(responses: Mapping[int, np.ndarray]) -> Sequence[tuple[int, np.ndarray]]:
    """The responses sorted by sample index, so a metric over them never depends on LoadGen's issue order."""
    return sorted(responses.items())


def get_args_parser(prog: str, description: str | None, add_help: bool = True):
    """The parser every benchmark's ``accuracy.py`` starts from: LoadGen's accuracy log, as the reference names
    the flag; each adds what its metric needs (labels, a dtype)."""
    import argparse

    from loadgen.cli import ArgumentParser, existing_file

    parser = ArgumentParser(prog=prog, description=description, add_help=add_help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlperf-accuracy-file", required=True, type=existing_file,
                        help="LoadGen's accuracy log (default: required)")
    return parser


def command(prog: str, compute: Callable[[], Accuracy], line: Callable[[Accuracy], str]) -> int:
    """The body of every ``accuracy.py``'s ``main``: print ``line(compute())``, or one line naming what could not
    be read (a missing or broken log, a bad label file) and exit 1."""
    try:
        result = compute()
    except (OSError, ValueError) as exc:  # ValueError covers bad JSON and the data problems the readers name
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(line(result))
    return 0
