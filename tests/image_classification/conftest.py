"""Fixtures: a private copy of the mini set, and random-weight models of both architectures in every format."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from image_classification import mini


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory) -> Path:
    return mini.build(tmp_path_factory.mktemp("ic") / "mini")


@pytest.fixture
def mini_copy(mini_root, tmp_path) -> Path:
    return Path(shutil.copytree(mini_root, tmp_path / "mini"))


@pytest.fixture(scope="session")
def exported(tmp_path_factory, mini_root):
    """{arch: export folder} for untrained ResNet-50 and MobileNet-v1 at 32x32, exported to all four formats."""
    import torch

    from image_classification import export
    from image_classification.models import build
    from loadgen.training.checkpoint import save_state

    folders = {}
    for arch in ("resnet50", "mobilenet"):
        ckpt = tmp_path_factory.mktemp(arch)
        torch.manual_seed(0)
        model = build(arch, 10).eval()
        # Non-trivial BN statistics, so that the exports are compared on varied predictions.
        model.train()
        with torch.no_grad():
            model(torch.randn(16, 3, 32, 32))
        model.eval()
        save_state(model.state_dict(), {"model": arch, "num_classes": 10, "image_size": 32, "preset": "torchvision",
                                        "data_dir": str(mini_root)}, ckpt)
        code = export.main(export.get_args_parser().parse_args(["--checkpoint", str(ckpt), "--parity-images", "60"]))
        assert code == 0
        folders[arch] = ckpt / "export"
    return folders
