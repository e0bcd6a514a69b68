"""Quiet TensorFlow's and TFLite's start-up chatter unless the user asks for it.

Every TensorFlow start prints oneDNN notices, the cpu_feature_guard message and absl lines on stderr, which
bury the run's own output. :func:`quiet_tensorflow` hides them, unless

- ``MLPERF_TF_VERBOSE=1`` is set: everything is shown, as TensorFlow would by default; or
- ``TF_CPP_MIN_LOG_LEVEL`` is already set: the user's level is kept.

Warnings and errors still come through; only TensorFlow's info-level notices are hidden.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# TensorFlow 2.21 logs these through absl before absl is initialised, so no log level reaches them.
_NOISE = re.compile(r"oneDNN custom operations are on|absl::InitializeLog\(\) is called|cpu_feature_guard|"
                    r"rebuild TensorFlow with the appropriate compiler flags|To enable the following instructions")


def _verbose() -> bool:
    return os.environ.get("MLPERF_TF_VERBOSE") == "1"


def quiet_tensorflow() -> None:
    """Call before TensorFlow or ai-edge-litert is imported: their C++ logging reads the level once."""
    if _verbose():
        return
    # The level is an environment variable, so child processes inherit it too; that is the same choice for
    # the same run, and the only switch TF's C++ logging offers before it starts.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def quiet_absl() -> None:
    """After TensorFlow is imported: absl's Python logger (``WARNING:absl:...`` on save/load) down to errors."""
    if _verbose():
        return
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Around ``import tensorflow``: the C++ start-up notices written to fd 2 are dropped, the rest replayed.

    Only the import is wrapped, so nothing the run itself prints is held back. (A crash inside the import would
    lose what TF wrote; ``MLPERF_TF_VERBOSE=1`` shows it unfiltered.)
    """
    if _verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not _NOISE.search(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()
