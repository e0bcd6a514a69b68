"""Checkpoints as safetensors plus a JSON of what built them: loading one never runs pickled code.

Shared by every benchmark's ``train.py`` (save) and ``export.py`` / ``infer.py`` (load), and by the training
driver's resume checkpoint (:func:`save_training`: the model, the optimizer's tensors and, in the JSON, the rest
of the optimizer state and the driver's own position). torch and safetensors are imported inside the functions,
so importing this module costs nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from loadgen.data import atomic_folder
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


def load_model(folder: str | os.PathLike, build):
    """``(model, meta)``: the model a training run saved in ``folder``, made by ``build(meta)`` from its model.json,
    its weights loaded (safetensors: nothing is unpickled), in eval mode. Weights that do not fit the model are a
    one-line CheckpointError."""
    state, meta = load_state(folder)
    model = build(meta)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # missing, unexpected or misshapen weights: torch's first line after its header
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else (lines or [""])[0]
        name = meta.get("model", type(model).__name__)
        raise CheckpointError(f"{folder}: the weights do not fit {name} ({detail})") from None
    return model.eval(), meta


def save_training(out: str | os.PathLike, model_state: dict, optimizer_state: dict, meta: dict) -> Path:
    """A resume checkpoint, whole or not at all: weights and optimizer tensors in safetensors, the rest in JSON.

    ``optimizer_state`` is ``torch.optim.Optimizer.state_dict()``: its tensors (momentum buffers, step counts)
    go to the safetensors file as ``optimizer.<param>.<name>``; its param_groups and any non-tensor state (a
    momentum buffer that is still None) must be JSON values and go to ``meta["optimizer"]``.
    """
    import torch

    tensors = {f"model.{k}": v for k, v in model_state.items()}
    other: dict[str, dict] = {}
    for index, values in optimizer_state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value
            else:
                other.setdefault(str(index), {})[name] = value
    meta = {**meta, "optimizer": {"param_groups": optimizer_state["param_groups"], "state": other}}
    # Both files are written into a folder renamed into place: a crash leaves the previous checkpoint (or none),
    # never the weights of one evaluation beside the JSON of another.
    with atomic_folder(out) as tmp:
        save_state(tensors, meta, tmp)
    return Path(out) / WEIGHTS


def load_training(folder: str | os.PathLike) -> tuple[dict, dict, dict]:
    """(model_state, optimizer_state, meta) from :func:`save_training`, ready for ``load_state_dict``."""
    tensors, meta = load_state(folder)
    try:
        saved = meta.pop("optimizer")
        state: dict[int, dict] = {int(i): dict(values) for i, values in saved["state"].items()}
        model_state = {}
        for key, value in tensors.items():
            kind, _, rest = key.partition(".")
            if kind == "model":
                model_state[rest] = value
            elif kind == "optimizer":
                index, _, name = rest.partition(".")
                state.setdefault(int(index), {})[name] = value
            else:
                raise ValueError(f"unexpected tensor {key!r}")
        optimizer_state = {"state": state, "param_groups": saved["param_groups"]}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{folder}: not a training checkpoint ({exc})") from None
    return model_state, optimizer_state, meta
