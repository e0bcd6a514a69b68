"""Targets for ``make bench`` figures, declared beside the function that measures them.

A figure function carries ``@measures(name=target, ...)`` listing every figure it returns: a headline figure with
its target (``at_least``, ``at_most``, ``below``), an informational one (the two sides of a ratio, reported beside
it) with ``INFORMATIONAL``. The runner refuses a figure that is not declared, so none escapes its check.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

# The comparison a figure must pass, and the one its FAIL line prints when it does not.
_OPS = {">=": (operator.ge, "<"), "<=": (operator.le, ">"), "<": (operator.lt, ">=")}


@dataclass(frozen=True)
class Target:
    """``value <op> bound`` must hold; ``op`` is None for an informational figure, which has no target."""

    op: str | None
    bound: float | None = None

    def __post_init__(self) -> None:
        if self.op is not None and (self.op not in _OPS or self.bound is None):
            raise ValueError(f"a target needs one of {', '.join(_OPS)} and a bound, got {self.op!r} {self.bound!r}")

    def miss(self, value: float) -> str | None:
        """None when ``value`` meets the target (or there is none), else ``"<value> <negated op> <bound>"``.

        NaN misses every target: a figure that could not be computed has not met it."""
        if self.op is None:
            return None
        holds, negated = _OPS[self.op]
        if not math.isnan(value) and holds(value, self.bound):
            return None
        return f"{value:.4g} {negated} {self.bound}"

    def __str__(self) -> str:
        return "informational, no target" if self.op is None else f"{self.op} {self.bound}"


INFORMATIONAL = Target(None)


def at_least(bound: float) -> Target:
    return Target(">=", bound)


def at_most(bound: float) -> Target:
    return Target("<=", bound)


def below(bound: float) -> Target:
    return Target("<", bound)


def measures(**targets: Target) -> Callable:
    """Declare the figures a figure function returns, each with its target (or INFORMATIONAL)."""

    def mark(fn: Callable) -> Callable:
        fn.targets = dict(targets)
        return fn

    return mark
