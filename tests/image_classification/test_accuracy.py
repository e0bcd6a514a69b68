"""The accuracy tool against an accuracy log whose top-1 is known."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from image_classification.accuracy import top1


def test_top1_of_a_known_log(tmp_path):
    labels = [3, 1, 4, 1, 5, 9, 2, 6]
    predicted = [3, 1, 4, 0, 5, 0, 2, 0]  # 5 of 8 right
    entries = [{"seq_id": i, "qsl_idx": i, "data": np.array([p], np.int64).tobytes().hex()}
               for i, p in enumerate(predicted)]
    entries.append(dict(entries[0], seq_id=99))  # a MultiStream pad repeats a sample: counted once
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text(json.dumps(entries))
    result = top1(log, labels)
    assert result.as_json() == {"top1": 5 / 8, "good": 5, "total": 8}
    assert result.text() == "top1=62.500%"
    val_map = tmp_path / "val_map.txt"
    val_map.write_text("".join(f"ILSVRC2012_val_{i + 1:08d}.JPEG {label}\n" for i, label in enumerate(labels)))
    out = subprocess.run([sys.executable, "-m", "image_classification.accuracy", "--mlperf-accuracy-file", str(log),
                          "--imagenet-val-file", str(val_map)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "accuracy=62.500%, good=5, total=8"
