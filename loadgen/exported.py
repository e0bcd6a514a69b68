"""Where ``infer`` finds an exported model: ``<model-dir>/<stem><suffix of the backend>`` and its ``export.json``.

Every benchmark's ``export.py`` writes one file (or SavedModel folder) per backend beside one ``export.json`` of
what inference must match (preprocessing, input size, hashing); this is the one place that knows the names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadgen.backends.base import BackendError

#: The name each backend's model takes after its stem: resnet50.onnx, resnet50_savedmodel/, dlrm.pt2.
SUFFIXES = {"pytorch": ".pt2", "onnxruntime": ".onnx", "tf": "_savedmodel", "tflite": ".tflite"}
METADATA = "export.json"


def model_path(model_dir: str | Path, stem: str, backend: str, exported: Sequence[str] | None = None,
               suffixes: Mapping[str, str] | None = None) -> str:
    """The file ``backend`` loads for ``stem``; BackendError when this benchmark exports none for it.
    ``suffixes`` overrides :data:`SUFFIXES` for a benchmark whose graphs need another format (translation's
    LSTMs: TorchScript ``.pt``, as torch.export fixes an LSTM's sequence length)."""
    offered = [b for b in (exported or SUFFIXES) if b in SUFFIXES]
    if backend not in offered:
        raise BackendError(f"no exported {stem} for backend {backend!r} (exported: {', '.join(offered)}); "
                           "pass --model")
    suffix = {**SUFFIXES, **(suffixes or {})}[backend]
    return str(Path(model_dir) / f"{stem}{suffix}")


def metadata(model: str | Path | None) -> dict[str, Any]:
    """The ``export.json`` beside ``model`` (a file, or a SavedModel folder), or {} where there is none."""
    if not model:
        return {}
    path = Path(model).parent / METADATA
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return meta


def resolve(args, stem: str, exported: Sequence[str] | None = None,
            suffixes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Fill ``args.model`` from ``args.model_dir`` where the user gave none and the backend needs one; return
    the model's export.json (or {})."""
    from loadgen.backends import backend_class

    if args.model is None:
        offered = exported or SUFFIXES
        # A backend without a model file (null) needs none; asking the registry imports the framework, so it is
        # asked only when the name is not one this benchmark exports.
        if args.backend in offered or backend_class(args.backend).needs_model:
            args.model = model_path(args.model_dir, stem, args.backend, exported, suffixes)
    return metadata(args.model)


def export_parser(prog: str, description: str | None, formats: Sequence[str], default_formats: Sequence[str],
                  data_help: str, parity: tuple[str, str], add_help: bool = True):
    """The flags every detector's and translator's ``export.py`` shares: the training checkpoint, the output
    folder, the formats, the data the parity check runs on (``--data-dir``, ``data_help``), how many of its items
    (``--parity-<parity[0]>``, ``parity[1]``) and the threads; each adds its own (an input size)."""
    import argparse

    from loadgen.cli import ArgumentParser, existing_dir, positive

    parser = ArgumentParser(prog=prog, description=description, add_help=add_help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=existing_dir, required=True,
                        help="folder with model.safetensors and model.json (default: required)")
    parser.add_argument("--output", default=None, help="folder for the exported models (default: <checkpoint>/export)")
    default = ",".join(default_formats)
    parser.add_argument("--formats", default=default, help=f"comma list from {','.join(formats)} (default: {default})")
    parser.add_argument("--data-dir", type=existing_dir, default=None,
                        help=f"{data_help} (default: the checkpoint's data_dir, else the mini set)")
    parser.add_argument(f"--parity-{parity[0]}", type=positive(int, allow_zero=True), default=0,
                        help=f"{parity[1]} in the parity check, 0 for all (default: 0)")
    parser.add_argument("--threads", type=positive(int), default=2,
                        help="CPU threads of each backend in the parity check (default: 2)")
    return parser


def wanted_formats(prog: str, text: str, formats: Sequence[str]) -> list[str] | None:
    """``--formats``' comma list, or None after one line naming what is not offered (the caller exits 2)."""
    import sys

    wanted = [f.strip() for f in text.split(",") if f.strip()]
    unknown = sorted(set(wanted) - set(formats))
    if unknown or not wanted:
        print(f"{prog}: error: unknown format(s) {', '.join(unknown) or '(none given)'} "
              f"(choose from {', '.join(formats)})", file=sys.stderr)
        return None
    return wanted
