"""The translation benchmark's file manifest (wmt_files.json: the WMT archives the references download, their
checksums where published, the members each recipe takes) and its default folders."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # the benchmark folder
FILES_MANIFEST = HERE / "wmt_files.json"
DATASETS = ("wmt16", "wmt17")  # GNMT's recipe, the Transformer's
DATA_DIRS = {name: f"build/translation/{name}_de_en" for name in DATASETS}  # relative to the repository root
MINI = "build/translation/mini"
