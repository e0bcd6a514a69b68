"""The COCO accuracy tool on logs of known mAP: the ground truth itself (100 %), half the boxes (51/101), and the
reference's flags (--use-inv-map, --remove-48-empty-images)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loadgen.data import LABEL_OF_CATEGORY, annotation_file, load_annotations
from loadgen.data.coco_accuracy import coco_accuracy, qsl_images
from single_stage_detector import accuracy, mini


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory):
    return mini.build(tmp_path_factory.mktemp("ssd-acc") / "mini", train_images=2, val_images=50, progress=False)


def write_log(path, responses: dict[int, np.ndarray]) -> str:
    entries = [{"seq_id": n, "qsl_idx": idx, "data": np.asarray(r, np.float32).tobytes().hex(), "size": 0}
               for n, (idx, r) in enumerate(responses.items())]
    path.write_text(json.dumps(entries))
    return str(path)


def truth_as_detections(coco, images, inv_map: bool = False, keep=lambda anns: anns) -> dict[int, np.ndarray]:
    """Each image's non-crowd ground-truth boxes as detection rows [idx, ymin, xmin, ymax, xmax, 1, label]."""
    out = {}
    for idx, img in enumerate(images):
        anns = keep([a for a in coco.imgToAnns.get(img["id"], []) if not a["iscrowd"]])
        rows = []
        for a in anns:
            x, y, w, h = a["bbox"]
            label = LABEL_OF_CATEGORY[a["category_id"]] if inv_map else a["category_id"]
            rows.append([idx, y / img["height"], x / img["width"], (y + h) / img["height"], (x + w) / img["width"],
                         1.0, label])
        out[idx] = np.asarray(rows, np.float32).reshape(-1)
    return out


def test_ground_truth_scores_100(mini_root, tmp_path):
    ann = annotation_file(mini_root, "val")
    coco = load_annotations(ann)
    log = write_log(tmp_path / "log.json", truth_as_detections(coco, qsl_images(coco)))
    acc, results = coco_accuracy(log, ann)
    assert acc["mAP"] == pytest.approx(100.0)
    assert acc["images"] == 50 and acc["detections"] == len(results) > 0


def test_inv_map_maps_contiguous_labels(mini_root, tmp_path):
    ann = annotation_file(mini_root, "val")
    coco = load_annotations(ann)
    log = write_log(tmp_path / "log.json", truth_as_detections(coco, qsl_images(coco), inv_map=True))
    assert coco_accuracy(log, ann, use_inv_map=True)[0]["mAP"] == pytest.approx(100.0)
    # Read as category ids, labels 1..80 name other classes (or none): far from 100.
    assert coco_accuracy(log, ann)[0]["mAP"] < 50


def test_remove_empty_images_shifts_the_sample_list(mini_root, tmp_path):
    ann = annotation_file(mini_root, "val")
    coco = load_annotations(ann)
    images = qsl_images(coco, remove_empty=True)
    assert len(images) < len(qsl_images(coco))  # the mini set has images without objects, as COCO has 48
    log = write_log(tmp_path / "log.json", truth_as_detections(coco, images))
    assert coco_accuracy(log, ann, remove_empty=True)[0]["mAP"] == pytest.approx(100.0)
    assert coco_accuracy(log, ann, remove_empty=False)[0]["mAP"] < 100.0


def test_half_the_boxes_give_51_of_101(tmp_path):
    # One class, four boxes on two images; detecting two of them exactly gives precision 1 up to recall 0.5 and
    # no detection beyond: COCO's 101-point AP is 51/101 at every IoU threshold.
    images = [{"id": 7, "file_name": "a.jpg", "width": 200, "height": 100},
              {"id": 9, "file_name": "b.jpg", "width": 100, "height": 100}]
    boxes = {7: [[10, 10, 40, 30], [100, 20, 60, 60]], 9: [[0, 0, 50, 50], [60, 60, 30, 30]]}
    anns = [{"id": n + 1, "image_id": i, "category_id": 18, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
            for n, (i, b) in enumerate((i, b) for i, bs in boxes.items() for b in bs)]
    ann = tmp_path / "instances_val2017.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns,
                               "categories": [{"id": 18, "name": "dog", "supercategory": "animal"}]}))
    # qsl 0 is image 7 (200x100), qsl 1 image 9 (100x100); one box of each.
    dets = {0: [0, 0.1, 0.05, 0.4, 0.25, 0.9, 18], 1: [1, 0.6, 0.6, 0.9, 0.9, 0.8, 18]}
    log = write_log(tmp_path / "log.json", dets)
    acc, _ = coco_accuracy(log, ann)
    assert acc["mAP"] == pytest.approx(100 * 51 / 101, abs=1e-6)
    # The CLI prints it the reference's way.
    code = accuracy.main(accuracy.get_args_parser().parse_args(
        ["--mlperf-accuracy-file", log, "--annotations", str(ann), "--output-file", str(tmp_path / "res.json")]))
    assert code == 0
    assert len(json.loads((tmp_path / "res.json").read_text())) == 2


def test_cli_prints_map_and_errors_in_one_line(mini_root, tmp_path, capsys):
    ann = annotation_file(mini_root, "val")
    coco = load_annotations(ann)
    log = write_log(tmp_path / "log.json", truth_as_detections(coco, qsl_images(coco)[:3]))
    assert accuracy.main(accuracy.get_args_parser().parse_args(
        ["--mlperf-accuracy-file", log, "--coco-dir", str(mini_root)])) == 0
    assert capsys.readouterr().out.startswith("mAP=100.000%, images=3,")
    bad = write_log(tmp_path / "bad.json", {0: np.zeros(5, np.float32)})  # not whole groups of 7
    assert accuracy.main(accuracy.get_args_parser().parse_args(
        ["--mlperf-accuracy-file", bad, "--coco-dir", str(mini_root)])) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{accuracy.PROG}: error: ") and "sample 0" in err[0]
    assert "whole detections of 7" in err[0]
    with pytest.raises(SystemExit) as exc:
        accuracy.main(accuracy.get_args_parser().parse_args(["--mlperf-accuracy-file", log]))
    assert exc.value.code == 2
