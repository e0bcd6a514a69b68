"""Every test's runs go to a results store of their own (``MLPERF_RESULTS_DB``), not the user's
``results/results.sqlite``; subprocesses the tests start inherit it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("MLPERF_RESULTS_DB", str(Path(tempfile.mkdtemp(prefix="mlperf-test-store-")) / "results.sqlite"))
