"""Both SSDs on the four backends through LoadGen in all four scenarios on the mini set (untrained weights:
this tests the plumbing), the accuracy log's format, and the profiles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loadgen.accuracy import read_log
from loadgen.data import CATEGORY_IDS
from loadgen.settings import SCENARIOS
from single_stage_detector import accuracy, infer
from single_stage_detector.data.presets import INFERENCE_SIZE

from .conftest import FORMATS, PARITY_IMAGES

MODELS = list(INFERENCE_SIZE)
BACKENDS = list(FORMATS)
CASES = [(m, b, s) for m in MODELS for b in BACKENDS for s in SCENARIOS]
COUNT = PARITY_IMAGES  # the images export.py scored PyTorch on, so its mAP is the one to expect


def run(argv) -> int:
    return infer.main(infer.cli.parse_args(infer.get_args_parser(), argv, infer.PROFILES))


def common(model, backend, scenario, exported, mini_root, out) -> list[str]:
    return ["--profile", f"{model}-{backend}", "--model-dir", str(exported[model]), "--dataset-path", str(mini_root),
            "--scenario", scenario, "--count", str(COUNT), "--samples-per-query", "2", "--threads", "2",
            "--output", str(out)]


@pytest.mark.parametrize(("model", "backend", "scenario"), CASES, ids=[f"cpu-{s}-{b}-{m}" for m, b, s in CASES])
def test_accuracy_run(model, backend, scenario, exported, mini_root, tmp_path):
    assert run([*common(model, backend, scenario, exported, mini_root, tmp_path), "--accuracy"]) == 0
    result = json.loads((tmp_path / scenario / "accuracy" / "results.json").read_text())
    figures = result["figures"]["accuracy"]
    assert figures["images"] == COUNT and figures["detections"] > 0
    # The exported graph under LoadGen scores what the same backend scored on the same images in export.py's
    # parity check, and that is within its 0.5 points of eager PyTorch.
    meta = json.loads((exported[model] / "export.json").read_text())
    assert figures["mAP"] == pytest.approx(meta["parity"][backend]["mAP"], abs=0.01)
    assert figures["mAP"] == pytest.approx(meta["pytorch_mAP"], abs=0.5)
    # The log: per sample, float32 rows [qsl_idx, ymin, xmin, ymax, xmax, score, category id], boxes in 0..1.
    log = read_log(tmp_path / scenario / "accuracy" / "mlperf_log_accuracy.json", np.float32)
    assert sorted(log) == list(range(COUNT))
    for idx, response in log.items():
        rows = response.reshape(-1, 7)
        assert (rows[:, 0] == idx).all()
        assert ((rows[:, 1:5] >= 0) & (rows[:, 1:5] <= 1)).all()
        assert (rows[:, 3] >= rows[:, 1]).all() and (rows[:, 4] >= rows[:, 2]).all()
        assert ((rows[:, 5] > 0.05) & (rows[:, 5] <= 1)).all() and len(rows) <= 200
        if model == "ssd-resnet34":  # 81 classes: every label maps to one of the 80 category ids
            assert set(rows[:, 6].astype(int).tolist()) <= set(CATEGORY_IDS)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_performance_run(model, scenario, exported, mini_root, tmp_path):
    argv = [*common(model, "onnxruntime", scenario, exported, mini_root, tmp_path), "--qps", "20", "--time", "0"]
    assert run(argv) == 0
    figures = json.loads((tmp_path / scenario / "performance" / "results.json").read_text())["figures"]
    queries = 1 if scenario == "Offline" else COUNT
    assert figures["queries"] == queries
    assert figures["samples_traced"] == COUNT * (2 if scenario == "MultiStream" else 1)


def test_accuracy_tool_agrees_with_the_run(exported, mini_root, tmp_path, capsys):
    assert run([*common("ssd-mobilenet", "onnxruntime", "Offline", exported, mini_root, tmp_path), "--accuracy"]) == 0
    expected = json.loads((tmp_path / "Offline" / "accuracy" / "results.json").read_text())
    capsys.readouterr()
    log = tmp_path / "Offline" / "accuracy" / "mlperf_log_accuracy.json"
    assert accuracy.main(accuracy.get_args_parser().parse_args(
        ["--mlperf-accuracy-file", str(log), "--coco-dir", str(mini_root)])) == 0
    assert capsys.readouterr().out.startswith(f"mAP={expected['figures']['accuracy']['mAP']:.3f}%")


def test_profiles_and_defaults():
    assert sorted(infer.PROFILES) == sorted(f"{m}-{b}" for m in MODELS
                                            for b in ("pytorch", "onnxruntime", "tf", "tflite"))
    args = infer.cli.parse_args(infer.get_args_parser(), ["--profile", "ssd-resnet34-tf"], infer.PROFILES)
    args.model = "unused"  # no export.json beside it: sizes and preset come from the model
    infer.resolve(args)
    assert (args.model_name, args.image_size, args.preset, args.data_format) == ("ssd-resnet34", 1200, "imagenet",
                                                                                  "NHWC")
    args = infer.cli.parse_args(infer.get_args_parser(), ["--profile", "ssd-mobilenet-onnxruntime"], infer.PROFILES)
    infer.resolve(args)
    assert args.model == "results/single_stage_detector/train/ssd-mobilenet/export/ssd-mobilenet.onnx"
    assert (args.image_size, args.preset, args.data_format) == (300, "inception", "NCHW")


def test_a_missing_image_is_one_line(exported, mini_root, tmp_path):
    import shutil
    import subprocess
    import sys

    root = shutil.copytree(mini_root, tmp_path / "mini")
    victim = sorted((root / "val2017").iterdir())[1]
    victim.unlink()
    proc = subprocess.run([sys.executable, "-m", "single_stage_detector.infer", "--profile",
                           "ssd-mobilenet-onnxruntime", "--model-dir", str(exported["ssd-mobilenet"]),
                           "--dataset-path", str(root), "--scenario", "Offline", "--accuracy", "--count", "3",
                           "--output", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{infer.PROG}: error: ") and victim.name in lines[0]


def test_run_local_maps_its_positional_form_to_a_profile(monkeypatch):
    from loadgen.deploy.scripts import local_command

    monkeypatch.delenv("DATA_DIR", raising=False)
    monkeypatch.delenv("OUTPUT_DIR", raising=False)
    monkeypatch.setenv("MODEL_DIR", "/models")
    argv = local_command("single_stage_detector", ["tflite", "ssd-resnet34", "cpu", "--accuracy"])
    assert argv[1:] == ["-m", "single_stage_detector.infer", "--profile", "ssd-resnet34-tflite", "--device", "cpu",
                        "--model-dir", "/models", "--output", "results/single_stage_detector/ssd-resnet34-tflite",
                        "--accuracy"]
    args = infer.cli.parse_args(infer.get_args_parser(), argv[3:], infer.PROFILES)
    assert (args.backend, args.model_name) == ("tflite", "ssd-resnet34")


def test_user_conf_is_one_loadgen_reads():
    from pathlib import Path

    from loadgen.settings import parse_conf

    entries = parse_conf((Path(infer.__file__).parent / "user.conf").read_text(), "user.conf")
    assert entries[("*", "*", "min_duration")] == "2000"
