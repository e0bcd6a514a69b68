"""Everywhere a user can type something wrong: one line on stderr naming the problem, exit status 2, no traceback.

One table over every entry point of the suite, so a new command gets the same check by adding a row.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

MISSING = "/nonexistent/path"
BAD = {
    # python -m loadgen
    "loadgen-max-latency-inf": ("loadgen", ["--profile", "null", "--max-latency", "inf"], "--max-latency"),
    "loadgen-max-latency-nan": ("loadgen", ["--profile", "null", "--max-latency", "0.1,nan"], "--max-latency"),
    "loadgen-time-nan": ("loadgen", ["--profile", "null", "--time", "nan"], "--time"),
    "loadgen-submission-shortened": ("loadgen", ["--profile", "null", "--submission", "--time", "5"], "--time"),
    "loadgen-unknown-round": ("loadgen", ["--profile", "null", "--rng-seeds", "v4.0"], "--rng-seeds"),
    "loadgen-server-qps-offline": ("loadgen", ["--profile", "null", "--scenario", "Offline", "--find-server-qps"],
                                   "--find-server-qps"),
    "loadgen-server-qps-precision": ("loadgen", ["--profile", "null", "--scenario", "Server", "--find-server-qps",
                                                 "--search-precision", "2"], "precision"),
    "loadgen-compliance-unknown": ("loadgen", ["--profile", "null", "--compliance", "TEST05"], "--compliance"),
    "loadgen-compliance-accuracy": ("loadgen", ["--profile", "null", "--compliance", "TEST01", "--accuracy"],
                                    "performance run"),
    "loadgen-compliance-before-runs": ("loadgen", ["--profile", "null", "--scenario", "Offline", "--compliance",
                                                   "TEST01"], "run them first"),
    # submission tree
    "submission-missing-runs": ("loadgen.submission", ["--runs", MISSING, "--org", "o", "--system", "s"], MISSING),
    "submission-unknown-version": ("loadgen.submission", ["--runs", ".", "--org", "o", "--system", "s",
                                                          "--version", "v4.0"], "--version"),
    "submission-bad-system-name": ("loadgen.submission", ["--runs", ".", "--org", "o", "--system", "../x"],
                                   "folder name"),
    # training
    "ic-train-negative-epochs": ("image_classification.train", ["--epochs", "-1"], "--epochs"),
    "ic-train-zero-batch": ("image_classification.train", ["--batch-size", "0"], "--batch-size"),
    "ic-train-negative-batch": ("image_classification.train", ["--batch-size", "-4"], "--batch-size"),
    "ic-train-zero-threads": ("image_classification.train", ["--threads", "0"], "--threads"),
    "ic-train-missing-data": ("image_classification.train", ["--data-dir", MISSING], MISSING),
    "dlrm-train-negative-epochs": ("recommendation.train", ["--epochs", "-1"], "--epochs"),
    "dlrm-train-zero-batch": ("recommendation.train", ["--batch-size", "0"], "--batch-size"),
    "dlrm-train-zero-threads": ("recommendation.train", ["--threads", "0"], "--threads"),
    "dlrm-train-missing-raw": ("recommendation.train", ["--raw-dir", MISSING], MISSING),
    "dlrm-train-zero-runs": ("recommendation.train", ["--runs", "0"], "--runs"),
    "dlrm-train-runs-resume": ("recommendation.train", ["--runs", "3", "--resume"], "--resume"),
    "training-package-missing-runs": ("loadgen.training.package", ["--runs", MISSING, "--org", "o", "--system", "s"],
                                      MISSING),
    "training-package-bad-system": ("loadgen.training.package", ["--runs", ".", "--org", "o", "--system", "a/b"],
                                    "folder name"),
    "ssd-train-negative-epochs": ("single_stage_detector.train", ["--epochs", "-1"], "--epochs"),
    "ssd-train-missing-data": ("single_stage_detector.train", ["--data-dir", MISSING], MISSING),
    "od-train-negative-epochs": ("object_detection.train", ["--epochs", "-1"], "--epochs"),
    "od-train-missing-data": ("object_detection.train", ["--data-dir", MISSING], MISSING),
    "od-train-reference-without-weights": ("object_detection.train", ["--config", "reference"], "--backbone-weights"),
    "od-train-retinanet-without-weights": ("object_detection.train", ["--config", "retinanet"], "--backbone-weights"),
    # inference
    "ic-infer-missing-dataset": ("image_classification.infer", ["--dataset-path", MISSING], MISSING),
    "ic-infer-missing-list": ("image_classification.infer", ["--dataset-list", MISSING], MISSING),
    "dlrm-infer-missing-raw": ("recommendation.infer", ["--raw-dir", MISSING], MISSING),
    "dlrm-infer-aggregation-min-over-max": ("recommendation.infer", ["--samples-to-aggregate-min", "5",
                                                                     "--samples-to-aggregate-max", "2"], "min <= max"),
    "dlrm-infer-aggregation-min-alone": ("recommendation.infer", ["--samples-to-aggregate-min", "5"], "go together"),
    "ssd-infer-missing-dataset": ("single_stage_detector.infer", ["--dataset-path", MISSING], MISSING),
    "od-infer-missing-dataset": ("object_detection.infer", ["--dataset-path", MISSING], MISSING),
    "od-infer-tf-backend": ("object_detection.infer", ["--backend", "tf"], "exported: pytorch, onnxruntime"),
    "od-infer-other-model": ("object_detection.infer", ["--model-name", "resnet50"], "--model-name"),
    "od-export-missing-checkpoint": ("object_detection.export", ["--checkpoint", MISSING], MISSING),
    "od-export-unknown-format": ("object_detection.export", ["--checkpoint", ".", "--formats", "tflite"], "tflite"),
    "od-accuracy-missing-dir": ("object_detection.accuracy", ["--mlperf-accuracy-file", MISSING,
                                                              "--openimages-dir", "."], MISSING),
    "tr-train-unknown-config": ("translation.train", ["--config", "gnmt-huge"], "--config"),
    "tr-train-missing-data": ("translation.train", ["--data-dir", MISSING], MISSING),
    "tr-train-zero-eval": ("translation.train", ["--eval-sentences", "0"], "--eval-sentences"),
    "tr-infer-missing-dataset": ("translation.infer", ["--dataset-path", MISSING], MISSING),
    "tr-infer-tf-backend": ("translation.infer", ["--backend", "tf"], "exported: pytorch, onnxruntime"),
    "tr-infer-other-model": ("translation.infer", ["--model-name", "resnet50"], "--model-name"),
    "tr-infer-model-not-an-encoder": ("translation.infer", ["--model", "gnmt.onnx"], "-encoder"),
    "tr-export-missing-checkpoint": ("translation.export", ["--checkpoint", MISSING], MISSING),
    "tr-export-unknown-format": ("translation.export", ["--checkpoint", ".", "--formats", "tflite"], "tflite"),
    "tr-accuracy-missing-dir": ("translation.accuracy", ["--mlperf-accuracy-file", MISSING,
                                                         "--dataset-path", "."], MISSING),
    "tr-mini-corpus-unknown-flag": ("translation.mini", ["--merges", "9"], "--merges"),
    "tr-data-unknown-dataset": ("translation.data", ["download", "--dataset", "wmt14"], "--dataset"),
    # demos
    "tr-demo-unknown-flag": ("translation.demo", ["--epochs", "3"], "--epochs"),
    "ssd-demo-unknown-flag": ("single_stage_detector.demo", ["--epochs", "3"], "--epochs"),
    "od-demo-unknown-flag": ("object_detection.demo", ["--epochs", "3"], "--epochs"),
    # data
    "od-data-unknown-part": ("object_detection.data", ["download", "--data-dir", "d", "--only", "test2017"], "--only"),
    "od-data-missing-data": ("object_detection.data", ["verify", "--data-dir", MISSING], MISSING),
    "od-openimages-zero-workers": ("object_detection.data", ["download-openimages", "--data-dir", "d", "--workers",
                                                             "0"], "--workers"),
    "od-openimages-zero-images": ("object_detection.data", ["download-openimages", "--data-dir", "d",
                                                            "--max-images", "0"], "--max-images"),
    "od-openimages-s3-url": ("object_detection.data", ["download-openimages", "--data-dir", "d", "--images-url",
                                                       "s3://open-images-dataset"], "--images-url"),
    "od-openimages-no-data-dir": ("object_detection.data", ["download-openimages"], "--data-dir"),
    "od-openimages-missing-data": ("object_detection.data", ["verify-openimages", "--data-dir", MISSING], MISSING),
    "od-openimages-bad-count": ("object_detection.data", ["verify-openimages", "--data-dir", ".",
                                                          "--expected-count", "many"], "--expected-count"),
    "od-mini-sides-swapped": ("object_detection.mini", ["--min-side", "400", "--max-side", "300"], "--min-side"),
    "ssd-data-unknown-part": ("single_stage_detector.data", ["download", "--data-dir", "d", "--only", "test2017"],
                              "--only"),
    "ssd-data-missing-data": ("single_stage_detector.data", ["verify", "--data-dir", MISSING], MISSING),
}


@pytest.mark.parametrize(("module", "argv", "named"), BAD.values(), ids=BAD.keys())
def test_bad_usage_is_one_line_and_exit_2(module, argv, named, tmp_path):
    proc = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "error:" in lines[0] and named in lines[0], proc.stderr
    assert "RESULT," not in proc.stdout
