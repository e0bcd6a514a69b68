"""DLRM checkpoint -> .pt2 (torch.export) and ONNX, with a parity check against PyTorch; reference .pt -> ours.

    python -m recommendation.export --checkpoint results/recommendation/train
    python -m recommendation.export --checkpoint tb00_40M.pt --convert-only --output /models/tb00_40M

A reference checkpoint (``tb0875_10M.pt``, ``tb00_40M.pt``) is read with ``weights_only=True`` and written once
as safetensors (model.safetensors + model.json), which later runs memory-map without unpickling anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from loadgen.backends.parity import exported_outputs
from loadgen.cli import ArgumentParser, existing_path
from loadgen.report import write_json_atomic
from loadgen.training.checkpoint import save_state
from recommendation import data
from recommendation.models import CheckpointError, load

PARITY_ATOL = 1e-5  # click probabilities from ONNX Runtime vs PyTorch, float32 on the same inputs


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    # loadgen's parser prints a usage error on one line (a missing --checkpoint: exit 2).
    parser = ArgumentParser(prog="python -m recommendation.export", description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=existing_path, default="results/recommendation/train",
                        help="our checkpoint folder or a reference .pt (default: results/recommendation/train)")
    parser.add_argument("--output", default=None, help="output folder (default: <checkpoint folder>/export)")
    parser.add_argument("--convert-only", action="store_true",
                        help="only write the safetensors form of the checkpoint (default: False)")
    return parser


def example_batch(table_sizes, n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    dense = np.log1p(rng.integers(0, 1000, (n, data.N_DENSE)).astype(np.float32))
    sparse = np.stack([rng.integers(0, s, n) for s in table_sizes], axis=1)
    return torch.from_numpy(dense), torch.from_numpy(sparse)


def export_pytorch(model, path: Path) -> None:
    example = example_batch(model.table_sizes, 8)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    program = torch.export.export(model, example, dynamic_shapes=({0: batch}, {0: batch}))
    torch.export.save(program, path)


def export_onnx(model, path: Path) -> None:
    torch.onnx.export(model, example_batch(model.table_sizes, 8), path, dynamo=False,
                      input_names=["dense", "sparse"], output_names=["probability"],
                      dynamic_axes={"dense": {0: "batch"}, "sparse": {0: "batch"}, "probability": {0: "batch"}})


def main(args) -> int:
    src = Path(args.checkpoint)
    out = Path(args.output) if args.output else (src.parent / src.stem if src.suffix == ".pt" else src) / "export"
    try:
        model, meta = load(src)
    except (CheckpointError, FileNotFoundError) as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 1
    except KeyError as exc:  # a safetensors file without the DLRM layers
        print(f"export: error: {src}: no DLRM layer {exc} in the checkpoint", file=sys.stderr)
        return 1
    if src.suffix == ".pt":  # a reference checkpoint: keep its safetensors form, loaded without pickle from now on
        save_state(model.state_dict(), {"table_sizes": model.table_sizes, "source": src.name, **meta}, out)
        print(f"export: {src} -> {out}/model.safetensors")
        if args.convert_only:
            return 0
    out.mkdir(parents=True, exist_ok=True)
    model = model.float().eval()
    export_pytorch(model, out / "dlrm.pt2")
    export_onnx(model, out / "dlrm.onnx")
    dense, sparse = example_batch(model.table_sizes, 256, seed=1)
    with torch.inference_mode():
        ref = model(dense, sparse).numpy()
    files = {"pytorch": "dlrm.pt2", "onnxruntime": "dlrm.onnx"}
    # Through the harness's backends, as LoadGen runs them (the .pt2 passes the pytorch backend's safety checks).
    outputs = exported_outputs({name: out / file for name, file in files.items()}, [dense.numpy(), sparse.numpy()])
    worst = float(max(np.abs(got - ref).max() for got in outputs.values()))
    report = {"arch": meta.get("arch"), "table_sizes": model.table_sizes, "max_ind_range": meta.get("max_ind_range"),
              "parity_max_abs_diff": worst, "files": files}
    write_json_atomic(out / "export.json", report)
    print(json.dumps(report))
    if worst > PARITY_ATOL:
        print(f"export: error: exported models differ from PyTorch by {worst:.2e} (> {PARITY_ATOL})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
