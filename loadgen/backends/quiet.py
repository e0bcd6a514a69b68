"""Quiet TensorFlow's and TFLite's start-up chatter unless the user asks for it.

Every TensorFlow start prints oneDNN notices, the cpu_feature_guard message and absl lines on stderr, which
bury the run's own output. :func:`quiet_tensorflow` hides them, unless

- ``MLPERF_TF_VERBOSE=1`` is set: everything is shown, as TensorFlow would by default; or
- ``TF_CPP_MIN_LOG_LEVEL`` is already set: the user's level is kept.

Warnings and errors still come through; only TensorFlow's info-level notices are hidden.
"""

from __future__ import annotations

import os


def quiet_tensorflow() -> None:
    """Call before TensorFlow or ai-edge-litert is imported: their C++ logging reads the level once."""
    if os.environ.get("MLPERF_TF_VERBOSE") == "1":
        return
    # The level is an environment variable, so child processes inherit it too; that is the same choice for
    # the same run, and the only switch TF's C++ logging offers before it starts.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def quiet_absl() -> None:
    """After TensorFlow is imported: absl's Python logger (``WARNING:absl:...`` on save/load) down to errors."""
    if os.environ.get("MLPERF_TF_VERBOSE") == "1":
        return
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
