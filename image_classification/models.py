"""The reference models: ResNet-50 v1.5 (torchvision's) and MobileNet-v1 (written from the paper).

ResNet-50 v1.5 differs from the original v1 by putting the stride-2 of each downsampling bottleneck in the 3x3
convolution rather than the first 1x1 (MLPerf training rules, "ResNet-50 v1.5"); torchvision's ``resnet50`` is
that model.

MobileNet-v1 (Howard et al. 2017) lives in ``loadgen.nets.mobilenet_v1``: single_stage_detector builds SSD on the
same trunk. Width multiplier 1.0 at 224x224 is the MLPerf inference model.
"""

from __future__ import annotations

import torchvision
from torch import nn

from loadgen.nets.mobilenet_v1 import MobileNetV1


def resnet50(num_classes: int = 1000) -> nn.Module:
    # zero_init_residual: the last BN of each block starts at zero, as in the MLPerf reference ("model_bn_span"
    # aside, the closed rules leave initialisation to the reference); it speeds up early training.
    return torchvision.models.resnet50(weights=None, num_classes=num_classes, zero_init_residual=True)


def mobilenet_v1(num_classes: int = 1000) -> nn.Module:
    return MobileNetV1(num_classes=num_classes)


MODELS = {"resnet50": resnet50, "mobilenet": mobilenet_v1}


def build(name: str, num_classes: int) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (choose from {', '.join(MODELS)})")
    return MODELS[name](num_classes)
