from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory) -> Path:
    """A small mini set from the shared real-pixel builder: 10 train images (crowd regions among them) and 4 val
    images, with masks."""
    from object_detection import mini

    return mini.build(tmp_path_factory.mktemp("od") / "mini", train_images=10, val_images=4, progress=False)


RETINANET_SIZE = 128  # small enough for CPU tests: 3,069 anchors
PARITY_IMAGES = 6


@pytest.fixture(scope="session")
def openimages_root(tmp_path_factory) -> Path:
    """RetinaNet's mini set in the MLPerf OpenImages format: 8 train and 8 validation images."""
    from object_detection import mini

    return mini.build_openimages(tmp_path_factory.mktemp("oi") / "mini", train_images=8, val_images=8,
                                 progress=False)


def lively_retinanet(size: int, root: Path, boosted=(19, 46), spread: float = 2.0, floor: float = -4.0):
    """An untrained RetinaNet whose class logits vary (so that it detects something, without ties): the last
    classification layer scaled on a few validation images so its logits spread by ``spread`` around ``floor``
    (sigmoid 0.018, mostly under the 0.05 cut), two classes raised to 0."""
    import numpy as np
    import torch

    from loadgen.data import read_rgb
    from object_detection import infer, models
    from object_detection.data import openimages

    torch.manual_seed(0)
    model = models.build_retinanet(size).eval()
    net = models.RetinaNetHeads(model)
    preset = infer.preset(size)
    files = sorted(openimages.image_folder(root).iterdir())[:4]
    x = torch.from_numpy(preset.normalize(np.stack([preset.geometry(read_rgb(f)) for f in files])))
    last = model.head.classification_head.cls_logits
    with torch.no_grad():
        last.bias.zero_()
        logits = net(x)[0]
        last.weight *= spread / logits.std()
        last.bias.fill_(floor)
        anchors_per_cell = last.out_channels // models.RETINANET_CLASSES
        for c in boosted:
            last.bias.view(anchors_per_cell, -1)[:, c] = 0.0
    return model


@pytest.fixture(scope="session")
def retinanet_export(tmp_path_factory, openimages_root) -> Path:
    """A lively RetinaNet at 128x128 saved as a training checkpoint and exported (.pt2, ONNX) through export.py's
    parity check."""
    from loadgen.training.checkpoint import save_state
    from object_detection import export

    ckpt = tmp_path_factory.mktemp("retinanet")
    model = lively_retinanet(RETINANET_SIZE, openimages_root)
    save_state(model.state_dict(), {"model": "retinanet", "image_size": RETINANET_SIZE,
                                    "data_dir": str(openimages_root)}, ckpt)
    argv = ["--checkpoint", str(ckpt), "--parity-images", str(PARITY_IMAGES)]
    assert export.main(export.get_args_parser().parse_args(argv)) == 0
    return ckpt / "export"
