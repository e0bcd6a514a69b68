"""object_detection.models: Mask R-CNN R50-FPN is torchvision's reference architecture with MLPerf's settings, a
training step moves it, an ImageNet backbone loads and freezes as the reference does; RetinaNet ResNeXt50 FPN with
264 classes trains a step too."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models import resnet

from object_detection.data.training import CocoInstances, collate
from object_detection.models import (
    MASKRCNN_CLASSES,
    RETINANET_CLASSES,
    build,
    build_maskrcnn,
    build_retinanet,
    load_backbone,
)


def _step(model, images, targets) -> tuple[float, dict[str, torch.Tensor]]:
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    model.train()
    losses = model(images, targets)
    loss = sum(losses.values())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach()), {n: (p.detach() - before[n]).abs().max() for n, p in model.named_parameters()
                         if p.requires_grad}


def test_maskrcnn_is_torchvisions_r50_fpn_with_the_references_settings():
    ours = build_maskrcnn()
    theirs = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None,
                                                                num_classes=MASKRCNN_CLASSES)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    assert ours.rpn._post_nms_top_n == {"training": 2000, "testing": 1000}  # num_image_candidates, per image
    assert ours.roi_heads.fg_bg_sampler.batch_size_per_image == 512  # the reference's ROI_HEADS.BATCH_SIZE_PER_IMAGE
    small = build_maskrcnn(image_candidates=500, roi_samples=128)  # what the mini config sets
    assert small.rpn._post_nms_top_n["training"] == 500 and small.roi_heads.fg_bg_sampler.batch_size_per_image == 128
    assert (ours.transform.min_size, ours.transform.max_size) == ((800,), 1333)
    assert ours.roi_heads.detections_per_img == 100 and ours.roi_heads.nms_thresh == 0.5
    assert ours.roi_heads.score_thresh == 0.05


def test_maskrcnn_training_step_on_the_mini_set(mini_root):
    torch.manual_seed(0)
    data = CocoInstances(mini_root, "train", train=True)
    images, targets = collate([data[(i, 0, 1)] for i in range(2)])
    assert all(t["masks"].shape[1:] == im.shape[1:] for im, t in zip(images, targets, strict=True))
    model = build("maskrcnn", min_size=128, max_size=160)
    loss, moved = _step(model, images, targets)
    assert torch.isfinite(torch.tensor(loss)) and loss > 0
    assert moved["roi_heads.mask_predictor.mask_fcn_logits.weight"] > 0  # the mask branch learns
    assert moved["backbone.body.conv1.weight"] > 0  # from scratch: every layer trains


def test_an_imagenet_backbone_loads_and_freezes_the_stem_and_layer1():
    state = resnet.resnet50(weights=None).state_dict()  # stands in for torchvision's ImageNet file
    model = build_maskrcnn(pretrained_backbone=True)
    load_backbone(model, state)
    body = model.backbone.body
    torch.testing.assert_close(body.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    torch.testing.assert_close(body.layer1[0].bn1.running_mean, state["layer1.0.bn1.running_mean"])
    frozen = {n for n, p in body.named_parameters() if not p.requires_grad}
    assert {n.split(".")[0] for n in frozen} == {"conv1", "layer1"}
    assert isinstance(body.bn1, torchvision.ops.FrozenBatchNorm2d)


def test_backbone_weights_that_do_not_fit_are_refused():
    model = build_maskrcnn(pretrained_backbone=True)
    with pytest.raises(ValueError, match="missing"):
        load_backbone(model, resnet.resnet34(weights=None).state_dict())


def test_retinanet_is_resnext50_fpn_with_264_classes_and_trains_a_step(mini_root):
    model = build_retinanet(image_size=128)
    assert model.head.classification_head.num_classes == RETINANET_CLASSES == 264
    assert model.backbone.body.layer1[0].conv2.groups == 32  # ResNeXt-50 32x4d
    assert model.transform.fixed_size == (128, 128)
    torch.manual_seed(0)
    data = CocoInstances(mini_root, "train", train=True)
    image, target = data[0]
    target = {"boxes": target["boxes"], "labels": target["labels"] % RETINANET_CLASSES}
    loss, moved = _step(model, [image], [target])
    assert torch.isfinite(torch.tensor(loss)) and moved["head.classification_head.cls_logits.weight"] > 0


def test_unknown_model_names_are_refused():
    with pytest.raises(ValueError, match="unknown model"):
        build("fasterrcnn")
