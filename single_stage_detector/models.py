"""The SSD models: SSD-ResNet34 (MLPerf training, and inference at 1200x1200) and SSD-MobileNet-v1 (inference).

Both end at the raw head outputs, ``locs (N, 4, B)`` and ``scores (N, C, B)`` (logits, class 0 the background),
the layout of the reference; decoding and NMS are ``boxes.postprocess``, one function for every backend.

SSD-ResNet34 (MLPerf training reference, single_stage_detector v0.7-v1.0): torchvision's ResNet-34 up to and
including layer3, whose first block has stride 1 instead of 2 (so a 38x38 map at 300x300, 256 channels); five extra
blocks (1x1 conv, ReLU, 3x3 conv, ReLU) to 512, 512, 256, 256, 256 channels; 3x3 heads with 4, 6, 6, 6, 4, 4 boxes per
cell on the six maps (38, 19, 10, 5, 3, 1): 8732 boxes, 81 classes (80 COCO + background). Extras and heads start
from Xavier-uniform weights, the backbone from ImageNet (``load_backbone``) or from scratch.

At 1200x1200 it is the MLPerf inference reference's SSD-ResNet34 (``ssd_r34.py``, strides 3, 3, 2, 2, 2, 2): the same
layers and weights, with the heads at stride 3 and the fourth extra block at stride 2, so maps of 50, 25, 13, 7, 3, 3
and 15130 boxes. The sizes are not written down here: they come from running the network on a meta tensor.

SSD-MobileNet-v1 (MLPerf inference ``ssd-mobilenet``, TensorFlow's ``ssd_mobilenet_v1_coco``): MobileNet-v1 (the
shared ``loadgen.nets``) with heads on block 11 (19x19, 512 channels) and block 13 (10x10, 1024), four extra blocks
(1x1 conv to half the depth, 3x3 stride-2 conv; batch norm and ReLU) to 512, 256, 256, 128 channels on maps 5, 3, 2,
1; 1x1 heads with 3, 6, 6, 6, 6, 6 boxes per cell: 1917 boxes, 91 classes (TF's COCO label map: 90 ids +
background), so a label is the COCO category id itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import torch
import torchvision
from torch import nn

from loadgen.nets.mobilenet_v1 import MobileNetV1, block_end, conv_bn
from single_stage_detector import boxes as box_ops

R34_CLASSES = 81  # 80 COCO categories + background (MLPerf training reference)
MOBILENET_CLASSES = 91  # TF's COCO label map: ids 1..90 (10 of them unused) + background

# Per input size: (stride of the heads, stride of the fourth extra block). 300 is the training reference; 1200 the
# inference reference's large model (its strides [3, 3, 2, 2, 2, 2]: loc and conf heads, then extras 1-4).
R34_STRIDES = {300: (1, 1), 1200: (3, 2)}


class SSD(nn.Module):
    """A backbone returning a list of feature maps, extra blocks run one after another on the last of them, and a
    location and a class head on every map. ``forward`` returns the raw outputs and nothing else."""

    def __init__(self, backbone: nn.Module, extras: list[nn.Module], loc: list[nn.Module], conf: list[nn.Module],
                 num_classes: int, image_size: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.extras = nn.ModuleList(extras)
        self.loc = nn.ModuleList(loc)
        self.conf = nn.ModuleList(conf)
        self.num_classes = num_classes
        self.image_size = image_size

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = list(self.backbone(x))
        for block in self.extras:
            maps.append(block(maps[-1]))
        return maps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.feature_maps(x)
        n = x.shape[0]
        # (N, A*4, H, W) -> (N, 4, A*H*W): box order (shape, row, column), as boxes.grid_boxes lays them out.
        locs = torch.cat([head(m).reshape(n, 4, -1) for head, m in zip(self.loc, maps, strict=True)], 2)
        scores = torch.cat([head(m).reshape(n, self.num_classes, -1)
                            for head, m in zip(self.conf, maps, strict=True)], 2)
        return locs, scores


def head_sizes(build: Callable[[], SSD]) -> list[int]:
    """Side of each head's output map, found by running a network that ``build`` makes on the meta device (no
    weights allocated, no arithmetic done)."""
    with torch.device("meta"):
        net = build().eval()  # batch norm on a batch of one 1x1 map refuses training mode
        x = torch.empty(1, 3, net.image_size, net.image_size)
        sizes = []
        for head, m in zip(net.loc, net.feature_maps(x), strict=True):
            h, w = head(m).shape[-2:]
            if h != w:
                raise ValueError(f"expected square feature maps, got {h}x{w}")
            sizes.append(int(h))
    return sizes


# --- SSD-ResNet34 -----------------------------------------------------------------------------------------------

class ResNet34Backbone(nn.Module):
    """torchvision's ResNet-34 through layer3, layer3's first block at stride 1 (the reference's change).
    Attribute names are torchvision's, so its ImageNet state dict loads as it is (``load_backbone``)."""

    def __init__(self) -> None:
        super().__init__()
        net = torchvision.models.resnet34(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        first = self.layer3[0]
        first.conv1.stride = (1, 1)
        first.downsample[0].stride = (1, 1)
        self.out_channels = 256

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return [self.layer3(self.layer2(self.layer1(x)))]


def _r34_extra(cin: int, mid: int, cout: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, mid, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(mid, cout, 3, stride=stride, padding=padding), nn.ReLU(inplace=True))


def _r34_network(num_classes: int, image_size: int) -> SSD:
    if image_size not in R34_STRIDES:
        raise ValueError(f"SSD-ResNet34 runs at {' or '.join(map(str, R34_STRIDES))} pixels, not {image_size}")
    head_stride, fourth_stride = R34_STRIDES[image_size]
    backbone = ResNet34Backbone()
    channels = [backbone.out_channels, 512, 512, 256, 256, 256]
    # (middle channels, stride, padding) of each extra block: 3x3 convolutions padded down to 5, unpadded after.
    shapes = [(256, 2, 1), (256, 2, 1), (128, 2, 1), (128, fourth_stride, 0), (128, 1, 0)]
    extras = [_r34_extra(cin, mid, cout, stride, pad)
              for cin, cout, (mid, stride, pad) in zip(channels[:-1], channels[1:], shapes, strict=True)]
    per_cell = box_ops.r34_boxes_per_cell()
    loc = [nn.Conv2d(c, a * 4, 3, stride=head_stride, padding=1) for c, a in zip(channels, per_cell, strict=True)]
    conf = [nn.Conv2d(c, a * num_classes, 3, stride=head_stride, padding=1)
            for c, a in zip(channels, per_cell, strict=True)]
    for module in [*extras, *loc, *conf]:
        for param in module.parameters():
            if param.dim() > 1:  # weights only; biases keep PyTorch's default, as in the reference
                nn.init.xavier_uniform_(param)
    return SSD(backbone, extras, loc, conf, num_classes, image_size)


class SSDResNet34(SSD):
    """SSD-ResNet34 at 300 (training) or 1200 (inference); ``default_boxes`` (B, 4) xywh matches its outputs."""

    def __init__(self, num_classes: int = R34_CLASSES, image_size: int = 300) -> None:
        _adopt(self, lambda: _r34_network(num_classes, image_size), box_ops.r34_default_boxes)


def _adopt(model: SSD, build: Callable[[], SSD], make_boxes: Callable[[int, list[int]], np.ndarray]) -> None:
    """Initialise ``model`` with the layers ``build`` makes; give it its feature sizes and its default boxes."""
    parts = build()
    SSD.__init__(model, parts.backbone, list(parts.extras), list(parts.loc), list(parts.conf), parts.num_classes,
                 parts.image_size)
    model.feature_sizes = head_sizes(build)
    # Not persistent: derived from the architecture, so a checkpoint at 300 loads into the 1200 model.
    model.register_buffer("default_boxes", torch.from_numpy(make_boxes(model.image_size, model.feature_sizes)),
                          persistent=False)


def load_backbone(model: SSDResNet34, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load torchvision's ImageNet ResNet-34 weights (``resnet34-333f7ec4.pth``, read by the caller without
    unpickling code) into the backbone. layer4 and fc are not part of SSD and are skipped; anything else missing or
    unexpected is an error."""
    ours = model.backbone.state_dict()
    wanted = {k: v for k, v in state_dict.items() if not k.startswith(("layer4.", "fc."))}
    missing, unexpected = sorted(set(ours) - set(wanted)), sorted(set(wanted) - set(ours))
    if missing or unexpected:
        raise ValueError(f"not a torchvision ResNet-34 state dict: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.backbone.load_state_dict(wanted)


# --- SSD-MobileNet-v1 -------------------------------------------------------------------------------------------

class MobileNetV1Backbone(nn.Module):
    """MobileNet-v1's trunk, returning the maps after block 11 and block 13. ``features`` has the classifier
    model's layer names, so ImageNet MobileNet-v1 weights load with their ``features.`` keys."""

    def __init__(self) -> None:
        super().__init__()
        net = MobileNetV1(num_classes=None)
        self.features = net.features
        self.split = block_end(11)
        self.out_channels = (net.channels[10], net.channels[12])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        first = self.features[:self.split](x)
        return [first, self.features[self.split:](first)]


def _truncated_normal(weight: torch.Tensor, std: float) -> None:
    """Normal within two standard deviations (TF's ``truncated_normal``), by the inverse CDF: one pass, where
    ``nn.init.trunc_normal_`` resamples and takes seconds on these layers."""
    edge = 0.5 * math.erfc(math.sqrt(2))  # P(z < -2)
    with torch.no_grad():
        weight.uniform_(2 * edge - 1, 1 - 2 * edge).erfinv_().mul_(std * math.sqrt(2))


def _mobilenet_network(num_classes: int, image_size: int) -> SSD:
    if image_size != 300:
        raise ValueError(f"SSD-MobileNet-v1 runs at 300 pixels, not {image_size}")
    backbone = MobileNetV1Backbone()
    channels = [*backbone.out_channels, 512, 256, 256, 128]
    extras = [nn.Sequential(conv_bn(cin, cout // 2, 1, 1), conv_bn(cout // 2, cout, 3, 2))
              for cin, cout in zip(channels[1:-1], channels[2:], strict=True)]
    per_cell = box_ops.mobilenet_boxes_per_cell(len(channels))
    loc = [nn.Conv2d(c, a * 4, 1) for c, a in zip(channels, per_cell, strict=True)]
    conf = [nn.Conv2d(c, a * num_classes, 1) for c, a in zip(channels, per_cell, strict=True)]
    for module in [*extras, *loc, *conf]:
        for m in module.modules():
            if isinstance(m, nn.Conv2d):  # TF's ssd_mobilenet_v1_coco: truncated normal, stddev 0.03
                _truncated_normal(m.weight, 0.03)
    return SSD(backbone, extras, loc, conf, num_classes, 300)


class SSDMobileNetV1(SSD):
    """SSD-MobileNet-v1 at 300x300; ``default_boxes`` (B, 4) xywh matches its outputs."""

    def __init__(self, num_classes: int = MOBILENET_CLASSES, image_size: int = 300) -> None:
        _adopt(self, lambda: _mobilenet_network(num_classes, image_size),
               lambda _, sizes: box_ops.mobilenet_default_boxes(sizes))


# LoadGen's model names; 300 is each one's training size.
MODELS: dict[str, type[SSD]] = {"ssd-resnet34": SSDResNet34, "ssd-mobilenet": SSDMobileNetV1}


def build(name: str, image_size: int = 300) -> SSD:
    """The model ``name`` (``ssd-resnet34`` or ``ssd-mobilenet``) for square inputs of ``image_size``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (choose from {', '.join(MODELS)})")
    return MODELS[name](image_size=image_size)


def default_boxes(name: str, image_size: int = 300) -> np.ndarray:
    """The default boxes ``(B, 4)`` xywh of model ``name`` at ``image_size``, without allocating its weights (the
    model is built on the meta device): what a backend running an exported graph hands to ``boxes.postprocess``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (choose from {', '.join(MODELS)})")
    with torch.device("meta"):
        model = MODELS[name](image_size=image_size)
    return model.default_boxes.numpy()  # from_numpy: on the CPU whatever the default device
