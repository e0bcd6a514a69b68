"""export.py: .pt2, ONNX, SavedModel and TFLite of both SSDs match PyTorch on the mini val set (mAP within 0.5
points, >= 99 % of detections matched); the matching measure itself; one-line errors; the 1200x1200
SSD-ResNet34 (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loadgen.backends.parity import DETECTION_MAP_TOLERANCE, DETECTION_MATCHED
from loadgen.data import coco_accuracy
from single_stage_detector import export

from .conftest import PARITY_IMAGES, lively


def run(argv) -> int:
    return export.main(export.get_args_parser().parse_args(argv))


@pytest.mark.parametrize("model", ["ssd-mobilenet", "ssd-resnet34"])
def test_exports_match_pytorch(model, exported):
    folder = exported[model]
    meta = json.loads((folder / "export.json").read_text())
    assert (meta["model"], meta["image_size"], meta["images"]) == (model, 300, PARITY_IMAGES)
    assert meta["pytorch_detections"] > 0  # the parity check compared real detections, not two empty lists
    for fmt, name in (("pytorch", f"{model}.pt2"), ("onnxruntime", f"{model}.onnx"), ("tf", f"{model}_savedmodel"),
                      ("tflite", f"{model}.tflite")):
        assert meta["files"][fmt] == name and (folder / name).exists()
        assert meta["parity"][fmt]["matched"] >= DETECTION_MATCHED
        assert abs(meta["parity"][fmt]["mAP"] - meta["pytorch_mAP"]) <= DETECTION_MAP_TOLERANCE


def rows(*dets) -> np.ndarray:
    return np.asarray(dets, np.float32).reshape(-1)


def test_matched_share_counts_missing_moved_and_relabelled_detections():
    a = rows([0, 0.1, 0.1, 0.5, 0.5, 0.9, 1], [0, 0.5, 0.5, 0.9, 0.9, 0.6, 62])
    assert coco_accuracy.matched_share([a], [a.copy()]) == 1.0
    assert coco_accuracy.matched_share([rows()], [rows()]) == 1.0
    assert coco_accuracy.matched_share([a], [a[:7]]) == 0.5  # one of two missing
    moved = a.copy().reshape(-1, 7)
    moved[1, 1:5] += 0.2  # IoU far under 0.9
    assert coco_accuracy.matched_share([a], [moved.reshape(-1)]) == 0.5
    relabelled = a.copy().reshape(-1, 7)
    relabelled[0, 6] = 44
    assert coco_accuracy.matched_share([a], [relabelled.reshape(-1)]) == 0.5
    extra = np.concatenate([a, rows([0, 0.0, 0.0, 0.2, 0.2, 0.3, 1])])
    assert coco_accuracy.matched_share([a], [extra]) == pytest.approx(2 / 3)  # an extra detection counts too


def test_errors_are_one_line(tmp_path, capsys):
    import torch

    from loadgen.training.checkpoint import save_state

    assert run(["--checkpoint", str(tmp_path)]) == 1  # no model.safetensors
    assert capsys.readouterr().err.count("\n") == 1
    save_state({"w": torch.zeros(2)}, {"model": "ssd-mobilenet"}, tmp_path / "wrong")
    assert run(["--checkpoint", str(tmp_path / "wrong")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "do not fit ssd-mobilenet" in err
    assert run(["--checkpoint", str(tmp_path / "wrong"), "--formats", "pytorch,caffe"]) == 2
    assert "caffe" in capsys.readouterr().err
    assert run(["--checkpoint", str(tmp_path / "wrong"), "--image-size", "1200"]) == 2  # MobileNet runs at 300
    assert "300" in capsys.readouterr().err


@pytest.mark.slow
def test_resnet34_at_1200(tmp_path, mini_root):
    # SSD-ResNet34's inference size: the same weights, heads at stride 3, 15130 boxes. About a minute on 2 cores.
    from loadgen.training.checkpoint import save_state
    from single_stage_detector import models

    model = lively(models.build("ssd-resnet34", 300), mini_root)
    save_state(model.state_dict(), {"model": "ssd-resnet34", "data_dir": str(mini_root)}, tmp_path)
    assert run(["--checkpoint", str(tmp_path), "--parity-images", "2"]) == 0
    meta = json.loads((tmp_path / "export" / "export.json").read_text())
    assert meta["image_size"] == 1200 and meta["parity"]["onnxruntime"]["matched"] >= DETECTION_MATCHED
