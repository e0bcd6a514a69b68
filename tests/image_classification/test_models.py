"""The reference architectures."""

from __future__ import annotations

import torch

from image_classification.models import build


def test_resnet50_is_v1_5_stride_in_3x3():
    model = build("resnet50", 1000)
    block = model.layer2[0]
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)  # v1.5: stride on the 3x3
    assert sum(p.numel() for p in model.parameters()) == 25_557_032  # torchvision's ResNet-50


def test_mobilenet_v1_matches_the_paper():
    model = build("mobilenet", 1000)
    params = sum(p.numel() for p in model.parameters())
    assert 4.2e6 < params < 4.3e6  # Howard et al. 2017, Table 8: 4.2 million parameters at width 1.0
    depthwise = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 13
    assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
