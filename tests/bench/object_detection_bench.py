"""object_detection figures for ``make bench``, each measured side by side in one run; targets in each
``@measures``.

- retinanet_offline_harness_over_raw  samples/s of an Offline run under LoadGen with onnxruntime (RetinaNet at
                                      256x256, infer.py's task: its QSL, normalisation and ``infer.responses``) /
                                      the same model in a raw loop doing what the harness does for a batch and
                                      nothing else: normalise the loaded images, ``InferenceSession.run``, the one
                                      post-processing (``boxes.postprocess``: torchvision's RetinaNet decoding and
                                      NMS); same batch and threads. 256x256 is the retinanet-mini config's size;
                                      the benchmark's 800x800 is 9.8 times the pixels, and about as much more
                                      work an image (a batch of 8 takes about 0.9 s at 256 on 2 idle cores): too
                                      long for the many short phases a ratio needs here. Sixteen rounds of
                                      three batches a side, the two sides back to back (each first in every other
                                      round); each side's samples over its total time. The weights are random but
                                      made to detect up to 300 boxes an image (the tests' ``lively_retinanet``),
                                      so NMS has real work.
- maskrcnn_train_over_torchvision_ref training samples/s of train.py's Mask R-CNN data path and step (the workload
                                      itself, as the driver sets it up: ``CocoInstances`` + ``collate`` in the
                                      training process, as train.py runs with --workers 0; the driver's step: the
                                      learning rate set, zero_grad, the workload's loss (model(images, targets),
                                      the losses summed), backward, step) / a re-implementation of torchvision's
                                      references/detection ``train_one_epoch`` (the references are not in the pip
                                      wheel): its per-step work - images and targets to the device, ``loss_dict =
                                      model(images, targets)``, the losses summed, reduce_dict of the losses for
                                      logging (single process: the dict as is), ``loss_value = losses.item()``
                                      with its isfinite check, optimizer.zero_grad, backward, step, MetricLogger
                                      bookkeeping of the loss values and lr - on the references' data path,
                                      re-implemented too: ``torchvision.datasets.CocoDetection``, their
                                      ConvertCocoPolysToMask, RandomHorizontalFlip(0.5), PILToTensor and float,
                                      ``tuple(zip(*batch))``, in DataLoader worker processes (one a thread).
                                      Same Mask R-CNN R50-FPN at min size 192 / max size 256 (the mini config
                                      trains at 256/320; here a step of 2 images takes about 2 s on 2 idle cores,
                                      5 s and more while other work shares them), batch 2, mini set (24 train
                                      images, the same on both sides), seed, optimizer and torch threads; no
                                      decoded image is kept on either side. Four rounds, the two sides back to
                                      back (each first in every other round), 4 timed steps a side after 1
                                      untimed; each side's samples over its total time. The two sides train one
                                      model with one optimizer in turn, after two untimed steps of train.py's.
No baseline here is the reference's own code: the offline baseline is onnxruntime itself, the training one a
re-implementation of torchvision's detection reference, written from its engine.py, utils.py, coco_utils.py,
transforms.py and presets.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
from collections import defaultdict, deque
from pathlib import Path

from loadgen.backends import BackendConfig, create_backend
from tests.bench.sides import alternate, offline_harness_and_raw, timed_steps
from tests.bench.targets import INFORMATIONAL, at_least, measures

RETINANET_SIZE = 256  # the retinanet-mini config's input (train.py); see the module docstring
ROUNDS, PHASE_BATCHES = 16, 3
MASKRCNN_MIN, MASKRCNN_MAX = 192, 256  # below the mini config's 256/320: the figure in under 4 min
TRAIN_IMAGES, TRAIN_BATCH, TRAIN_STEPS, TRAIN_ROUNDS = 24, 2, 4, 4
# One untimed step a phase: the reference side's worker processes start and fill their prefetch queue during it.
UNTIMED = 1


@measures(
    # As ssd_offline_harness_over_raw: the harness may cost at most 2 % of the raw loop; its extra work here
    # (normalising each batch from the loaded uint8 images, copying the responses) is small beside RetinaNet's
    # forward pass and NMS.
    retinanet_offline_harness_over_raw=at_least(0.98),
    retinanet_offline_raw_samples_per_s=INFORMATIONAL,  # the two sides of the ratio
    retinanet_offline_harness_samples_per_s=INFORMATIONAL,
)
def retinanet_offline_harness_over_raw(work: Path, args) -> dict[str, float]:
    import torch

    from object_detection import export, infer, mini, models
    from tests.object_detection.conftest import lively_retinanet

    torch.set_num_threads(args.threads)  # boxes.postprocess runs on torch
    root = mini.build_openimages(work / "openimages-mini", train_images=8, val_images=40, progress=False)
    onnx = work / f"{infer.MODEL}.onnx"
    export.write("onnxruntime", models.RetinaNetHeads(lively_retinanet(RETINANET_SIZE, root)).eval(), onnx)
    backend = create_backend("onnxruntime", BackendConfig(threads=args.threads)).load(str(onnx))
    task = infer.make_task(argparse.Namespace(dataset_path=str(root), image_size=RETINANET_SIZE, count=None))
    harness, raw = offline_harness_and_raw(task, backend, infer.MODEL, work, args.batch, ROUNDS, PHASE_BATCHES)
    return {"retinanet_offline_harness_over_raw": harness / raw, "retinanet_offline_raw_samples_per_s": raw,
            "retinanet_offline_harness_samples_per_s": harness}


# -- Mask R-CNN training ------------------------------------------------------------------------------------------

def _reference_kept(coco) -> list[int]:
    """The image ids the reference trains on (its coco_utils drops images without annotations): those with an
    annotation, crowd or not, and not every box at most 1 pixel wide or high."""
    return [i for i in sorted(coco.getImgIds())
            if any(a["bbox"][2] > 1 and a["bbox"][3] > 1 for a in coco.imgToAnns.get(i, []))]


def _polygon_masks(segmentations: list, height: int, width: int):
    """One (H, W) mask per object from its COCO polygons (all its parts merged)."""
    import torch
    from pycocotools import mask as mask_utils

    planes = []
    for polygons in segmentations:
        parts = mask_utils.decode(mask_utils.frPyObjects(polygons, height, width)).reshape(height, width, -1)
        planes.append(torch.from_numpy(parts).any(dim=2))
    return torch.stack(planes) if planes else torch.zeros((0, height, width), dtype=torch.uint8)


class _ReferenceCoco:
    """torchvision's references/detection training data path, re-implemented here (the references are not in the
    pip wheel): ``torchvision.datasets.CocoDetection`` (PIL image, annotation list), then the references'
    ConvertCocoPolysToMask (crowd annotations dropped; boxes xywh -> xyxy clamped to the image; int64 labels;
    polygon masks decoded with pycocotools, an object's parts merged; objects without width or height dropped;
    image_id, area and iscrowd kept), then the "hflip" train preset: RandomHorizontalFlip(0.5) on the PIL image,
    its boxes and masks, PILToTensor, float in 0..1."""

    def __init__(self, root: Path) -> None:
        import contextlib
        import io

        import torchvision

        from loadgen.data import annotation_file, image_folder

        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' progress lines
            self.coco = torchvision.datasets.CocoDetection(str(image_folder(root, "train")),
                                                           str(annotation_file(root, "train")))
        kept = set(_reference_kept(self.coco.coco))
        self.positions = [p for p, i in enumerate(self.coco.ids) if i in kept]

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int):
        import torch
        from torchvision.transforms import functional as F

        position = self.positions[i]
        image, anns = self.coco[position]
        width, height = image.size
        anns = [a for a in anns if a["iscrowd"] == 0]
        boxes = torch.as_tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes[:, 0::2].clamp_(min=0, max=width)
        boxes[:, 1::2].clamp_(min=0, max=height)
        masks = _polygon_masks([a["segmentation"] for a in anns], height, width)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        target = {"boxes": boxes[keep], "labels": torch.tensor([a["category_id"] for a in anns],
                                                               dtype=torch.int64)[keep],
                  "masks": masks[keep], "image_id": torch.tensor([self.coco.ids[position]]),
                  "area": torch.tensor([float(a["area"]) for a in anns]),
                  "iscrowd": torch.tensor([a["iscrowd"] for a in anns])}
        if torch.rand(1) < 0.5:
            image = F.hflip(image)
            target["boxes"][:, [0, 2]] = width - target["boxes"][:, [2, 0]]
            target["masks"] = target["masks"].flip(-1)
        return F.convert_image_dtype(F.pil_to_tensor(image), torch.float), target


def _reference_collate(batch):
    return tuple(zip(*batch, strict=True))


class _Meters:
    """The bookkeeping of the references' MetricLogger (utils.py) without its printing: per name a window of the
    last 20 values, a count and a total; tensors taken with ``.item()``."""

    def __init__(self) -> None:
        self.window = defaultdict(lambda: deque(maxlen=20))
        self.count, self.total = defaultdict(int), defaultdict(float)

    def update(self, **values) -> None:
        for name, value in values.items():
            value = value.item() if hasattr(value, "item") else value
            self.window[name].append(value)
            self.count[name] += 1
            self.total[name] += value


def _reference_step(model, optimizer, meters: _Meters, device):
    """One step of the references' ``train_one_epoch`` (engine.py), re-implemented: images and targets to the
    device, ``loss_dict = model(images, targets)``, the losses summed, the loss dict reduced over processes for
    logging (one process: the dict as is), ``loss_value = .item()`` of their sum with its isfinite check,
    zero_grad, backward, step, and the MetricLogger's update of the loss values and the learning rate. Its
    first-epoch warmup scheduler is left out: both sides share one optimizer at a fixed rate."""

    def step(batch) -> None:
        images, targets = batch
        images = [image.to(device) for image in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        loss_dict = model(images, targets)
        losses = sum(loss_dict.values())
        reduced = dict(loss_dict)  # utils.reduce_dict with one process
        losses_reduced = sum(reduced.values())
        loss_value = losses_reduced.item()
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"the reference's step: loss is {loss_value} ({reduced})")
        optimizer.zero_grad()
        losses.backward()
        optimizer.step()
        meters.update(loss=losses_reduced, **reduced)
        meters.update(lr=optimizer.param_groups[0]["lr"])

    return step


@measures(
    # train.py feeds the CPU step from the training process (no worker processes, no decoded-image cache): that
    # must be at least as fast as torchvision's own detection recipe with its DataLoader workers, otherwise
    # train.py should take that recipe.
    maskrcnn_train_over_torchvision_ref=at_least(1.0),
    maskrcnn_train_samples_per_s=INFORMATIONAL,  # the two sides of the ratio
    maskrcnn_train_torchvision_ref_samples_per_s=INFORMATIONAL,
)
def maskrcnn_train_over_torchvision_ref(work: Path, args) -> dict[str, float]:
    import torch

    from loadgen.training.distributed import World
    from object_detection import mini, train

    torch.set_num_threads(args.threads)
    root = mini.build(work / "coco-mini", train_images=TRAIN_IMAGES, val_images=2, progress=False)
    # Ours: the workload as train.py's driver sets it up (--config mini at the smaller sizes, --workers 0).
    cfg = dataclasses.replace(train.CONFIGS["mini"], min_size=MASKRCNN_MIN, max_size=MASKRCNN_MAX,
                              batch_size=TRAIN_BATCH)
    flags = argparse.Namespace(data_dir=str(root), backbone_weights=None, eval_images=1, workers=0)
    workload = train.ObjectDetection(flags, cfg, World(), torch.device("cpu"))
    torch.manual_seed(0)
    workload.setup(seed=0)
    model, optimizer = workload.model.train(), workload.optimizer
    # The reference's loader: a random sampler, batches of TRAIN_BATCH with the last short one dropped (its train.py
    # without aspect-ratio grouping), a worker process a thread (its train.py's -j defaults to 4), tuple(zip(*)).
    reference = torch.utils.data.DataLoader(_ReferenceCoco(root), TRAIN_BATCH, shuffle=True, drop_last=True,
                                            num_workers=args.threads, collate_fn=_reference_collate)
    reference_step = _reference_step(model, optimizer, _Meters(), torch.device("cpu"))
    steps, loss_sum = [0], torch.zeros(())

    def ours_step(batch) -> None:  # the driver's step (loadgen.training.driver); its rate holds for both sides
        for group in optimizer.param_groups:
            group["lr"] = workload.learning_rate(steps[0])
        optimizer.zero_grad(set_to_none=True)
        loss = workload.loss(model, batch)
        loss.backward()
        optimizer.step()
        loss_sum.add_(loss.detach())
        steps[0] += 1

    # Two untimed steps before the first round, so that the model's first steps (allocations, the randomly
    # initialised RPN's first proposals) fall on neither side.
    for batch in itertools.islice(workload.train_batches(TRAIN_ROUNDS), 2):
        ours_step(batch)
    ours_s, reference_s = alternate(
        TRAIN_ROUNDS, lambda r: timed_steps(workload.train_batches(r), ours_step, TRAIN_STEPS, UNTIMED),
        lambda r: timed_steps(reference, reference_step, TRAIN_STEPS, UNTIMED))
    if not math.isfinite(loss_sum.item()):
        raise FloatingPointError(f"train.py's step: the summed loss is {loss_sum.item()}")
    samples = TRAIN_ROUNDS * TRAIN_STEPS * TRAIN_BATCH
    return {"maskrcnn_train_over_torchvision_ref": reference_s / ours_s,
            "maskrcnn_train_samples_per_s": samples / ours_s,
            "maskrcnn_train_torchvision_ref_samples_per_s": samples / reference_s}


FIGURES = [retinanet_offline_harness_over_raw, maskrcnn_train_over_torchvision_ref]
