"""Fixtures for the inference and export tests: the mini set, and untrained SSDs whose class scores are made to
vary (so that they detect something) exported to .pt2 and ONNX."""

from __future__ import annotations

from pathlib import Path

import pytest

PARITY_IMAGES = 6


def lively(model, boosted=(1, 62), seed: int = 0):
    """Make an untrained SSD produce varied detections: batch-norm statistics from random images, and class logits
    scaled to unit spread with two classes raised, so scores spread around the 0.05 cut instead of all being
    1/C (MobileNet's init) or saturating at 1.0 (ResNet-34's)."""
    import torch

    from loadgen.data import LABEL_OF_CATEGORY

    torch.manual_seed(seed)
    size = model.image_size
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # a cumulative average: one pass sets the statistics
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, size, size) * 4 - 2)
    model.eval()
    with torch.no_grad():
        maps = model.feature_maps(torch.rand(2, 3, size, size) * 4 - 2)
        for head, m in zip(model.conf, maps, strict=True):
            per_cell = head.out_channels // model.num_classes
            head.bias.zero_()
            head.weight /= head(m).std()
            for c in boosted:
                label = c if model.num_classes == 91 else int(LABEL_OF_CATEGORY[c])  # category id -> label
                head.bias[label * per_cell:(label + 1) * per_cell] = 3.0
    return model


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory) -> Path:
    from single_stage_detector import mini

    return mini.build(tmp_path_factory.mktemp("ssd") / "mini", train_images=2, val_images=12, progress=False)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, mini_root) -> dict[str, Path]:
    """{model name: export folder} of both models at 300x300, as .pt2 and ONNX (the parity check passed)."""
    from loadgen.training.checkpoint import save_state
    from single_stage_detector import export, models

    folders = {}
    for name in models.MODELS:
        ckpt = tmp_path_factory.mktemp(name)
        model = lively(models.build(name, 300))
        save_state(model.state_dict(), {"model": name, "data_dir": str(mini_root)}, ckpt)
        argv = ["--checkpoint", str(ckpt), "--image-size", "300", "--parity-images", str(PARITY_IMAGES)]
        assert export.main(export.get_args_parser().parse_args(argv)) == 0
        folders[name] = ckpt / "export"
    return folders
