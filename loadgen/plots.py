"""The suite's two pictures: a latency histogram with the tiles marked (inference) and a training curve.

matplotlib is imported when a picture is drawn (its object API and Agg canvas, no pyplot state), so importing this
module costs nothing; every PNG is written under a temporary name and renamed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _figure():
    """A figure on matplotlib's object API (no pyplot, so no global state) and its one axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig, path: Path) -> None:
    """Save to a temporary name and rename: readers never see half a PNG."""
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, path)


def write_histogram(path: Path, latencies_ns: np.ndarray, title: str, tiles: dict[str, float]) -> None:
    """A latency histogram PNG with the tiles marked.

    The x axis ends a little past the 99.9th percentile so that one slow sample cannot flatten the picture; how
    many samples lie beyond is stated on the chart.
    """
    ms = latencies_ns / 1e6
    edge = max(tiles.get("99.9", float(ms.max()) / 1e3) * 1e3 * 1.15, float(ms.min()) * 1.01 + 1e-6)
    beyond = int((ms > edge).sum())
    fig, ax = _figure()
    ax.hist(ms[ms <= edge], bins=min(100, max(10, len(ms) // 20)), color="#4477aa")
    colours = ["#228833", "#ccbb44", "#ee6677", "#aa3377", "#66ccee", "#000000"]
    for (p, v), colour in zip(tiles.items(), colours, strict=False):
        ax.axvline(v * 1e3, color=colour, lw=1.0, ls="--", label=f"p{p}: {v * 1e3:.3f} ms")
    ax.legend(fontsize=8)
    note = f"; {beyond} samples beyond {edge:.3f} ms not drawn" if beyond else ""
    ax.set_xlabel(f"latency (ms), from LoadGen's trace, {len(ms)} samples{note}", fontsize=9)
    ax.set_ylabel("samples")
    ax.set_title(title, fontsize=10)
    _save(fig, path)


def write_curve(path: Path, xs: Sequence[float], series: dict[str, Sequence[float]], xlabel: str, title: str,
                target: float | None = None) -> None:
    """A training curve PNG: one line per series over ``xs``, and the target as a dashed line."""
    fig, ax = _figure()
    for name, ys in series.items():
        ax.plot(xs[: len(ys)], ys, marker="o", ms=3, label=name)
    if target is not None:
        ax.axhline(target, color="#cc6677", ls="--", lw=1, label=f"target {target}")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    _save(fig, path)
