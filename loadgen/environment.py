"""What a reader needs to reproduce a figure: the command, the revision, the package versions and the hardware.

Recorded in every ``results.json`` and ``train_result.json``.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("mlcommons-loadgen", "mlperf-logging", "numpy", "torch", "torchvision", "onnxruntime",
            "onnxruntime-gpu", "tensorflow-cpu", "tensorflow", "ai-edge-litert")


def environment(command: Sequence[str] | None = None) -> dict[str, Any]:
    """What a reader needs to reproduce the figures: the command, revision, packages and hardware."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "command": list(command) if command is not None else list(sys.argv),
        "cwd": os.getcwd(),
        "git_revision": _git_revision(),
        "python": platform.python_version(),
        "packages": versions,
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "gpu": _gpus(),
        "platform": platform.platform(),
    }


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def copy_tracked(root: str | os.PathLike, paths: Sequence[str], target: str | os.PathLike) -> int:
    """Copy the files git tracks under ``paths`` of the checkout ``root`` into ``target``, keeping their relative
    paths (a submission's or a package's copy of the code); links are skipped. How many were copied: none where
    ``root`` is not a checkout."""
    import shutil

    root, target = Path(root), Path(target)
    try:
        listed = subprocess.run(["git", "ls-files", "-z", *paths], cwd=root, capture_output=True, timeout=30,
                                check=True).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return 0
    copied = 0
    for name in filter(None, listed.split("\0")):
        src = root / name
        if src.is_file() and not src.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target / name)
            copied += 1
    return copied


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _gpus() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []
