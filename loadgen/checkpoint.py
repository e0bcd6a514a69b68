"""Checkpoints as safetensors plus a JSON of what built them: loading one never runs pickled code.

Shared by every benchmark's ``train.py`` (save) and ``export.py`` / ``infer.py`` (load). torch and safetensors
are imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from loadgen.report import write_json_atomic

WEIGHTS, META = "model.safetensors", "model.json"


def save_state(state_dict, meta: dict, out: str | os.PathLike) -> Path:
    """``out/model.safetensors`` and ``out/model.json``, each written to a temporary name and renamed."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{WEIGHTS}.tmp"
    save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, str(tmp))
    os.replace(tmp, out / WEIGHTS)
    write_json_atomic(out / META, meta)
    return out / WEIGHTS


def load_state(folder: str | os.PathLike) -> tuple[dict, dict]:
    """(state_dict, meta) saved by :func:`save_state`; tensors are memory-mapped from the file."""
    from safetensors.torch import load_file

    folder = Path(folder)
    for name in (WEIGHTS, META):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: no such file (a checkpoint folder holds {WEIGHTS} and {META})")
    return load_file(str(folder / WEIGHTS)), json.loads((folder / META).read_text())
