"""Train SSD-ResNet34 (or SSD-MobileNet-v1) on COCO 2017 until the bbox mAP reaches the target, then stop.

The reference config follows the MLPerf training closed rules for SSD (ruleset 1.0.0, the last that knows
SSD-ResNet34) and the reference's recipe: an ImageNet-pretrained ResNet-34 backbone, batch 32 per GPU, SGD with
momentum 0.9, learning rate 2.5e-3 x gbs/32, weight decay 5e-4, a linear warmup (the reference's warmup factor 0
over 2.619685 epochs: 300 steps at batch 1024), x0.1 at epochs [40, 50] x (1 + k/10), evaluation at epoch 40 and
then every 5 epochs, to mAP 0.23 on val2017. The loss is the reference's: smooth L1 on the boxes matched to an
object, plus cross-entropy on those and on the 3 x as many hardest background boxes. The shared driver
(loadgen.training.driver) writes the mllog log, which passes
``python -m mlperf_logging.compliance_checker --usage training --ruleset 1.0.0``.

    python -m single_stage_detector.train --config mini        # the embedded mini set, open division
    python -m single_stage_detector.train --config reference --data-dir /data/coco \\
        --backbone-weights /data/coco/pretrained/resnet34-333f7ec4.pth --device gpu --workers 8
    torchrun --nproc-per-node 8 -m single_stage_detector.train --config reference --device gpu ...

The mini and ssd-mobilenet configs (open division) train from scratch on the mini set (real pixels and object
shapes, synthesized layout). Evaluation: ``boxes.postprocess`` (the one post-processing every inference backend
uses), labels mapped to COCO category ids, pycocotools' COCOeval bbox mAP (IoU 0.50:0.95) over the evaluated
images, each rank evaluating its share and rank 0 scoring them together.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import io
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from mlperf_logging.mllog import constants
from torch import nn

from loadgen.data import DataError, category_to_label, label_to_category, prefetch
from loadgen.training import coco, distributed, driver
from loadgen.training.workload import Every, Shard, Workload
from single_stage_detector import boxes as box_ops
from single_stage_detector import mini
from single_stage_detector.data import load_backbone_weights
from single_stage_detector.data import training as data
from single_stage_detector.data.presets import eval_preset
from single_stage_detector.models import build, load_backbone

REFERENCE_BATCH = 32  # per GPU, and the batch the base learning rate is given for
BACKBONE_WEIGHTS = "resnet34-333f7ec4.pth"  # torchvision's ImageNet ResNet-34, the reference's start
NEG_PER_POS = 3  # hard negative mining: background boxes kept per matched box


@dataclasses.dataclass(frozen=True)
class Config:
    division: str
    model: str
    batch_size: int  # global
    epochs: int
    lr_per_32: float  # the learning rate at batch 32; scaled linearly with the global batch
    warmup_epochs: float
    eval_every: int
    target: float
    eval_first: int | None = None  # epoch of the first evaluation (default: eval_every)
    decay_epochs: tuple[int, ...] = (40, 50)
    decay_k: int = 0  # the rule's boundaries are decay_epochs x (1 + k/10), k >= 0
    warmup_factor: int = 0  # the reference's: the warmup's slope is base_lr / (steps x 2^factor)
    weight_decay: float = 5e-4
    momentum: float = 0.9
    max_samples: int = 1  # crop tries per mode (MLPerf closed rule: 1 or 50)
    pretrained: bool = False  # whether the backbone starts from ImageNet weights (--backbone-weights)

    def __post_init__(self) -> None:
        if self.max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {self.max_samples}")
        if self.decay_k < 0:
            raise ValueError(f"decay_k must be >= 0, got {self.decay_k}")

    def base_lr(self) -> float:
        return self.lr_per_32 * self.batch_size / REFERENCE_BATCH

    def boundaries(self) -> list[int]:
        return [round(e * (1 + self.decay_k / 10)) for e in self.decay_epochs]


CONFIGS = {
    # COCO 2017, MLPerf closed. Target 0.23 mAP: MLPerf training closed rule for SSD (v0.7-v1.1). Recipe: the
    # reference's train.py and config_DGX1_*.sh (lr 2.5e-3 per 32 images, warmup 2.619685 epochs with factor 0,
    # decay at epochs 40 and 50); 80 epochs: the rules' last scheduled evaluation.
    "reference": Config(division="closed", model="ssd-resnet34", batch_size=REFERENCE_BATCH, epochs=80,
                        lr_per_32=2.5e-3, warmup_epochs=2.619685, eval_every=5, eval_first=40, target=0.23,
                        pretrained=True),
    # The embedded mini set, open division, from scratch: the reference's loss, crop and schedule shape, with a
    # higher learning rate and a short warmup. SSD-ResNet34 learns slowly from scratch on 2 CPU cores (about 2 min
    # an epoch of 36 steps), so the target is modest: measured with seed 1, mAP 0.0009 after epoch 1 and 0.0011
    # after epoch 2 (python -m single_stage_detector.train --config mini --target 0.9).
    "mini": Config(division="open", model="ssd-resnet34", batch_size=8, epochs=3, lr_per_32=8e-2,
                   warmup_epochs=0.25, eval_every=1, target=0.001, decay_epochs=(3, 4)),
    # SSD-MobileNet-v1 on the same driver and mini set (open division), so that its inference runs on weights
    # trained here; make demo's recipe (about 25 s an epoch of 36 steps on 2 CPU cores). Measured with seed 1 and
    # evaluation every 2 epochs: mAP 0.015 after epoch 4, 0.066 after 8, 0.094 after 12, 0.112 after 14 (with the
    # rate x0.1 from epoch 12); half the learning rate learns no faster (0.048 after 8), 2.5 x as much far slower.
    "ssd-mobilenet": Config(division="open", model="ssd-mobilenet", batch_size=8, epochs=12, lr_per_32=8e-2,
                            warmup_epochs=0.25, eval_every=1, target=0.05, decay_epochs=(10, 11)),
}


def multibox_loss(locs: torch.Tensor, scores: torch.Tensor, loc_targets: torch.Tensor,
                  labels: torch.Tensor) -> torch.Tensor:
    """SSD's loss as the reference computes it, averaged over the images of the batch.

    locs (N, 4, B) and scores (N, C, B) are the network's outputs; loc_targets (N, B, 4) the encoded offsets of
    each default box's match and labels (N, B) its class (0: background). Per image: smooth L1 over the matched
    boxes' offsets, plus cross-entropy over the matched boxes and the 3 x as many background boxes with the highest
    cross-entropy (at most all of them), divided by the number of matched boxes; an image with none adds 0.
    """
    positive = labels > 0
    matched = positive.sum(dim=1)
    box_loss = (F.smooth_l1_loss(locs.transpose(1, 2), loc_targets, reduction="none").sum(dim=2)
                * positive).sum(dim=1)
    ce = F.cross_entropy(scores, labels, reduction="none")  # (N, B)
    background = ce.detach().masked_fill(positive, 0.0)
    # The rank of each box by its background loss, hardest first: two sorts give every box its place.
    rank = background.argsort(dim=1, descending=True).argsort(dim=1)
    hard = rank < (NEG_PER_POS * matched).clamp(max=labels.shape[1]).unsqueeze(1)
    class_loss = (ce * (positive | hard)).sum(dim=1)
    per_image = (box_loss + class_loss) / matched.clamp(min=1)
    return (per_image * (matched > 0)).mean()


def learning_rate(step: int, steps_per_epoch: int, cfg: Config, warmup_steps: int) -> float:
    """The reference's schedule: linear warmup over ``warmup_steps`` (from base_lr (1 - 1/2^factor) up), then
    x0.1 from each boundary epoch on. Step ``s`` takes the rate the reference gives iteration ``s + 1``, so the
    first step does not run at rate 0."""
    lr = cfg.base_lr() * 0.1 ** sum(step // steps_per_epoch >= b for b in cfg.boundaries())
    if step < warmup_steps:
        lr -= (warmup_steps - step - 1) * lr / (warmup_steps * 2 ** cfg.warmup_factor)
    return lr


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


class SingleStageDetector(Workload):
    """SSD-ResNet34 (or SSD-MobileNet-v1) on a COCO 2017 folder, to a bbox mAP target."""

    configs = CONFIGS
    mllog_benchmark = "ssd"
    ruleset = "1.0.0"
    hyperparameter_keys = (constants.MODEL_BN_SPAN, constants.OPT_LR_WARMUP_FACTOR, constants.OPT_LR_WARMUP_STEPS,
                           constants.OPT_WEIGHT_DECAY, constants.OPT_BASE_LR, constants.MAX_SAMPLES,
                           constants.OPT_LR_DECAY_BOUNDARY_EPOCHS)
    data_errors = (DataError,)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        coco.add_arguments(parser, mini.DEFAULT_OUT, BACKBONE_WEIGHTS)
        parser.add_argument("--max-samples", type=int, choices=data.MAX_SAMPLES, default=None,
                            help="crop tries per crop mode (default: the config's, 1)")

    @classmethod
    def configure(cls, args: argparse.Namespace, cfg: Config) -> Config:
        if args.batch_size is None and cfg.division == "closed":
            # The reference's batch is 32 per GPU: the global batch grows with the processes.
            cfg = dataclasses.replace(cfg, batch_size=REFERENCE_BATCH * _world_size())
        if args.max_samples is not None:
            cfg = dataclasses.replace(cfg, max_samples=args.max_samples)
        weights = coco.backbone_weights(args, cfg.pretrained, BACKBONE_WEIGHTS, "ResNet-34")
        if weights is not None and cfg.model != "ssd-resnet34":
            raise driver.UsageError(f"--backbone-weights is a ResNet-34; the {cfg.model} config has no use for it")
        args.backbone_weights = weights
        return cfg

    @classmethod
    def default_targets(cls, cfg: Config) -> dict[str, float]:
        return {"mAP": cfg.target}

    @property
    def name(self) -> str:
        return self.cfg.model

    def every(self) -> Every:
        return Every(epochs=self.cfg.eval_every, first=self.cfg.eval_first)

    def setup(self, seed: int) -> None:
        args, cfg, world = self.args, self.cfg, self.world
        with distributed.main_first(world):
            self.root = Path(args.data_dir) if args.data_dir else mini.ensure()
        # SSD-ResNet34 predicts labels 1..80; SSD-MobileNet-v1 (TF's label map) the COCO category ids themselves.
        self.label_of = category_to_label if cfg.model == "ssd-resnet34" else np.asarray
        self.category_of = label_to_category if cfg.model == "ssd-resnet34" else np.asarray
        self.model = build(cfg.model)
        if args.backbone_weights:
            load_backbone(self.model, load_backbone_weights(args.backbone_weights))
        self.model.to(self.device)
        self.default_boxes = self.model.default_boxes.cpu().numpy()
        self.train_set = data.TrainSet(data.CocoImages(self.root, "train", self.label_of), self.default_boxes,
                                       data.TrainAugment(max_samples=cfg.max_samples))
        self.val_images = data.CocoImages(self.root, "val", self.label_of, limit=args.eval_images)
        # The one evaluation preset, the inference QSL's: the model's normalisation at the training size.
        self.preset = eval_preset(cfg.model, data.IMAGE_SIZE)
        self.val_set = data.EvalSet(self.val_images, self.preset)
        self.sampler = distributed.SeededShards(self.train_set, world, seed)
        self.loader = torch.utils.data.DataLoader(
            self.train_set, world.local_batch(cfg.batch_size), sampler=self.sampler, drop_last=True,
            num_workers=args.workers, collate_fn=data.TrainCollate(self.preset), persistent_workers=args.workers > 0,
            pin_memory=self.device.type == "cuda")
        if len(self.loader) == 0:
            raise DataError(f"{self.root}: {len(self.train_set)} annotated train images, fewer than one batch of "
                            f"{cfg.batch_size}")
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.base_lr(), momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay)
        self.train_samples, self.eval_samples, self.steps_per_epoch = (len(self.train_set), len(self.val_set),
                                                                       len(self.loader))
        # The reference's count: int(warmup epochs x annotated images / global batch), at least one step.
        self.warmup_steps = max(1, int(cfg.warmup_epochs * len(self.train_set) / cfg.batch_size))

    def hyperparameters(self) -> dict:
        cfg = self.cfg
        return {constants.OPT_BASE_LR: cfg.base_lr(), constants.OPT_WEIGHT_DECAY: cfg.weight_decay,
                constants.OPT_LR_WARMUP_STEPS: self.warmup_steps, constants.OPT_LR_WARMUP_FACTOR: cfg.warmup_factor,
                constants.OPT_LR_DECAY_BOUNDARY_EPOCHS: cfg.boundaries(), constants.MAX_SAMPLES: cfg.max_samples,
                # BatchNorm normalises over each process's own share of the batch.
                constants.MODEL_BN_SPAN: self.world.local_batch(cfg.batch_size)}

    def train_batches(self, epoch: int):
        self.sampler.set_epoch(epoch)
        # On a GPU, batches are made ahead on a thread while the GPU runs; on CPU the step uses every core.
        return prefetch(self.loader) if self.device.type == "cuda" else self.loader

    def learning_rate(self, step: int) -> float:
        return learning_rate(step, self.steps_per_epoch, self.cfg, self.warmup_steps)

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        images, loc_targets, labels = (t.to(self.device, non_blocking=True) for t in batch)
        locs, scores = model(images)
        return multibox_loss(locs, scores, loc_targets, labels)

    def evaluate(self, model: nn.Module, shard: Shard) -> tuple[list[int], np.ndarray]:
        """This rank's image ids and detections, rows [image_id, x, y, width, height, score, category_id] in
        pixels of the original image (what COCOeval's loadRes reads)."""
        subset = torch.utils.data.Subset(self.val_set, shard.take(self.val_set))
        loader = torch.utils.data.DataLoader(subset, 32, num_workers=self.args.workers,
                                             collate_fn=data.EvalCollate(self.preset))
        ids, rows = [], []
        for images, image_ids, sizes in loader:
            locs, scores = model(images.to(self.device))
            detections = box_ops.postprocess(locs.float().cpu().numpy(), scores.float().cpu().numpy(),
                                             self.default_boxes)
            for image_id, (height, width), det in zip(image_ids, sizes, detections, strict=True):
                ids.append(image_id)
                if len(det) == 0:
                    continue
                ymin, xmin, ymax, xmax = (det[:, i].astype(np.float64) for i in range(4))
                rows.append(np.stack([np.full(len(det), image_id, dtype=np.float64), xmin * width, ymin * height,
                                      (xmax - xmin) * width, (ymax - ymin) * height, det[:, 4],
                                      self.category_of(det[:, 5].astype(np.int64))], axis=1))
        return ids, (np.concatenate(rows) if rows else np.zeros((0, 7)))

    def merge(self, parts: list[tuple[list[int], np.ndarray]]) -> dict[str, float]:
        ids = [i for part_ids, _ in parts for i in part_ids]
        detections = np.concatenate([rows for _, rows in parts])
        return {"mAP": coco_map(self.val_images.coco, detections, ids)}

    def checkpoint_meta(self) -> dict:
        return {"model": self.cfg.model, "num_classes": self.model.num_classes, "image_size": data.IMAGE_SIZE,
                "data_dir": str(self.root)}

    def describe(self) -> str:
        return f"{self.cfg.model} on {self.root.name}"


def coco_map(coco_gt, detections: np.ndarray, image_ids: list[int]) -> float:
    """COCOeval's bbox mAP (IoU 0.50:0.95, area all, 100 detections) of ``detections`` (rows [image_id, x, y, w,
    h, score, category_id]) over ``image_ids``; 0.0 when there is no detection at all."""
    from pycocotools.cocoeval import COCOeval

    if len(detections) == 0 or not image_ids:
        return 0.0
    # pycocotools prints its progress and summary tables; the driver prints the metric once.
    with contextlib.redirect_stdout(io.StringIO()):
        result = coco_gt.loadRes(detections)
        evaluation = COCOeval(coco_gt, result, iouType="bbox")
        evaluation.params.imgIds = sorted(set(image_ids))
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return max(0.0, float(evaluation.stats[0]))  # -1 means no ground truth to score against


get_args_parser = functools.partial(driver.get_args_parser, SingleStageDetector)  # (add_help=True)
main = functools.partial(driver.main, SingleStageDetector)  # (args) -> exit code


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
