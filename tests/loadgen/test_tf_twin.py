"""The TF weight-transfer twin: SSD's SavedModel and TFLite give PyTorch's raw outputs, op by op parity on a toy net,
and unsupported layers refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from loadgen.nets.tf_twin import TfTwin
from single_stage_detector.export_tf import OUTPUTS, export_tf
from single_stage_detector.models import build

# Largest difference allowed, as a share of the largest output magnitude. On these networks PyTorch's own float32
# outputs differ from its float64 ones by up to 3e-5 of that, TFLite's (XNNPACK) from PyTorch's by up to 7e-5; a
# wrong weight layout, padding, batch-norm constant or box order moves outputs by a share near 1.
RELATIVE = 2e-4


def close(ours: np.ndarray, reference: np.ndarray) -> None:
    assert ours.shape == reference.shape
    scale = max(1.0, float(np.abs(reference).max()))
    worst = float(np.abs(ours - reference).max())
    assert worst <= RELATIVE * scale, f"largest difference {worst:.3g} at output scale {scale:.3g}"


def nhwc(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.numpy().transpose(0, 2, 3, 1))


def ssd(name: str, size: int) -> nn.Module:
    """A seeded random-weight SSD whose batch norms hold the statistics of a noise batch (not the identity), so
    that a mistake in folding them would show."""
    torch.manual_seed(0)
    model = build(name, size).train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # running statistics = this batch's
    with torch.no_grad():
        model(torch.randn(4, 3, size, size))
    return model.eval()


def reference(model: nn.Module, size: int) -> tuple[torch.Tensor, tuple[np.ndarray, np.ndarray]]:
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        locs, scores = model(images)
    return images, (locs.numpy(), scores.numpy())


@pytest.fixture(scope="module", params=["ssd-mobilenet", "ssd-resnet34"])
def exported(request, tmp_path_factory):
    """(name, images, PyTorch's (locs, scores), SavedModel folder, TFLite file) at 300x300."""
    model = ssd(request.param, 300)
    images, expected = reference(model, 300)
    out = tmp_path_factory.mktemp(request.param)
    export_tf(model, 300, out / "savedmodel", out / "model.tflite")
    return request.param, images, expected, out / "savedmodel", out / "model.tflite"


def test_savedmodel_gives_pytorch_outputs(exported):
    from loadgen.backends import BackendConfig, create_backend

    name, images, (locs, scores), savedmodel, _ = exported
    backend = create_backend("tf", BackendConfig(threads=2)).load(str(savedmodel))  # as LoadGen runs it
    assert backend.output_names == list(OUTPUTS)
    ours = backend.predict([nhwc(images)])
    assert ours[0].shape == (2, 4, 1917 if name == "ssd-mobilenet" else 8732)
    close(ours[0], locs)
    close(ours[1], scores)


def test_tflite_gives_pytorch_outputs(exported):
    from ai_edge_litert import interpreter as litert

    _, images, (locs, scores), _, tflite = exported
    interp = litert.Interpreter(model_path=str(tflite))
    assert all(d["dtype"] == np.float32 for d in interp.get_output_details())
    ours = interp.get_signature_runner("serving_default")(input=nhwc(images))
    close(ours["locs"], locs)
    close(ours["scores"], scores)


@pytest.mark.slow
def test_ssd_resnet34_1200_savedmodel_gives_pytorch_outputs(tmp_path):
    from loadgen.backends import BackendConfig, create_backend

    model = ssd("ssd-resnet34", 1200)
    images, (locs, scores) = reference(model, 1200)
    export_tf(model, 1200, tmp_path / "savedmodel", None)
    assert not (tmp_path / "model.tflite").exists()
    ours = create_backend("tf", BackendConfig(threads=2)).load(str(tmp_path / "savedmodel")).predict([nhwc(images)])
    assert ours[0].shape == (2, 4, 15130)
    close(ours[0], locs)
    close(ours[1], scores)


class Toy(nn.Module):
    """Every op the twin knows, SSD's 1200 head stride (3) included, on a small map: eager TF in a second."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.depthwise = nn.Conv2d(8, 16, 3, padding=1, groups=8, bias=False)  # channel multiplier 2
        self.pointwise = nn.Conv2d(16, 8, 1)
        self.down = nn.Conv2d(8, 8, 3, stride=2)  # padding 0
        self.head = nn.Conv2d(16, 6 * 4, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.pool(self.stem(x))
        y = torch.relu(self.pointwise(self.depthwise(x)) + x)
        both = torch.cat([y, x], 1)  # channels: stays NHWC in the twin
        n = both.size(0)
        boxes = self.head(both).view(n, 4, -1)  # (shape, row, column) order, as SSD's heads
        rows = self.head(both).permute(0, 2, 3, 1).reshape(n, -1, 4).transpose(1, 2)
        return (torch.cat([boxes, rows], dim=-1), self.down(y), self.fc(self.gap(both).flatten(start_dim=1)))


def test_toy_network_twin_gives_pytorch_outputs():
    torch.manual_seed(0)
    model = Toy().train()
    with torch.no_grad():
        model(torch.randn(4, 3, 31, 31))
    model.eval()
    x = torch.randn(2, 3, 31, 31)
    with torch.inference_mode():
        expected = model(x)
    ours = TfTwin(model)(nhwc(x))
    assert len(ours) == 3
    for a, b in zip(ours, expected, strict=True):
        close(a.numpy(), b.numpy())  # the map self.down(y) comes back NCHW, as PyTorch returns it
    # The two halves of the first output are the same head flattened in PyTorch's order and in NHWC's: they differ,
    # so a twin that flattened the NHWC map directly would fail the comparison above.
    half = expected[0].shape[2] // 2
    assert not np.allclose(expected[0][..., :half].numpy(), expected[0][..., half:].numpy(), atol=1e-2)

@pytest.mark.parametrize("layer, words", [(nn.Conv2d(4, 4, 3, groups=2), "groups=2"),
                                          (nn.Conv2d(4, 4, 3, dilation=2), "dilation"),
                                          (nn.Sigmoid(), "Sigmoid")])
def test_an_op_without_twin_is_refused_by_name(layer, words):
    with pytest.raises(NotImplementedError, match=words):
        TfTwin(nn.Sequential(layer))(np.zeros((1, 8, 8, 4), np.float32))
