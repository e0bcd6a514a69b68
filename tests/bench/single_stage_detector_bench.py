"""single_stage_detector figures for ``make bench``, each measured side by side in one run; targets in each
``@measures``.

- ssd_offline_harness_over_raw  samples/s of an Offline run under LoadGen with onnxruntime (SSD-ResNet34 at
                                300x300) / the same model in a raw loop doing what the harness does for a batch
                                and nothing else: normalise the loaded images, ``InferenceSession.run``, the one
                                post-processing (``boxes.postprocess``: decoding, NMS) any SSD runner needs; same
                                batch and threads. Forty rounds of three batches a side, the two sides back to
                                back (each first in every other round); each side's samples over its total time.
                                The weights are random but made to detect a few hundred boxes an image (the
                                tests' ``lively``), so NMS has real work.
- ssd_train_over_plain_loop     training samples/s of train.py's data path (``TrainSet``: the reference's crop,
                                flip, jitter, box matching and encoding in the training process, as train.py runs
                                on CPU) / a plain loop: torchvision's ``CocoDetection`` with torchvision's own
                                v2 transforms for the same augmentation (``RandomIoUCrop``, flip, resize, colour
                                jitter) and the same box encoding, in ``DataLoader`` worker processes (one a
                                thread), and the standard step. Same model (SSD-ResNet34 at 300), batch, loss,
                                optimizer and torch threads; no decoded image is kept on either side. Six rounds,
                                the two sides back to back (each first in every other round), 6 timed steps a
                                side after 2 untimed; each side's samples over its total time.
No figure here re-implements the reference's code: the baselines are onnxruntime itself, and torchvision.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import numpy as np

from loadgen.backends import BackendConfig, create_backend
from loadgen.data import annotation_file, category_to_label, image_folder
from tests.bench.sides import alternate, offline_harness_and_raw, timed_steps
from tests.bench.targets import INFORMATIONAL, at_least, measures

# This shared machine's speed drifts by 10-30 % from one stretch of seconds to the next (SSD-ResNet34's forward
# pass on a batch of 8 took 0.70 to 0.94 s on 2 cores, in runs of fast and slow batches): many short phases, each
# side's right after the other's, so that both see the same stretches, and each side's total time over all.
ROUNDS, PHASE_BATCHES = 40, 3
TRAIN_BATCH, TRAIN_STEPS, TRAIN_ROUNDS = 8, 6, 6


def _lively_resnet34(root: Path):
    import torch

    from single_stage_detector import models
    from tests.single_stage_detector.conftest import lively

    torch.manual_seed(0)
    return lively(models.build("ssd-resnet34", 300), root)


@measures(
    # As offline_harness_over_raw_ort (loadgen_bench): the harness may cost at most 2 % of the raw loop; its extra
    # work here (normalising each batch from the loaded uint8 images, copying the responses) is small beside
    # SSD-ResNet34's forward pass.
    ssd_offline_harness_over_raw=at_least(0.98),
    ssd_offline_raw_samples_per_s=INFORMATIONAL,  # the two sides of the ratio
    ssd_offline_harness_samples_per_s=INFORMATIONAL,
)
def ssd_offline_harness_over_raw(work: Path, args) -> dict[str, float]:
    from single_stage_detector import export, infer, mini

    root = mini.ensure()
    model = _lively_resnet34(root).eval()
    onnx = work / "ssd-resnet34.onnx"
    export.export_onnx(model, 300, {"onnxruntime": onnx})
    backend = create_backend("onnxruntime", BackendConfig(threads=args.threads)).load(str(onnx))
    task = infer.make_task(argparse.Namespace(dataset_path=str(root), model_name="ssd-resnet34", image_size=300,
                                              preset="imagenet", data_format="NCHW", count=None,
                                              remove_empty=False))
    harness, raw = offline_harness_and_raw(task, backend, "ssd-resnet34", work, args.batch, ROUNDS, PHASE_BATCHES)
    return {"ssd_offline_harness_over_raw": harness / raw, "ssd_offline_raw_samples_per_s": raw,
            "ssd_offline_harness_samples_per_s": harness}


class _PlainSample:
    """The plain side's per-sample transform: torchvision v2's SSD augmentation on a CocoDetection sample, then
    the same normalisation and box encoding as ours (the loss needs targets per default box)."""

    def __init__(self, default_boxes, preset) -> None:
        import torch
        from torchvision.transforms import v2

        from single_stage_detector.data.training import FLIP_P, IMAGE_SIZE, JITTER

        self.default_boxes, self.preset = torch.as_tensor(default_boxes), preset
        self.augment = v2.Compose([
            v2.RandomIoUCrop(), v2.RandomHorizontalFlip(FLIP_P), v2.Resize((IMAGE_SIZE, IMAGE_SIZE)),
            v2.ColorJitter(**JITTER), v2.SanitizeBoundingBoxes()])

    def __call__(self, image, target):
        import torch

        from single_stage_detector import boxes as box_ops

        image, target = self.augment(image, target)
        size = torch.tensor([image.width, image.height] * 2, dtype=torch.float32)
        boxes = target["boxes"].float() / size  # xyxy in 0..1
        labels = torch.as_tensor(category_to_label(target["labels"].numpy()), dtype=torch.int64)
        boxes, labels = box_ops.match(boxes, labels, self.default_boxes)
        pixels = self.preset.normalize(np.asarray(image)[None])[0]
        return torch.from_numpy(pixels), box_ops.encode(boxes, self.default_boxes), labels


class _Transformed:
    """A map-style dataset: ``transform(*dataset[i])``."""

    def __init__(self, dataset, transform) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return self.transform(*self.dataset[i])


@measures(
    # train.py feeds the CPU step from the training process (no worker processes): that must be at least as fast
    # as torchvision's own data path with DataLoader workers, otherwise train.py should use workers.
    ssd_train_over_plain_loop=at_least(1.0),
    ssd_train_samples_per_s=INFORMATIONAL,  # the two sides of the ratio
    ssd_train_plain_samples_per_s=INFORMATIONAL,
)
def ssd_train_over_plain_loop(work: Path, args) -> dict[str, float]:
    import torch
    import torchvision

    from single_stage_detector import mini, models
    from single_stage_detector.data import training as data
    from single_stage_detector.data.presets import eval_preset
    from single_stage_detector.train import multibox_loss

    torch.set_num_threads(args.threads)
    root = mini.ensure()
    torch.manual_seed(0)
    model = models.build("ssd-resnet34", 300)
    defaults = model.default_boxes.numpy()
    preset = eval_preset("ssd-resnet34", data.IMAGE_SIZE)
    ours = torch.utils.data.DataLoader(
        data.TrainSet(data.CocoImages(root, "train", category_to_label), defaults, data.TrainAugment()),
        TRAIN_BATCH, shuffle=True, drop_last=True, num_workers=0, collate_fn=data.TrainCollate(preset))
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' progress lines
        coco = torchvision.datasets.CocoDetection(str(image_folder(root, "train")),
                                                  str(annotation_file(root, "train")))
    coco.ids = [i for i in coco.ids if coco.coco.imgToAnns[i]]  # the annotated images, as ours keeps
    coco = torchvision.datasets.wrap_dataset_for_transforms_v2(coco, target_keys=("boxes", "labels"))
    plain = torch.utils.data.DataLoader(_Transformed(coco, _PlainSample(defaults, preset)), TRAIN_BATCH,
                                        shuffle=True, drop_last=True, num_workers=args.threads)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    model.train()

    def step(batch) -> None:
        images, locs, labels = batch
        loss = multibox_loss(*model(images), locs, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    ours_s, plain_s = alternate(TRAIN_ROUNDS, lambda r: timed_steps(ours, step, TRAIN_STEPS),
                                lambda r: timed_steps(plain, step, TRAIN_STEPS))
    samples = TRAIN_ROUNDS * TRAIN_STEPS * TRAIN_BATCH
    return {"ssd_train_over_plain_loop": plain_s / ours_s, "ssd_train_samples_per_s": samples / ours_s,
            "ssd_train_plain_samples_per_s": samples / plain_s}


FIGURES = [ssd_offline_harness_over_raw, ssd_train_over_plain_loop]
