"""``make demo``'s SSD stage: the benchmark on the embedded mini set, offline, in a few minutes on 2 cores.

1. build the mini set (COCO format: real pixels and object shapes, synthesized layout);
2. train SSD-MobileNet-v1 from scratch (the ``ssd-mobilenet`` config) until its mAP reaches the mini target,
   logging mllog;
3. export the checkpoint to .pt2 and ONNX, each checked against PyTorch on the mini val set;
4. run Offline under LoadGen with onnxruntime, in performance and accuracy modes;
5. print time-to-train, mAP, QPS, latency percentiles, and where every file is.

SSD-MobileNet-v1 rather than SSD-ResNet34: both train on the same driver and data, but SSD-ResNet34 takes about
five times as long a step (27 GFLOPs an image at 300x300 against 2.5) and does not reach a useful mAP from scratch
within a demo's minutes on 2 cores (``python -m single_stage_detector.train --config mini`` trains it).
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from loadgen.cli import demo_command, demo_loadgen_run, demo_parser, demo_steps, demo_summary_line, demo_train_line
from single_stage_detector import export, mini, train

HERE = Path(__file__).resolve().parent
MODEL = "ssd-mobilenet"
# Expected samples/s for LoadGen, about twice what SSD-MobileNet-v1 at 300x300 on onnxruntime does on 2 cores.
# LoadGen plans the run's work from it: an overestimate only makes a run longer, an underestimate ends it short of
# user.conf's 2 s minimum (INVALID).
OFFLINE_QPS = "200"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    return demo_parser("python -m single_stage_detector.demo", __doc__, "results/single_stage_detector", add_help)


def main(args) -> int:
    out = Path(args.output)
    root = mini.ensure()
    print(f"== single_stage_detector demo: mini set at {root}", flush=True)
    train_dir, infer_dir = out / "train" / MODEL, out / f"{MODEL}-onnxruntime"
    steps = [
        (f"train {MODEL}",
         demo_command(train, ["--config", MODEL, "--output", train_dir, "--data-dir", root, "--quiet"])),
        ("export", demo_command(export, ["--checkpoint", train_dir])),
    ]
    steps += [(f"Offline {'accuracy' if accuracy else 'performance'}",
               functools.partial(demo_loadgen_run, "single_stage_detector.infer", f"{MODEL}-onnxruntime",
                                 train_dir / "export", root, "Offline", OFFLINE_QPS, HERE / "user.conf", infer_dir,
                                 accuracy))
              for accuracy in (False, True)]
    code = demo_steps("single_stage_detector", steps)
    if code:
        return code
    summary(train_dir, infer_dir)
    return 0


def summary(train_dir: Path, infer_dir: Path) -> None:
    print("\n== single_stage_detector demo summary ==")
    print(demo_train_line(train_dir, "mAP"))
    print(demo_summary_line(infer_dir, "Offline", lambda figures: f"mAP={figures['mAP']:.3f}%"))
    print(f"files: mllog log, checkpoint, training curve in {train_dir}/; models in {train_dir / 'export'}/;")
    print(f"       LoadGen logs, results.json and latency histograms in {infer_dir}/Offline/<mode>/")


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
