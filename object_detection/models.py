"""The object detection models: Mask R-CNN R50-FPN (MLPerf training) and RetinaNet ResNeXt50-32x4d FPN (MLPerf
inference, and training since v2.0), both torchvision's own architectures.

Mask R-CNN R50-FPN is the MLPerf training reference's model (maskrcnn-benchmark ``e2e_mask_rcnn_R_50_FPN_1x``): a
ResNet-50 with a feature pyramid, a region proposal network keeping 2000 proposals per image after NMS in training
(logged as ``num_image_candidates``) and 1000 in evaluation, box and mask heads, 91 outputs (COCO's 90 category ids
+ background, so a label is the category id), images resized to a shorter side of 800 and a longer side of at most
1333. From ImageNet weights the backbone's batch norms are frozen and its stem and first stage stay fixed, as the
reference freezes them (``FREEZE_CONV_BODY_AT: 2``); from scratch (the mini configs) every layer trains, with batch
norm.

RetinaNet is the MLPerf inference reference's ``retinanet`` (torchvision's ``RetinaNet`` on a ResNeXt50-32x4d FPN
with levels P3-P7, 264 OpenImages classes, 800x800 input). :class:`RetinaNetHeads` is the same network up to its raw
head outputs, what export writes and every backend runs; ``boxes.postprocess`` finishes the job. Trained from
scratch (the mini config), its heads get group norm after each hidden convolution (``head_norm``), as torchvision's
``retinanet_resnet50_fpn_v2`` has them: without normalisation in the heads a detector learns from scratch far more
slowly (He et al., "Rethinking ImageNet Pre-training", 2019, trains from scratch with group norm throughout).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.detection import MaskRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.ops import misc as misc_ops
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

MASKRCNN_CLASSES = 91  # COCO category ids 1..90 (10 of them unused) + background: a label is the category id
RETINANET_CLASSES = 264  # the MLPerf OpenImages subset (the inference reference's openimages_mlperf.sh)
# Reference sizes: maskrcnn-benchmark's INPUT.MIN_SIZE_TRAIN / MAX_SIZE_TRAIN; the inference reference's 800x800.
MASKRCNN_SIZES = (800, 1333)
RETINANET_SIZE = 800
RPN_POST_NMS_TRAIN = 2000  # per image: the reference's FPN_POST_NMS_TOP_N_TRAIN, MLPerf's num_image_candidates
ROI_SAMPLES = 512  # proposals sampled per image for the box and mask heads' loss: the reference's BATCH_SIZE_PER_IMAGE
# Backbone stages that train when the backbone starts from ImageNet: layer2..layer4 (the stem and layer1 frozen).
PRETRAINED_TRAINABLE_LAYERS = 3
# RetinaNet's anchors (the paper's, torchvision's default): per level P3..P7 a base size 32..512 at three octave
# scales 2^0, 2^(1/3), 2^(2/3) and three aspect ratios, 9 anchors a cell.
ANCHOR_SIZES = tuple((s, int(s * 2 ** (1 / 3)), int(s * 2 ** (2 / 3))) for s in (32, 64, 128, 256, 512))
ASPECT_RATIOS = (0.5, 1.0, 2.0)
FPN_CHANNELS = 256
HEAD_NORM_GROUPS = 32  # torchvision's retinanet_resnet50_fpn_v2 head: GroupNorm(32, 256)
# ImageNet normalisation, which RetinaNet's transform applies (torchvision's GeneralizedRCNNTransform defaults).
IMAGE_MEAN, IMAGE_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def build_maskrcnn(min_size: int = MASKRCNN_SIZES[0], max_size: int = MASKRCNN_SIZES[1],
                   pretrained_backbone: bool = False, image_candidates: int = RPN_POST_NMS_TRAIN,
                   roi_samples: int = ROI_SAMPLES) -> MaskRCNN:
    """Mask R-CNN R50-FPN with random weights; ``pretrained_backbone`` sets it up for :func:`load_backbone`
    (frozen batch norm, stem and layer1 fixed), else every layer trains with batch norm. ``image_candidates`` and
    ``roi_samples`` are the training-time proposals kept per image and those sampled for the heads' loss."""
    norm = misc_ops.FrozenBatchNorm2d if pretrained_backbone else torch.nn.BatchNorm2d
    trunk = resnet.resnet50(weights=None, norm_layer=norm)
    layers = PRETRAINED_TRAINABLE_LAYERS if pretrained_backbone else 5
    backbone = _resnet_fpn_extractor(trunk, layers)
    return MaskRCNN(backbone, num_classes=MASKRCNN_CLASSES, min_size=min_size, max_size=max_size,
                    rpn_post_nms_top_n_train=image_candidates, rpn_post_nms_top_n_test=1000,
                    box_batch_size_per_image=roi_samples)


def anchor_generator() -> AnchorGenerator:
    return AnchorGenerator(ANCHOR_SIZES, (ASPECT_RATIOS,) * len(ANCHOR_SIZES))


def build_retinanet(image_size: int = RETINANET_SIZE, num_classes: int = RETINANET_CLASSES,
                    pretrained_backbone: bool = False, head_norm: bool = False) -> RetinaNet:
    """RetinaNet ResNeXt50-32x4d FPN (P3-P7) with random weights, resizing every image to image_size x image_size.
    ``pretrained_backbone`` sets it up for :func:`load_backbone` as the reference trains it (frozen batch norm,
    stem and layer1 fixed); else every layer trains, with batch norm (the mini config, from scratch).
    ``head_norm`` puts group norm after each hidden convolution of both heads (see the module docstring); the
    reference's heads have none."""
    norm = misc_ops.FrozenBatchNorm2d if pretrained_backbone else torch.nn.BatchNorm2d
    trunk = resnet.resnext50_32x4d(weights=None, norm_layer=norm)
    backbone = _resnet_fpn_extractor(trunk, PRETRAINED_TRAINABLE_LAYERS if pretrained_backbone else 5,
                                     returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(2048, FPN_CHANNELS))
    anchors = anchor_generator()
    head = RetinaNetHead(FPN_CHANNELS, anchors.num_anchors_per_location()[0], num_classes,
                         norm_layer=partial(nn.GroupNorm, HEAD_NORM_GROUPS) if head_norm else None)
    return RetinaNet(backbone, num_classes=num_classes, min_size=image_size, max_size=image_size,
                     fixed_size=(image_size, image_size), anchor_generator=anchors, head=head,
                     image_mean=list(IMAGE_MEAN), image_std=list(IMAGE_STD))


class RetinaNetHeads(nn.Module):
    """A RetinaNet without its transform and post-processing: normalised ``(N, 3, S, S)`` images -> the raw head
    outputs ``cls_logits (N, A, C)`` and ``bbox_regression (N, A, 4)`` (``boxes`` has the layout)."""

    def __init__(self, model: RetinaNet) -> None:
        super().__init__()
        self.backbone, self.head = model.backbone, model.head
        self.image_size = model.transform.fixed_size[0]
        self.num_classes = model.head.classification_head.num_classes

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self.head(list(self.backbone(images).values()))
        return outputs["cls_logits"], outputs["bbox_regression"]


def load_backbone(model: MaskRCNN | RetinaNet, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Copy ImageNet classifier weights (torchvision's ResNet-50 or ResNeXt-50 state dict) into the detector's
    trunk: every trunk tensor must come from the file; the classifier's ``fc`` is left out."""
    body = model.backbone.body
    wanted = body.state_dict()
    given = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    missing = sorted(set(wanted) - set(given))
    unexpected = sorted(set(given) - set(wanted) - {k for k in given if k.endswith("num_batches_tracked")})
    if missing or unexpected:
        raise ValueError(f"the backbone weights do not fit the model's trunk: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    for name, tensor in wanted.items():
        if tuple(given[name].shape) != tuple(tensor.shape):
            raise ValueError(f"backbone weight {name}: shape {tuple(given[name].shape)}, the model needs "
                             f"{tuple(tensor.shape)}")
    body.load_state_dict({k: given[k] for k in wanted})


def build(name: str, **kwargs) -> MaskRCNN | RetinaNet:
    if name == "maskrcnn":
        return build_maskrcnn(**kwargs)
    if name == "retinanet":
        return build_retinanet(**kwargs)
    raise ValueError(f"unknown model {name!r}: maskrcnn or retinanet")
