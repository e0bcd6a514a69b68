"""object_detection.train and data.training: a short mini run whose log passes the MLPerf checker (open), a closed
excerpt with every closed key in the order the rules need, the schedule, evaluation scoring the ground truth at 1.0,
and the dataset as the reference reads COCO (no crowd regions, flips that keep boxes on their masks)."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch
from torchvision.models import resnet

from loadgen.training.workload import Shard
from object_detection import mini, train
from object_detection.data.training import CocoInstances
from tests import mllog_logs
from tests.mllog_logs import mllog_events

RULESET = "3.1.0"


def run_train(tmp_path, root, *extra) -> int:
    args = train.get_args_parser().parse_args(["--data-dir", str(root), "--output", str(tmp_path), "--quiet",
                                               "--threads", "2", *extra])
    return train.main(args)


def test_short_mini_run_log_passes_the_checker(tmp_path, mini_root):
    assert run_train(tmp_path, mini_root, "--max-steps", "2", "--eval-images", "2") == 0
    log = tmp_path / "mlperf_train_log.txt"
    events = mllog_events(log)
    accuracy = [e["value"] for e in events if e["key"] == "eval_accuracy"]
    assert accuracy and set(accuracy[0]) == {"BBOX", "SEGM"}  # the rule's dict: a float would crash the checker
    assert next(e["value"] for e in events if e["key"] == "submission_division") == "open"
    # The mini config's own proposal count, logged as what it is.
    candidates = next(e["value"] for e in events if e["key"] == "num_image_candidates")
    assert candidates == train.CONFIGS["mini"].image_candidates == 500
    result = mllog_logs.checker(log, RULESET)
    assert result.returncode == 0 and "SUCCESS" in result.stdout + result.stderr, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.timeout(1200)  # about 4 min alone on 2 cores; pytest's 300 s default is missed beside another job
def test_demo_recipe_trains_to_its_target_and_the_log_passes_the_checker(tmp_path, capsys):
    # The mini recipe on the whole mini set, as make demo runs it (about 4 min on 2 cores): it must stop because
    # both mAPs reached their targets, not because the epochs ran out, and say so in train_result.json and the log.
    cfg = train.CONFIGS["mini"]
    assert run_train(tmp_path, mini.ensure()) == 0
    result = json.loads((tmp_path / "train_result.json").read_text())
    assert result["reached_target"] and result["epochs"] < cfg.epochs
    assert result["metrics"]["BBOX"] >= cfg.box_target and result["metrics"]["SEGM"] >= cfg.mask_target
    assert capsys.readouterr().out.count("RESULT,maskrcnn,1,") == 1
    log = tmp_path / "mlperf_train_log.txt"
    assert '"status": "success"' in log.read_text()
    proc = mllog_logs.checker(log, RULESET)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_closed_config_logs_every_closed_key_in_order(tmp_path, mini_root, monkeypatch):
    # The reference config for one step on the mini set, its backbone through --backbone-weights (random ResNet-50
    # weights stand in for the ImageNet file, whose checksum a test cannot meet).
    loaded = []

    def fake_weights(path):
        loaded.append(path)
        return resnet.resnet50(weights=None).state_dict()

    monkeypatch.setattr(train, "load_backbone_weights", fake_weights)
    assert run_train(tmp_path, mini_root, "--config", "reference", "--batch-size", "2", "--max-steps", "1",
                     "--eval-images", "1", "--backbone-weights", "resnet50-0676ba61.pth") == 0
    assert loaded == ["resnet50-0676ba61.pth"]
    log = tmp_path / "mlperf_train_log.txt"
    keys = [e["key"] for e in mllog_events(log)]
    events = {e["key"]: e["value"] for e in mllog_events(log)}
    assert events["submission_division"] == "closed" and events["submission_benchmark"] == "maskrcnn"
    # The checker reads global_batch_size when it checks the rate: it must come first.
    assert keys.index("global_batch_size") < keys.index("opt_base_learning_rate")
    assert events["opt_base_learning_rate"] == pytest.approx(0.02 * 2 / 16)
    assert events["opt_learning_rate_warmup_steps"] == 500
    assert events["opt_learning_rate_warmup_factor"] == pytest.approx(1 / 3)
    assert events["num_image_candidates"] == 2000 and events["opt_learning_rate_decay_factor"] == 0.1
    assert events["opt_learning_rate_decay_steps"] == [480_000, 640_000]  # (60000, 80000) x 16 / 2
    assert (events["min_image_size"], events["max_image_size"]) == (800, 1333)
    assert events["gradient_accumulation_steps"] == 1 and isinstance(events["seed"], int)

    reached = {"BBOX": 0.378, "SEGM": 0.340}
    good = mllog_logs.checker(mllog_logs.closed_excerpt(log, tmp_path / "closed.txt", reached, 1), RULESET)
    assert good.returncode == 0 and "SUCCESS" in good.stdout + good.stderr, good.stdout + good.stderr
    # The checker really reads those keys: a value the rules forbid, or a mAP short of a target, fails it.
    for name, accuracy, change in (("candidates", reached, {"num_image_candidates": 1500}),
                                   ("decay", reached, {"opt_learning_rate_decay_factor": 0.2}),
                                   ("lr", reached, {"opt_base_learning_rate": 0.003}),
                                   ("segm", {"BBOX": 0.378, "SEGM": 0.3}, {})):
        bad = mllog_logs.closed_excerpt(log, tmp_path / f"{name}.txt", accuracy, 1, **change)
        assert mllog_logs.checker(bad, RULESET).returncode != 0, name


def test_reference_without_backbone_weights_is_a_usage_error(tmp_path, capsys):
    args = train.get_args_parser().parse_args(["--config", "reference", "--output", str(tmp_path)])
    assert train.main(args) == 2
    assert "--backbone-weights" in capsys.readouterr().err


def test_schedule_warms_up_from_a_third_and_decays_at_the_scaled_steps():
    cfg = train.CONFIGS["reference"]
    assert train.learning_rate(0, cfg) == pytest.approx(0.02 / 3)
    assert train.learning_rate(250, cfg) == pytest.approx(0.02 * (1 / 3 * 0.5 + 0.5))
    assert train.learning_rate(500, cfg) == pytest.approx(0.02)
    assert train.learning_rate(59_999, cfg) == pytest.approx(0.02)
    assert train.learning_rate(60_000, cfg) == pytest.approx(0.002)
    assert train.learning_rate(80_000, cfg) == pytest.approx(0.0002)
    import dataclasses

    eight = dataclasses.replace(cfg, batch_size=128)  # 8 x 16: 8 x the rate, the steps an eighth
    assert eight.base_lr() == pytest.approx(0.16) and eight.decay_steps() == [7_500, 10_000]


def test_evaluating_the_ground_truth_scores_1(tmp_path, mini_root):
    args = train.get_args_parser().parse_args(["--data-dir", str(mini_root), "--output", str(tmp_path)])
    cfg = train.ObjectDetection.configure(args, train.CONFIGS["mini"])
    workload = train.ObjectDetection(args, cfg, types.SimpleNamespace(rank=0, world_size=1, is_main=True,
                                                                       local_batch=lambda b: b),
                                     torch.device("cpu"))
    workload.val_set = CocoInstances(mini_root, "val", train=False)

    def oracle(images):  # answers each image with its own ground truth, in the model's output format
        (image,) = images
        target = next(t for im, t in (workload.val_set[i] for i in range(len(workload.val_set)))
                      if im.shape == image.shape and torch.equal(im, image))
        n = len(target["labels"])
        return [{"boxes": target["boxes"], "labels": target["labels"], "scores": torch.ones(n),
                 "masks": target["masks"][:, None].float()}]

    parts = [workload.evaluate(oracle, Shard(r, 2)) for r in range(2)]  # two ranks' shares, merged
    metrics = workload.merge(parts)
    assert metrics["BBOX"] == pytest.approx(1.0) and metrics["SEGM"] == pytest.approx(1.0)


def test_the_dataset_reads_coco_as_the_reference_does(mini_root):
    train_set = CocoInstances(mini_root, "train", train=True)
    val_set = CocoInstances(mini_root, "val", train=False)
    coco = train_set.coco
    crowd = {a["image_id"] for a in coco.dataset["annotations"] if a["iscrowd"]}
    assert crowd, "the mini set has crowd regions"
    for index, image_id in enumerate(train_set.ids):
        _, target = train_set[index]
        assert len(target["labels"]) == sum(not a["iscrowd"] for a in coco.imgToAnns[image_id]) > 0
    assert len(val_set) == len(val_set.coco.getImgIds())  # evaluation keeps every image
    # A flip mirrors the image, its masks and its boxes together: each box still bounds its mask.
    unflipped = CocoInstances(mini_root, "train", train=False)
    plain, _ = unflipped[unflipped.ids.index(train_set.ids[0])]
    flips = 0
    for epoch in range(8):
        image, target = train_set[(0, epoch, 1)]
        for box, mask in zip(target["boxes"], target["masks"], strict=True):
            ys, xs = np.nonzero(mask.numpy())
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == pytest.approx(box.tolist(), abs=1.01)
        if not torch.equal(image, plain):
            assert torch.equal(image, plain.flip(2))
            flips += 1
    assert 0 < flips < 8


@pytest.mark.parametrize("module", ["train", "mini"])
def test_every_flag_states_its_default(module):
    import argparse
    import importlib

    parser = importlib.import_module(f"object_detection.{module}").get_args_parser()
    for action in parser._actions:
        if action.help and action.dest != "help" and action.help != argparse.SUPPRESS:
            assert action.help.endswith(")") and "(default: " in action.help, action.dest


# -- RetinaNet (ruleset 5.1.0, benchmark "retinanet") --------------------------------------------------------------

RETINANET_RULESET = "5.1.0"


def test_short_retinanet_mini_run_log_passes_the_checker(tmp_path, openimages_root):
    assert run_train(tmp_path, openimages_root, "--config", "retinanet-mini", "--max-steps", "2",
                     "--eval-images", "2") == 0
    log = tmp_path / "mlperf_train_log.txt"
    events = {e["key"]: e["value"] for e in mllog_events(log)}
    assert events["submission_benchmark"] == "retinanet" and events["submission_division"] == "open"
    assert isinstance(events["eval_accuracy"], float) and events["eval_samples"] == 2
    assert events["opt_base_learning_rate"] == pytest.approx(3e-4) and events["opt_gradient_clip_norm"] == 10
    result = mllog_logs.checker(log, RETINANET_RULESET)
    assert result.returncode == 0 and "SUCCESS" in result.stdout + result.stderr, result.stdout + result.stderr
    # The checkpoint is what export reads: the raw-head graphs come out of it and pass their parity check.
    from object_detection import export

    net, _ = export.load_checkpoint(tmp_path)  # the mini config's heads, group norm included
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in net.head.modules()) == 8
    assert export.main(export.get_args_parser().parse_args(["--checkpoint", str(tmp_path), "--parity-images",
                                                            "2", "--formats", "onnxruntime"])) == 0


@pytest.mark.parametrize("head_norm", ["yes", 1, None])
def test_export_refuses_a_checkpoint_whose_head_norm_is_not_a_bool(tmp_path, capsys, head_norm):
    from loadgen.training.checkpoint import save_state
    from object_detection import export

    save_state({"x": torch.zeros(1)}, {"model": "retinanet", "image_size": 256, "head_norm": head_norm}, tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        export.main(export.get_args_parser().parse_args(["--checkpoint", str(tmp_path)]))
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.count("\n") == 1 and "'head_norm' must be true or false" in err


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 10 min alone on 2 cores
def test_retinanet_mini_recipe_trains_to_its_target_and_the_log_passes_the_checker(tmp_path, capsys):
    # The retinanet-mini recipe from scratch on the whole OpenImages-format mini set: it must stop because the mAP
    # reached the target, before its epochs ran out.
    cfg = train.RETINANET_CONFIGS["retinanet-mini"]
    assert run_train(tmp_path, mini.ensure_openimages(), "--config", "retinanet-mini") == 0
    result = json.loads((tmp_path / "train_result.json").read_text())
    assert result["reached_target"] and result["epochs"] < cfg.epochs and result["metrics"]["mAP"] >= cfg.target
    assert capsys.readouterr().out.count("RESULT,retinanet,1,") == 1
    log = tmp_path / "mlperf_train_log.txt"
    proc = mllog_logs.checker(log, RETINANET_RULESET)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_retinanet_closed_config_logs_the_rules_keys(tmp_path, openimages_root, monkeypatch):
    # The reference config for one step at a reduced size (the same keys as at 800), its backbone through
    # --backbone-weights (random ResNeXt weights stand in for the ImageNet file).
    import dataclasses

    loaded = []

    def fake_weights(path):
        loaded.append(path)
        return resnet.resnext50_32x4d(weights=None).state_dict()

    monkeypatch.setattr(train, "load_backbone_weights", fake_weights)
    monkeypatch.setitem(train.RETINANET_CONFIGS, "retinanet",
                        dataclasses.replace(train.RETINANET_CONFIGS["retinanet"], image_size=128))
    assert run_train(tmp_path, openimages_root, "--config", "retinanet", "--batch-size", "2", "--max-steps", "1",
                     "--eval-images", "1", "--backbone-weights", "resnext50_32x4d-7cdf4587.pth") == 0
    assert loaded == ["resnext50_32x4d-7cdf4587.pth"]
    log = tmp_path / "mlperf_train_log.txt"
    events = {e["key"]: e["value"] for e in mllog_events(log)}
    assert events["submission_division"] == "closed" and events["submission_benchmark"] == "retinanet"
    assert events["opt_name"] == "adam" and events["opt_base_learning_rate"] == pytest.approx(1e-4)
    assert events["opt_weight_decay"] == 0 and events["opt_learning_rate_warmup_epochs"] == 1
    assert events["opt_learning_rate_warmup_factor"] == pytest.approx(1e-3)
    assert events["gradient_accumulation_steps"] == 1 and events["global_batch_size"] == 2

    good = mllog_logs.checker(mllog_logs.closed_excerpt(log, tmp_path / "closed.txt", 0.341, 1), RETINANET_RULESET)
    assert good.returncode == 0 and "SUCCESS" in good.stdout + good.stderr, good.stdout + good.stderr
    # The checker reads those keys: another optimizer, weight decay, or a mAP short of 0.340 fails it.
    for name, accuracy, change in (("sgd", 0.341, {"opt_name": "sgd"}), ("decay", 0.341, {"opt_weight_decay": 1e-4}),
                                   ("short", 0.33, {})):
        bad = mllog_logs.closed_excerpt(log, tmp_path / f"{name}.txt", accuracy, 1, **change)
        assert mllog_logs.checker(bad, RETINANET_RULESET).returncode != 0, name


def test_retinanet_schedule_warms_up_over_the_first_epoch():
    cfg = train.RETINANET_CONFIGS["retinanet"]
    assert train.retinanet_learning_rate(0, cfg, 100) == pytest.approx(1e-4 * 1e-3)
    assert train.retinanet_learning_rate(50, cfg, 100) == pytest.approx(1e-4 * (1e-3 * 0.5 + 0.5))
    assert train.retinanet_learning_rate(100, cfg, 100) == train.retinanet_learning_rate(10**6, cfg, 100) == 1e-4
    assert train.workload("retinanet") is train.RetinaNetTraining and train.workload("mini") is train.ObjectDetection


def test_retinanet_reference_without_backbone_weights_is_a_usage_error(tmp_path, capsys):
    args = train.get_args_parser().parse_args(["--config", "retinanet", "--output", str(tmp_path)])
    assert train.main(args) == 2
    assert "ResNeXt50-32x4d" in capsys.readouterr().err
