"""RetinaNet under LoadGen on its OpenImages-format mini set: both backends in all four scenarios (an untrained
but lively model: this tests the plumbing), the accuracy log's format, the accuracy tool on logs of known mAP, and
the profiles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loadgen.accuracy import read_log
from loadgen.data import load_annotations
from loadgen.data.coco_accuracy import qsl_images
from loadgen.settings import SCENARIOS
from object_detection import accuracy, infer
from object_detection.data import openimages

from .conftest import PARITY_IMAGES, RETINANET_SIZE

CASES = [(b, s) for b in infer.BACKENDS_OFFERED for s in SCENARIOS]
COUNT = PARITY_IMAGES  # the images export.py scored PyTorch on, so its mAP is the one to expect


def run(argv) -> int:
    return infer.main(infer.cli.parse_args(infer.get_args_parser(), argv, infer.PROFILES))


def common(backend, scenario, retinanet_export, openimages_root, out) -> list[str]:
    return ["--profile", f"retinanet-{backend}", "--model-dir", str(retinanet_export), "--dataset-path",
            str(openimages_root), "--scenario", scenario, "--count", str(COUNT), "--samples-per-query", "2",
            "--threads", "2", "--output", str(out)]


@pytest.mark.parametrize(("backend", "scenario"), CASES, ids=[f"cpu-{s}-{b}" for b, s in CASES])
def test_accuracy_run(backend, scenario, retinanet_export, openimages_root, tmp_path):
    assert run([*common(backend, scenario, retinanet_export, openimages_root, tmp_path), "--accuracy"]) == 0
    figures = json.loads((tmp_path / scenario / "accuracy" / "results.json").read_text())["figures"]["accuracy"]
    assert figures["images"] == COUNT and figures["detections"] > 0
    # Under LoadGen the exported graph scores what it scored in export.py's parity check on the same images.
    meta = json.loads((retinanet_export / "export.json").read_text())
    assert meta["image_size"] == RETINANET_SIZE
    assert figures["mAP"] == pytest.approx(meta["parity"][backend]["mAP"], abs=0.01)
    # The log: per sample, float32 rows [qsl_idx, ymin, xmin, ymax, xmax, score, category id 0..263].
    log = read_log(tmp_path / scenario / "accuracy" / "mlperf_log_accuracy.json", np.float32)
    assert sorted(log) == list(range(COUNT))
    for idx, response in log.items():
        rows = response.reshape(-1, 7)
        assert (rows[:, 0] == idx).all() and 0 < len(rows) <= 300
        assert ((rows[:, 1:5] >= 0) & (rows[:, 1:5] <= 1)).all()
        assert (rows[:, 3] >= rows[:, 1]).all() and (rows[:, 4] >= rows[:, 2]).all()
        assert ((rows[:, 5] > 0.05) & (rows[:, 5] <= 1)).all()
        assert ((rows[:, 6] >= 0) & (rows[:, 6] < 264)).all()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_performance_run(scenario, retinanet_export, openimages_root, tmp_path):
    argv = [*common("onnxruntime", scenario, retinanet_export, openimages_root, tmp_path), "--qps", "20",
            "--time", "0"]
    assert run(argv) == 0
    figures = json.loads((tmp_path / scenario / "performance" / "results.json").read_text())["figures"]
    assert figures["queries"] == (1 if scenario == "Offline" else COUNT)
    assert figures["samples_traced"] == COUNT * (2 if scenario == "MultiStream" else 1)


def write_log(path, responses: dict[int, np.ndarray]) -> str:
    entries = [{"seq_id": n, "qsl_idx": idx, "data": np.asarray(r, np.float32).tobytes().hex(), "size": 0}
               for n, (idx, r) in enumerate(responses.items())]
    path.write_text(json.dumps(entries))
    return str(path)


def truth(coco, shift: int = 0, keep_every: int = 1) -> dict[int, np.ndarray]:
    """Each image's non-group boxes as detection rows with score 1 (every ``keep_every``-th), labels + ``shift``."""
    out = {}
    for idx, img in enumerate(qsl_images(coco)):
        anns = [a for a in coco.imgToAnns.get(img["id"], []) if not a["iscrowd"]][::keep_every]
        rows = [[idx, y / img["height"], x / img["width"], (y + h) / img["height"], (x + w) / img["width"], 1.0,
                 a["category_id"] + shift] for a in anns for x, y, w, h in [a["bbox"]]]
        out[idx] = np.asarray(rows, np.float32).reshape(-1)
    return out


def score(log, root, *flags) -> str:
    args = accuracy.get_args_parser().parse_args(["--mlperf-accuracy-file", log, "--openimages-dir", str(root),
                                                  *flags])
    return args


def test_accuracy_tool_on_logs_of_known_map(openimages_root, tmp_path, capsys, monkeypatch):
    coco = load_annotations(openimages.annotation_file(openimages_root))
    monkeypatch.delenv(accuracy.ANNOTATIONS_VARIABLE, raising=False)
    assert accuracy.main(score(write_log(tmp_path / "a.json", truth(coco)), openimages_root)) == 0
    assert capsys.readouterr().out.startswith("mAP=100.000%")
    # --use-inv-map: labels 1..264 stand for the file's category ids 0..263.
    assert accuracy.main(score(write_log(tmp_path / "b.json", truth(coco, shift=1)), openimages_root,
                               "--use-inv-map")) == 0
    assert capsys.readouterr().out.startswith("mAP=100.000%")
    # Every other box of each image: recall capped below 1, so mAP well under 100 but above 0.
    assert accuracy.main(score(write_log(tmp_path / "c.json", truth(coco, keep_every=2)), openimages_root)) == 0
    value = float(capsys.readouterr().out.split("%")[0].removeprefix("mAP="))
    assert 20 < value < 90
    # The reference's variable names another annotation file: an empty one scores nothing.
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**coco.dataset, "annotations": []}))
    monkeypatch.setenv(accuracy.ANNOTATIONS_VARIABLE, str(other))
    assert accuracy.main(score(write_log(tmp_path / "d.json", truth(coco)), openimages_root)) == 0
    assert capsys.readouterr().out.startswith("mAP=0.000%")


def test_accuracy_tool_agrees_with_the_run(retinanet_export, openimages_root, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(accuracy.ANNOTATIONS_VARIABLE, raising=False)
    assert run([*common("onnxruntime", "Offline", retinanet_export, openimages_root, tmp_path), "--accuracy"]) == 0
    expected = json.loads((tmp_path / "Offline" / "accuracy" / "results.json").read_text())
    capsys.readouterr()
    log = str(tmp_path / "Offline" / "accuracy" / "mlperf_log_accuracy.json")
    assert accuracy.main(score(log, openimages_root)) == 0
    assert capsys.readouterr().out.startswith(f"mAP={expected['figures']['accuracy']['mAP']:.3f}%")


def test_profiles_and_usage_errors(retinanet_export, openimages_root, tmp_path, capsys):
    assert set(infer.PROFILES) == {"retinanet-pytorch", "retinanet-onnxruntime"}
    with pytest.raises(SystemExit) as exc:  # no TF export of RetinaNet: a usage error naming what there is
        run(["--backend", "tf", "--model-dir", str(retinanet_export), "--dataset-path", str(openimages_root),
             "--output", str(tmp_path)])
    assert exc.value.code == 2
    assert "exported: pytorch, onnxruntime" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        run(["--profile", "retinanet-onnxruntime", "--model-name", "resnet50", "--model-dir", str(retinanet_export),
             "--output", str(tmp_path)])
    assert exc.value.code == 2
