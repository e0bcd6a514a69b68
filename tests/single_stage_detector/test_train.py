"""single_stage_detector.train and data.training: a training step, short runs whose logs pass the MLPerf checker
(open, and a closed excerpt with every closed key), the augmentation on a crafted image, the loss, the schedule."""

from __future__ import annotations

import json
import subprocess
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from loadgen.data import category_to_label
from loadgen.training.workload import Every
from single_stage_detector import export, mini, train
from single_stage_detector.data import training as data
from single_stage_detector.data.presets import eval_preset
from single_stage_detector.models import build
from tests import mllog_logs
from tests.mllog_logs import mllog_events

RULESET = "1.0.0"


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory) -> Path:
    return mini.build(tmp_path_factory.mktemp("ssd") / "mini", train_images=8, val_images=4, progress=False)


def run_train(tmp_path, root, *extra) -> int:
    args = train.get_args_parser().parse_args(["--data-dir", str(root), "--output", str(tmp_path), "--quiet",
                                               "--threads", "2", *extra])
    return train.main(args)


def checker(log: Path) -> subprocess.CompletedProcess:
    return mllog_logs.checker(log, RULESET)


# --- the training step and short runs ----------------------------------------------------------------------------

def test_one_training_step_lowers_nothing_to_nan_and_moves_the_weights(mini_root):
    images = data.CocoImages(mini_root, "train", category_to_label)
    model = build("ssd-resnet34")
    dataset = data.TrainSet(images, model.default_boxes.numpy(), data.TrainAugment())
    x, loc_t, labels = data.TrainCollate(eval_preset("ssd-resnet34", 300))([dataset[(i, 0, 1)] for i in range(2)])
    assert x.shape == (2, 3, 300, 300) and loc_t.shape == (2, 8732, 4) and labels.shape == (2, 8732)
    assert (labels > 0).any() and int(labels.max()) <= 80
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    before = model.conf[0].weight.detach().clone()
    model.train()
    loss = train.multibox_loss(*model(x), loc_t, labels)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and loss.item() > 0
    assert not torch.equal(before, model.conf[0].weight)


def test_short_mini_run_log_passes_the_checker(tmp_path, mini_root, capsys):
    # Two steps, evaluation on three val images, a DataLoader worker: the whole driver path of the open config.
    assert run_train(tmp_path, mini_root, "--config", "mini", "--batch-size", "2", "--max-steps", "2",
                     "--eval-images", "3", "--workers", "1") == 0
    log = tmp_path / "mlperf_train_log.txt"
    proc = checker(log)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    events = {e["key"]: e for e in mllog_events(log)}
    assert events["submission_division"]["value"] == "open" and events["submission_benchmark"]["value"] == "ssd"
    assert 0.0 <= events["eval_accuracy"]["value"] < 1.0
    assert events["eval_samples"]["value"] == 3 and events["max_samples"]["value"] == 1
    result = json.loads((tmp_path / "train_result.json").read_text())
    assert result["steps"] == 2 and result["benchmark"] == "ssd-resnet34" and "mAP" in result["metrics"]
    model, meta = export.load_checkpoint(tmp_path, 300)
    assert meta["model"] == "ssd-resnet34" and model.num_classes == 81
    assert "RESULT,ssd-resnet34,1," in capsys.readouterr().out


@pytest.mark.slow
def test_demo_recipe_trains_to_its_target_and_the_log_passes_the_checker(tmp_path, capsys):
    # The demo's recipe on the whole mini set, as make demo runs it: it must stop because the mAP reached the
    # target, not because the epochs ran out, and say so in train_result.json, the RESULT line and the log.
    cfg = train.CONFIGS["ssd-mobilenet"]
    assert run_train(tmp_path, mini.ensure(), "--config", "ssd-mobilenet") == 0
    result = json.loads((tmp_path / "train_result.json").read_text())
    assert result["reached_target"] and result["metrics"]["mAP"] >= cfg.target and result["epochs"] < cfg.epochs
    assert capsys.readouterr().out.count("RESULT,ssd-mobilenet,1,") == 1
    log = tmp_path / "mlperf_train_log.txt"
    assert '"status": "success"' in log.read_text()
    proc = checker(log)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def closed_excerpt(real_log: Path, out: Path, accuracy: float = 0.2315, **change) -> Path:
    """The closed run's own lines up to run_start, then an evaluation at epoch 40 (the rule's first) written
    here: a one-step run cannot reach mAP 0.23, and the checker wants it."""
    return mllog_logs.closed_excerpt(real_log, out, accuracy, 40, **change)


def test_closed_config_logs_every_closed_key(tmp_path, mini_root, monkeypatch):
    # The reference config for one step on the mini set, its backbone loaded through --backbone-weights (random
    # ResNet-34 weights stand in for the ImageNet file, whose checksum a test cannot meet).
    import torchvision

    loaded = []

    def fake_weights(path):
        loaded.append(path)
        return torchvision.models.resnet34(weights=None).state_dict()

    monkeypatch.setattr(train, "load_backbone_weights", fake_weights)
    assert run_train(tmp_path, mini_root, "--config", "reference", "--batch-size", "2", "--max-steps", "1",
                     "--eval-images", "2", "--backbone-weights", "resnet34-333f7ec4.pth") == 0
    assert loaded == ["resnet34-333f7ec4.pth"]
    log = tmp_path / "mlperf_train_log.txt"
    events = {e["key"]: e["value"] for e in mllog_events(log)}
    assert events["submission_division"] == "closed"
    assert events["global_batch_size"] == 2 and events["model_bn_span"] == 2
    assert events["opt_base_learning_rate"] == pytest.approx(2.5e-3 * 2 / 32)
    assert events["opt_weight_decay"] == 5e-4 and events["opt_learning_rate_warmup_factor"] == 0
    assert events["opt_learning_rate_warmup_steps"] >= 1 and events["max_samples"] == 1
    assert events["opt_learning_rate_decay_boundary_epochs"] == [40, 50]
    assert events["gradient_accumulation_steps"] == 1 and isinstance(events["seed"], int)

    good = checker(closed_excerpt(log, tmp_path / "closed.txt"))
    assert good.returncode == 0 and "SUCCESS" in good.stdout + good.stderr, good.stdout + good.stderr
    # The checker really reads those keys: a value the rules forbid, or a mAP short of 0.23, fails it.
    for bad in (closed_excerpt(log, tmp_path / "samples.txt", max_samples=2),
                closed_excerpt(log, tmp_path / "bn.txt", model_bn_span=0),
                closed_excerpt(log, tmp_path / "low.txt", accuracy=0.2)):
        assert checker(bad).returncode != 0, bad.name


def test_reference_without_backbone_weights_is_a_usage_error(tmp_path, capsys):
    args = train.get_args_parser().parse_args(["--config", "reference", "--output", str(tmp_path)])
    assert train.main(args) == 2
    assert "--backbone-weights" in capsys.readouterr().err


# --- the data --------------------------------------------------------------------------------------------------

def write_coco(root: Path, images: dict[int, list[tuple[list[float], int]]], size=(64, 48)) -> Path:
    """A COCO train split: image id -> [(bbox xywh, category id)], each a size[0] x size[1] JPEG."""
    (root / "train2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    entries, anns = [], []
    for image_id, objects in images.items():
        name = f"{image_id:012d}.jpg"
        Image.new("RGB", size, (90, 90, 90)).save(root / "train2017" / name)
        entries.append({"id": image_id, "file_name": name, "width": size[0], "height": size[1]})
        for bbox, category in objects:
            anns.append({"id": len(anns) + 1, "image_id": image_id, "bbox": bbox, "category_id": category,
                         "area": bbox[2] * bbox[3], "iscrowd": 0})
    categories = [{"id": c, "name": str(c)} for c in (1, 3, 44)]
    (root / "annotations" / "instances_train2017.json").write_text(
        json.dumps({"images": entries, "annotations": anns, "categories": categories}))
    return root


def test_images_without_annotations_are_dropped(tmp_path):
    root = write_coco(tmp_path, {1: [([4, 4, 20, 10], 1)], 2: [], 3: [([0, 0, 64, 48], 44), ([10, 5, 0, 9], 3)]})
    images = data.CocoImages(root, "train", category_to_label)
    assert images.ids == [1, 3]
    boxes, labels = images.targets[3]  # the zero-width box is left out, the other kept, in 0..1
    np.testing.assert_allclose(boxes, [[0, 0, 1, 1]])
    assert labels.tolist() == [category_to_label(44)]
    sample = images.load(0)
    assert sample.image.shape == (48, 64, 3) and sample.image_id == 1
    np.testing.assert_allclose(sample.boxes, [[4 / 64, 4 / 48, 24 / 64, 14 / 48]], rtol=1e-6)


COLOURS = {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255)}


def crafted_sample() -> data.Sample:
    """A grey 160x120 image with three pure-colour rectangles, label i coloured COLOURS[i]."""
    image = np.full((120, 160, 3), 128, dtype=np.uint8)
    rects = {1: (10, 10, 60, 50), 2: (80, 20, 150, 70), 3: (30, 70, 110, 115)}  # left, top, right, bottom (pixels)
    for label, (x0, y0, x1, y1) in rects.items():
        image[y0:y1, x0:x1] = COLOURS[label]
    boxes = np.array(list(rects.values()), dtype=np.float32) / [160, 120, 160, 120]
    return data.Sample(image, boxes.astype(np.float32), np.array(list(rects), dtype=np.int64), 7, (120, 160))


def colour_at_centres(sample: data.Sample) -> list[int]:
    h, w = sample.image.shape[:2]
    out = []
    for box in sample.boxes:
        x, y = int((box[0] + box[2]) / 2 * w), int((box[1] + box[3]) / 2 * h)
        out.append(int(np.argmax(sample.image[y, x])) + 1)  # red -> 1, green -> 2, blue -> 3
    return out


def test_crop_and_flip_keep_boxes_inside_and_labels_on_their_objects():
    seen_crops = seen_flips = 0
    for i in range(200):
        rng = data.sample_rng(1, 0, i)
        s = crafted_sample()
        s = data.random_crop(s, rng, max_samples=1 + 49 * (i % 2))
        seen_crops += s.image.shape != (120, 160, 3)
        if rng.random() < 0.5:
            s, seen_flips = data.hflip(s), seen_flips + 1
        assert len(s.boxes) == len(s.labels) >= 1
        assert np.all(s.boxes >= 0) and np.all(s.boxes <= 1)
        assert np.all(s.boxes[:, 2] > s.boxes[:, 0]) and np.all(s.boxes[:, 3] > s.boxes[:, 1])
        # Each box still sits on its own object: the pixel at its centre has its label's colour.
        assert colour_at_centres(s) == s.labels.tolist(), i
        resized = data.Sample(np.asarray(data.resize(s.image, 300)), s.boxes, s.labels, 7, (120, 160))
        assert colour_at_centres(resized) == s.labels.tolist(), i
    assert 100 < seen_crops < 200 and seen_flips > 50  # 6 of the 7 modes crop


def test_train_augment_is_keyed_by_seed_epoch_and_index():
    augment = data.TrainAugment()
    a = augment(crafted_sample(), data.sample_rng(1, 2, 3))
    b = augment(crafted_sample(), data.sample_rng(1, 2, 3))
    assert a.image.shape == (300, 300, 3) and a.image.dtype == np.uint8
    assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)
    others = [augment(crafted_sample(), data.sample_rng(1, epoch, 3)) for epoch in range(3, 8)]
    assert any(not np.array_equal(a.image, o.image) for o in others)
    for s in [a, *others]:
        assert np.all((s.boxes >= 0) & (s.boxes <= 1)) and len(s.boxes) == len(s.labels)


@pytest.mark.parametrize("model, first_pixel", [("ssd-resnet34", -np.array([0.485, 0.456, 0.406]) /
                                                 np.array([0.229, 0.224, 0.225])),
                                                ("ssd-mobilenet", -np.ones(3))])
def test_evaluation_uses_the_inference_preset(model, first_pixel):
    """Training-time evaluation sees the QSL's pixels: the model's own normalisation (ImageNet's for
    SSD-ResNet34, [-1, 1] for SSD-MobileNet), from the one preset."""
    preset = eval_preset(model, data.IMAGE_SIZE)
    black = data.Sample(np.zeros((50, 80, 3), np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, np.int64), 7,
                        (50, 80))
    images = types.SimpleNamespace(load=lambda index: black)  # CocoImages' one method EvalSet reads
    item = data.EvalSet(images, preset)[0]
    x, ids, sizes = data.EvalCollate(preset)([item])
    assert x.shape == (1, 3, 300, 300) and x.dtype == torch.float32 and ids == [7] and sizes == [(50, 80)]
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), first_pixel, rtol=1e-6)
    np.testing.assert_array_equal(x.numpy(), preset.normalize(preset.geometry(Image.new("RGB", (80, 50)))[None]))


# --- loss, schedule, cadence -----------------------------------------------------------------------------------

def test_loss_is_smooth_l1_on_matches_plus_hard_negative_cross_entropy():
    # One image, 8 default boxes, 3 classes: box 0 matched (label 2), the rest background.
    torch.manual_seed(0)
    scores = torch.randn(1, 3, 8)
    locs = torch.randn(1, 4, 8)
    targets = torch.randn(1, 8, 4)
    labels = torch.zeros(1, 8, dtype=torch.long)
    labels[0, 0] = 2
    ce = torch.nn.functional.cross_entropy(scores, labels, reduction="none")[0]
    hardest = ce[1:].sort(descending=True).values[:3]  # 3 negatives per match
    box = torch.nn.functional.smooth_l1_loss(locs[0, :, 0], targets[0, 0], reduction="sum")
    expected = box + ce[0] + hardest.sum()
    assert train.multibox_loss(locs, scores, targets, labels).item() == pytest.approx(expected.item(), rel=1e-5)
    # An image with no match adds nothing but still counts in the batch mean.
    two = train.multibox_loss(torch.cat([locs, locs]), torch.cat([scores, scores]), torch.cat([targets, targets]),
                              torch.cat([labels, torch.zeros_like(labels)]))
    assert two.item() == pytest.approx(expected.item() / 2, rel=1e-5)


def test_schedule_warms_up_scales_with_the_batch_and_decays_at_the_boundaries():
    cfg = train.CONFIGS["reference"]
    assert cfg.base_lr() == pytest.approx(2.5e-3) and cfg.boundaries() == [40, 50]
    big = type(cfg)(**{**cfg.__dict__, "batch_size": 1024})
    assert big.base_lr() == pytest.approx(0.08)
    steps = 10
    lr = [train.learning_rate(s, steps, cfg, warmup_steps=5) for s in range(600)]
    assert lr[:5] == pytest.approx([5e-4, 1e-3, 1.5e-3, 2e-3, 2.5e-3])
    assert lr[399] == pytest.approx(2.5e-3) and lr[400] == pytest.approx(2.5e-4) and lr[500] == pytest.approx(2.5e-5)
    assert type(cfg)(**{**cfg.__dict__, "decay_k": 1}).boundaries() == [44, 55]


def test_evaluation_cadence_from_epoch_40_then_every_5():
    every = Every(epochs=5, first=40)
    assert [every.block_after(e) for e in (0, 39, 40, 45, 47)] == [40, 1, 5, 5, 3]
    assert [Every(epochs=4).block_after(e) for e in (0, 4, 6)] == [4, 4, 2]
    with pytest.raises(ValueError):
        Every(steps=10, first=3)


def test_coco_map_scores_detections_in_pixels_with_category_ids(tmp_path):
    from loadgen.data import load_annotations

    root = write_coco(tmp_path, {5: [([8, 6, 20, 12], 1)], 6: [([30, 20, 10, 10], 44)], 7: []})
    coco = load_annotations(root / "annotations" / "instances_train2017.json")
    rows = np.array([[5, 8, 6, 20, 12, 0.9, 1], [6, 30, 20, 10, 10, 0.8, 44]], dtype=np.float64)
    assert train.coco_map(coco, rows, [5, 6]) == pytest.approx(1.0)
    assert train.coco_map(coco, np.zeros((0, 7)), [5, 6]) == 0.0
    # Only the images evaluated count: image 6 left out, its missing detection costs nothing.
    assert train.coco_map(coco, rows[:1], [5]) == pytest.approx(1.0)
    assert train.coco_map(coco, rows[:1], [5, 6]) == pytest.approx(0.5)
    wrong_class = rows.copy()
    wrong_class[:, 6] = 3
    assert train.coco_map(coco, wrong_class, [5, 6]) == 0.0


def test_sharded_evaluation_merges_to_the_unsharded_one(tmp_path, mini_root):
    # Two ranks' shards of the val set, merged as rank 0 does, give the same detections and mAP as one rank.
    from loadgen.training import driver
    from loadgen.training.distributed import World
    from loadgen.training.workload import Shard

    args = train.get_args_parser().parse_args(["--config", "ssd-mobilenet", "--data-dir", str(mini_root),
                                               "--output", str(tmp_path), "--eval-images", "4", "--batch-size", "4"])
    cfg = train.SingleStageDetector.configure(args, driver.common_overrides(train.CONFIGS["ssd-mobilenet"], args))
    workload = train.SingleStageDetector(args, cfg, World(), torch.device("cpu"))
    torch.manual_seed(0)
    workload.setup(seed=1)
    model = workload.model.eval()
    for head in model.conf:  # untrained features are ~0: class scores from spread biases pass the 0.05 cut
        torch.nn.init.normal_(head.bias, std=3.0)
    with torch.inference_mode():
        parts = [workload.evaluate(model, Shard(i, 2)) for i in range(2)]
        whole = workload.evaluate(model, Shard())
    assert sorted(parts[0][0] + parts[1][0]) == sorted(whole[0]) and len(whole[0]) == 4
    assert not set(parts[0][0]) & set(parts[1][0])
    merged = np.concatenate([p[1] for p in parts])
    assert np.array_equal(merged[np.lexsort(merged.T[::-1])], whole[1][np.lexsort(whole[1].T[::-1])])
    assert workload.merge(parts) == workload.merge([whole])
    # SSD-MobileNet-v1's labels are the COCO category ids themselves.
    assert len(whole[1]) > 10 and set(np.unique(whole[1][:, 6])) <= set(range(1, 91))
