"""Both models on all four backends through LoadGen on the mini set, and consistency with PyTorch."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from image_classification import data, infer, train

BACKENDS = ["pytorch", "onnxruntime", "tf", "tflite"]
CASES = [(arch, b) for arch in ("resnet50", "mobilenet") for b in BACKENDS]
COUNT = 24


def torch_top1(export_dir, mini_root) -> float:
    model, meta = train.load_checkpoint(export_dir.parent)
    preset = data.presets(32)["torchvision"]
    samples = data.val_samples(mini_root)[:COUNT]
    x = preset.normalize(np.stack([preset.geometry(data.load_image(p)) for p, _ in samples]))
    with torch.inference_mode():
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == np.array([label for _, label in samples])).mean())


@pytest.mark.parametrize(("arch", "backend"), CASES, ids=[f"cpu-Offline-{b}-{a}" for a, b in CASES])
def test_accuracy_run_on_every_backend(arch, backend, exported, mini_root, tmp_path, capsys):
    argv = ["--profile", f"{arch}-{backend}", "--model-dir", str(exported[arch]), "--dataset-path", str(mini_root),
            "--scenario", "Offline", "--accuracy", "--count", str(COUNT), "--output", str(tmp_path)]
    args = infer.cli.parse_args(infer.get_args_parser(), argv, infer.PROFILES)
    assert infer.main(args) == 0
    result = json.loads((tmp_path / "Offline" / "accuracy" / "results.json").read_text())
    assert result["figures"]["accuracy"]["total"] == COUNT
    # The exported model on its backend scores what the PyTorch checkpoint scores on the same images.
    assert result["figures"]["accuracy"]["top1"] == pytest.approx(torch_top1(exported[arch], mini_root))
    assert "top1=" in capsys.readouterr().out


@pytest.mark.parametrize("backend", BACKENDS, ids=[f"cpu-SingleStream-{b}-resnet50" for b in BACKENDS])
def test_performance_run_on_every_backend(backend, exported, mini_root, tmp_path):
    argv = ["--profile", f"resnet50-{backend}", "--model-dir", str(exported["resnet50"]), "--dataset-path",
            str(mini_root), "--scenario", "SingleStream", "--count", "32", "--output", str(tmp_path)]
    args = infer.cli.parse_args(infer.get_args_parser(), argv, infer.PROFILES)
    assert infer.main(args) == 0
    result = json.loads((tmp_path / "SingleStream" / "performance" / "results.json").read_text())
    # --count alone is LoadGen's max query count: the run stops after exactly that many queries.
    assert result["figures"]["queries"] == 32 and result["figures"]["qps"] > 0
    assert result["figures"]["samples_traced"] == 32


def test_cache_path_gives_the_same_accuracy(exported, mini_root, tmp_path):
    tops = []
    for cache in ("0", "1"):
        argv = ["--profile", "resnet50-onnxruntime", "--model-dir", str(exported["resnet50"]), "--dataset-path",
                str(mini_root), "--scenario", "Offline", "--accuracy", "--count", str(COUNT), "--cache", cache,
                "--cache-dir", str(tmp_path / "cache"), "--output", str(tmp_path / cache)]
        assert infer.main(infer.cli.parse_args(infer.get_args_parser(), argv, infer.PROFILES)) == 0
        tops.append(json.loads((tmp_path / cache / "Offline" / "accuracy" / "results.json").read_text())
                    ["figures"]["accuracy"]["top1"])
    assert tops[0] == tops[1]


BAD_IMAGES = {"empty": b"", "random bytes": bytes(range(256)) * 8, "truncated": None, "missing": None}


@pytest.mark.parametrize("kind", list(BAD_IMAGES))
@pytest.mark.parametrize("cache", ["0", "1"])
def test_an_unreadable_image_fails_the_run_in_one_line(kind, cache, exported, mini_copy, tmp_path):
    # With --cache 0 the image is decoded inside LoadGen's load callback, where an exception used to abort the
    # process (exit 134) before results.json was written; with --cache 1 it is decoded before LoadGen starts.
    import subprocess
    import sys

    path, _ = data.val_samples(mini_copy)[3]
    if kind == "missing":
        os.remove(path)
    elif kind == "truncated":
        with open(path, "r+b") as fh:
            fh.truncate(os.path.getsize(path) // 2)
    else:
        with open(path, "wb") as fh:
            fh.write(BAD_IMAGES[kind])
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "image_classification.infer", "--profile", "resnet50-onnxruntime", "--model-dir",
         str(exported["resnet50"]), "--dataset-path", str(mini_copy), "--scenario", "Offline", "--count",
         str(COUNT), "--cache", cache, "--cache-dir", str(tmp_path / "cache"), "--output", str(out)],
        capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("python -m image_classification.infer: error: "), proc.stderr
    assert os.path.basename(path) in lines[0]
    if kind == "missing":  # found when the list is read, before LoadGen starts
        assert "missing" in lines[0]
    elif cache == "0":
        assert '"failed"' in (out / "Offline" / "performance" / "results.json").read_text()
