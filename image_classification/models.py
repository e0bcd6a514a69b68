"""The reference models: ResNet-50 v1.5 (torchvision's) and MobileNet-v1 (written from the paper).

ResNet-50 v1.5 differs from the original v1 by putting the stride-2 of each downsampling bottleneck in the 3x3
convolution rather than the first 1x1 (MLPerf training rules, "ResNet-50 v1.5"); torchvision's ``resnet50`` is
that model.

MobileNet-v1: Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", Table 1: a 3x3 stride-2 convolution, then 13 depthwise-separable blocks, average pooling and a
fully connected classifier. Width multiplier 1.0 at 224x224 is the MLPerf inference model.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

# (output channels, stride) of the 13 depthwise-separable blocks, Table 1 of the paper.
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                       (512, 1), (512, 1), (1024, 2), (1024, 1))


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MobileNetV1(nn.Module):
    def __init__(self, num_classes: int = 1000, width: float = 1.0) -> None:
        super().__init__()
        first = int(32 * width)
        layers = [_conv_bn(3, first, 3, 2)]
        cin = first
        for channels, stride in MOBILENET_V1_BLOCKS:
            cout = int(channels * width)
            layers += [_conv_bn(cin, cin, 3, stride, groups=cin), _conv_bn(cin, cout, 1, 1)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


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
