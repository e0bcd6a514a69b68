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


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded safely or does not parse; the message names the file."""


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
    """(state_dict, meta) saved by :func:`save_state`; tensors are memory-mapped from the file.

    A missing file raises FileNotFoundError; a corrupt one (a header lying about sizes or offsets, a huge
    header, a truncated file, JSON that does not parse or is not an object) raises :class:`CheckpointError`.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    for name in (WEIGHTS, META):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: no such file (a checkpoint folder holds {WEIGHTS} and {META})")
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{folder / META}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{folder / META}: expected a JSON object, found {type(meta).__name__}")
    try:
        state = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{folder / WEIGHTS}: not a valid safetensors file ({exc})") from None
    return state, meta
