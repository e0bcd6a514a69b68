"""MobileNet-v1, written from the paper.

Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications", Table 1:
a 3x3 stride-2 convolution, then 13 depthwise-separable blocks, average pooling and a fully connected classifier.
Width multiplier 1.0 at 224x224 is the MLPerf inference classification model; the same trunk, without pooling and
classifier, is the backbone of SSD-MobileNet-v1.
"""

from __future__ import annotations

import torch
from torch import nn

# (output channels, stride) of the 13 depthwise-separable blocks, Table 1 of the paper.
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                       (512, 1), (512, 1), (1024, 2), (1024, 1))


def conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    """Convolution (no bias: the batch norm has one), batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def block_end(block: int) -> int:
    """Index in ``MobileNetV1.features`` just after depthwise-separable block ``block`` (1-based, as the paper and
    TensorFlow's ``Conv2d_<block>_pointwise`` count them): ``features[:block_end(11)]`` ends at block 11."""
    if not 0 <= block <= len(MOBILENET_V1_BLOCKS):
        raise ValueError(f"MobileNet-v1 has blocks 0..{len(MOBILENET_V1_BLOCKS)}, not {block}")
    # features[0] is the first full convolution; each block adds a depthwise and a pointwise layer.
    return 1 + 2 * block


class MobileNetV1(nn.Module):
    """MobileNet-v1. ``num_classes=None`` keeps only the convolutional trunk (``features``): ``forward`` then
    returns the last feature map, and the model has no pooling or classifier parameters to leave unused."""

    def __init__(self, num_classes: int | None = 1000, width: float = 1.0) -> None:
        super().__init__()
        first = int(32 * width)
        layers = [conv_bn(3, first, 3, 2)]
        cin = first
        self.channels = []  # output channels after each block, for heads attached to the trunk
        for channels, stride in MOBILENET_V1_BLOCKS:
            cout = int(channels * width)
            layers += [conv_bn(cin, cin, 3, stride, groups=cin), conv_bn(cin, cout, 1, 1)]
            cin = cout
            self.channels.append(cout)
        self.features = nn.Sequential(*layers)
        if num_classes is not None:
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(cin, num_classes)
        self.num_classes = num_classes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if self.num_classes is None:
            return x
        return self.classifier(torch.flatten(self.pool(x), 1))
