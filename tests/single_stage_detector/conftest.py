"""Fixtures for the inference and export tests: the mini set, and untrained SSDs whose class scores are made to
vary (so that they detect something) exported to every format."""

from __future__ import annotations

from pathlib import Path

import pytest

PARITY_IMAGES = 6
FORMATS = ("pytorch", "onnxruntime", "tf", "tflite")  # every backend's format


def lively(model, mini_root: Path, boosted=(1, 62), spread: float = 2.0, boost: float = 1.0,
           background: float = 8.0):
    """Make an untrained SSD produce a few hundred varied detections per image instead of none (MobileNet's init
    scores every class 1/C) or hundreds of ties (ResNet-34's saturate): batch-norm statistics, then the heads
    scaled on a few mini val images so box offsets spread by about 0.5 and class logits by ``spread``, the
    background raised by ``background`` and two classes by ``boost``."""
    import numpy as np
    import torch

    from loadgen.data import LABEL_OF_CATEGORY
    from single_stage_detector.data.presets import eval_preset, load_image

    preset = eval_preset("ssd-resnet34" if model.num_classes == 81 else "ssd-mobilenet", model.image_size)
    files = sorted((mini_root / "val2017").iterdir())[:4]
    x = torch.from_numpy(np.stack([preset(load_image(f)) for f in files]))
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None  # a cumulative average: one pass sets the statistics
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()
    with torch.no_grad():
        maps = model.feature_maps(x)
        for head, m in zip(model.loc, maps, strict=True):
            head.bias.zero_()
            head.weight *= 0.5 / head(m).std()
        for head, m in zip(model.conf, maps, strict=True):
            per_cell = head.out_channels // model.num_classes
            head.bias.zero_()
            head.weight *= spread / head(m).std()
            head.bias[:per_cell] = background  # class 0: most boxes stay under the score cut
            for c in boosted:
                label = c if model.num_classes == 91 else int(LABEL_OF_CATEGORY[c])  # category id -> label
                head.bias[label * per_cell:(label + 1) * per_cell] = boost
    return model


@pytest.fixture(scope="session")
def mini_root(tmp_path_factory) -> Path:
    from single_stage_detector import mini

    return mini.build(tmp_path_factory.mktemp("ssd") / "mini", train_images=2, val_images=12, progress=False)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, mini_root) -> dict[str, Path]:
    """{model name: export folder} of both models at 300x300 in every format (.pt2, ONNX, SavedModel, TFLite),
    each through export.py's parity check."""
    import torch

    from loadgen.training.checkpoint import save_state
    from single_stage_detector import export, models

    folders = {}
    for name in models.MODELS:
        ckpt = tmp_path_factory.mktemp(name)
        torch.manual_seed(0)
        model = lively(models.build(name, 300), mini_root)
        save_state(model.state_dict(), {"model": name, "data_dir": str(mini_root)}, ckpt)
        argv = ["--checkpoint", str(ckpt), "--image-size", "300", "--parity-images", str(PARITY_IMAGES),
                "--formats", ",".join(FORMATS)]
        assert export.main(export.get_args_parser().parse_args(argv)) == 0
        folders[name] = ckpt / "export"
    return folders
