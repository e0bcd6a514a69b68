"""loadgen.backends.parity.detection_parity: an export passes on agreeing detections, or on raw outputs equal to
PyTorch's up to float rounding where near-tied scores make the detections differ; it fails when both differ."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from loadgen.backends.parity import RAW_OUTPUT_TOLERANCE, detection_parity, max_abs_difference


def one_image_coco() -> COCO:
    coco = COCO()
    coco.dataset = {"images": [{"id": 1, "width": 100, "height": 100, "file_name": "a.jpg"}],
                    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40],
                                     "area": 1600, "iscrowd": 0}],
                    "categories": [{"id": 1, "name": "thing"}]}
    coco.createIndex()
    return coco


# Two candidate boxes of one class: the post-processing keeps the higher-scoring one, as NMS or a top-1 cut does.
BOXES = np.array([[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]], np.float32)  # ymin, xmin, ymax, xmax


def respond(outputs):
    (scores,) = outputs
    best = int(np.argmax(scores[0]))
    return [np.array([0, *BOXES[best], scores[0, best], 1], np.float32)]


def run(tmp_path, other_scores, capsys):
    reference = [np.array([[0.6, 0.6 - 1e-7]], np.float32)]
    code = detection_parity("prog", tmp_path, {}, one_image_coco(), reference, {"onnxruntime": tmp_path / "m.onnx"},
                            lambda fmt: [np.array([other_scores], np.float32)], respond)
    record = json.loads((tmp_path / "export.json").read_text())["parity"]["onnxruntime"]
    return code, record, capsys.readouterr().err


def test_a_tie_broken_the_other_way_passes_on_the_raw_outputs(tmp_path, capsys):
    # Rounding of 2e-7 swaps the winner: no detection matches, but the graph is PyTorch's.
    code, record, err = run(tmp_path, [0.6 - 1e-7, 0.6 + 1e-7], capsys)
    assert record["matched"] == 0 and record["max_abs_difference"] <= RAW_OUTPUT_TOLERANCE
    assert code == 0 and err == ""


def test_agreeing_detections_pass_whatever_the_raw_difference(tmp_path, capsys):
    # The winner and its score rounded alike: the detection measure passes a format that computes differently.
    code, record, _ = run(tmp_path, [0.6 + 5e-4, 0.2], capsys)
    assert record["matched"] == 1 and record["max_abs_difference"] > RAW_OUTPUT_TOLERANCE and code == 0


def test_different_detections_and_raw_outputs_fail(tmp_path, capsys):
    code, record, err = run(tmp_path, [0.1, 0.7], capsys)
    assert code == 1 and record["matched"] == 0
    assert err.count("\n") == 1 and "onnxruntime differ from PyTorch" in err


def test_max_abs_difference():
    a = [np.zeros((2, 3)), np.ones(4)]
    assert max_abs_difference(a, [np.zeros((2, 3)), np.ones(4) + 0.5]) == pytest.approx(0.5)
    assert max_abs_difference(a, [np.zeros((3, 2)), np.ones(4)]) == float("inf")  # another layout
    assert max_abs_difference(a, a[:1]) == float("inf")
