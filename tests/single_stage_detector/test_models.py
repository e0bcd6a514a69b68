"""The SSD networks: the reference's layers and sizes, raw outputs lined up with the default boxes, a training step."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torchvision

from loadgen.nets.mobilenet_v1 import MobileNetV1
from single_stage_detector import models


@pytest.fixture(scope="module")
def r34():
    torch.manual_seed(0)
    return models.build("ssd-resnet34")


def test_resnet34_at_300_is_the_training_reference(r34):
    assert r34.feature_sizes == [38, 19, 10, 5, 3, 1]
    assert r34.default_boxes.shape == (8732, 4)
    first = r34.backbone.layer3[0]
    assert first.conv1.stride == (1, 1) and first.downsample[0].stride == (1, 1)  # the reference's change
    assert not hasattr(r34.backbone, "layer4") and not hasattr(r34.backbone, "fc")
    assert [head.out_channels for head in r34.loc] == [16, 24, 24, 24, 16, 16]
    assert [head.out_channels for head in r34.conf] == [a * 81 for a in (4, 6, 6, 6, 4, 4)]
    assert [head.in_channels for head in r34.loc] == [256, 512, 512, 256, 256, 256]


def test_resnet34_extras_and_heads_start_from_xavier_uniform(r34):
    for conv in [r34.extras[1][2], r34.conf[0], r34.loc[5]]:
        fan_in = conv.in_channels * math.prod(conv.kernel_size)
        fan_out = conv.out_channels * math.prod(conv.kernel_size)
        bound = math.sqrt(6 / (fan_in + fan_out))
        largest = conv.weight.abs().max().item()
        # PyTorch's default bound, 1/sqrt(fan_in), is below Xavier's for these shapes: the largest weight tells.
        assert 1 / math.sqrt(fan_in) < largest <= bound * (1 + 1e-6)


def test_resnet34_at_1200_recomputes_its_boxes_from_the_network():
    with torch.device("meta"):  # the shapes without the arithmetic: a 1200x1200 forward takes long on a CPU
        model = models.build("ssd-resnet34", 1200)
        locs, scores = model(torch.empty(2, 3, 1200, 1200))
    assert model.feature_sizes == [50, 25, 13, 7, 3, 3]  # the inference reference's maps (strides 3, 3, 2, 2, 2, 2)
    assert locs.shape == (2, 4, 15130) and scores.shape == (2, 81, 15130)
    assert model.default_boxes.shape == (15130, 4)
    assert models.default_boxes("ssd-resnet34", 1200).shape == (15130, 4)


def test_resnet34_weights_trained_at_300_load_at_1200(r34):
    with torch.device("meta"):
        large = models.build("ssd-resnet34", 1200)
    large.load_state_dict(r34.state_dict(), strict=True, assign=True)
    assert torch.equal(large.conf[2].weight, r34.conf[2].weight)


def test_imagenet_resnet34_loads_into_the_backbone(r34):
    imagenet = torchvision.models.resnet34(weights=None).state_dict()
    models.load_backbone(r34, imagenet)
    assert torch.equal(r34.backbone.layer3[5].conv2.weight, imagenet["layer3.5.conv2.weight"])
    with pytest.raises(ValueError, match="not a torchvision ResNet-34 state dict"):
        models.load_backbone(r34, torchvision.models.resnet18(weights=None).state_dict())


def test_resnet34_training_step_on_cpu(r34):
    r34.train()
    opt = torch.optim.SGD(r34.parameters(), lr=0.01, momentum=0.9)
    before = [r34.backbone.conv1.weight.clone(), r34.conf[0].weight.clone()]
    # One image keeps this a few seconds on a CPU; the MobileNet step below runs a batch of two.
    locs, scores = r34(torch.randn(1, 3, 300, 300, generator=torch.Generator().manual_seed(1)))
    assert locs.shape == (1, 4, 8732) and scores.shape == (1, 81, 8732)
    target = torch.zeros(1, 8732, dtype=torch.long)
    loss = torch.nn.functional.cross_entropy(scores, target) + locs.square().mean()
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in r34.parameters())
    opt.step()
    assert not torch.equal(before[0], r34.backbone.conv1.weight) and not torch.equal(before[1], r34.conf[0].weight)


@pytest.fixture(scope="module")
def mobilenet():
    torch.manual_seed(0)
    return models.build("ssd-mobilenet")


def test_mobilenet_outputs_and_training_step(mobilenet):
    model = mobilenet
    assert model.feature_sizes == [19, 10, 5, 3, 2, 1] and model.default_boxes.shape == (1917, 4)
    assert [head.in_channels for head in model.loc] == [512, 1024, 512, 256, 256, 128]
    locs, scores = model.train()(torch.randn(2, 3, 300, 300))
    assert locs.shape == (2, 4, 1917) and scores.shape == (2, 91, 1917)
    (locs.square().mean() + scores.logsumexp(1).mean()).backward()
    assert torch.isfinite(model.backbone.features[0][0].weight.grad).all()
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 300, 300))[1].shape == (1, 91, 1917)


def test_mobilenet_heads_start_from_tensorflows_truncated_normal(mobilenet):
    weight = mobilenet.conf[1].weight  # 1024 -> 6 * 91, 1x1: half a million draws
    assert weight.abs().max() <= 0.06  # cut at two standard deviations
    assert weight.std().item() == pytest.approx(0.03 * 0.8796, rel=0.02)  # a normal cut at 2 sigma keeps 88% of it


def test_mobilenet_backbone_takes_the_classifiers_trunk_weights(mobilenet):
    classifier = MobileNetV1(num_classes=1000).state_dict()
    trunk = {k: v for k, v in classifier.items() if k.startswith("features.")}
    model = copy.deepcopy(mobilenet)
    model.backbone.load_state_dict(trunk, strict=True)
    assert not any(name.startswith(("backbone.classifier", "backbone.pool")) for name, _ in model.named_parameters())


def test_head_channels_line_up_with_the_default_boxes(mobilenet):
    """A head's (A*4, H, W) output must land on default box (shape a, row i, column j) = a*H*W + i*W + j."""
    model = copy.deepcopy(mobilenet).eval()
    for head in model.loc:
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    per_cell, side = 6, 10  # the second map: 10x10, 6 shapes
    with torch.no_grad():
        model.loc[1].bias[2 * per_cell + 4] = 1.0  # coordinate 2 (width) of shape 4
        locs, _ = model(torch.zeros(1, 3, 300, 300))
    hot = torch.nonzero(locs[0]).tolist()
    start = 19 * 19 * 3 + 4 * side * side
    assert hot == [[2, b] for b in range(start, start + side * side)]
    shape4 = model.default_boxes[start:start + side * side]
    assert torch.allclose(shape4[:, 2:], shape4[0, 2:]) and shape4[1, 0] > shape4[0, 0]  # one shape, x varies first


def test_unknown_names_and_sizes_are_refused():
    with pytest.raises(ValueError, match="unknown model 'ssd-vgg'"):
        models.build("ssd-vgg")
    with pytest.raises(ValueError, match="runs at 300 or 1200 pixels, not 600"):
        models.default_boxes("ssd-resnet34", 600)
    with pytest.raises(ValueError, match="runs at 300 pixels, not 1200"):
        models.default_boxes("ssd-mobilenet", 1200)
