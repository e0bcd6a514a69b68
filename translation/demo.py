"""``make demo``'s translation stage: GNMT on the embedded mini set, offline, in a few minutes on 2 cores.

1. build the mini set (real English-German translations from CLDR and permissively licensed gettext catalogues,
   in WMT's layout, tokenized and BPE'd as the real data is);
2. train the mini GNMT (the ``gnmt-mini`` config) until its BLEU on the held-out test set reaches 25.0, logging
   mllog (ruleset 0.7.0 asks for the real target even in the open division);
3. export it to TorchScript and ONNX (the encoder and the decoder step), each checked against PyTorch by
   translating the test set;
4. run Offline under LoadGen with onnxruntime, in performance and accuracy modes;
5. print time-to-train, BLEU, QPS, latency percentiles, and where every file is.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from loadgen.cli import demo_command, demo_loadgen_run, demo_parser, demo_steps, demo_summary_line, demo_train_line
from translation import export, mini, train

HERE = Path(__file__).resolve().parent
MODEL = "gnmt"
# Expected samples/s for LoadGen, about twice what the mini GNMT does on onnxruntime on 2 cores (about 250
# sentences/s with beam 5): LoadGen plans the run's work from it (an underestimate ends it short of user.conf's 2 s
# minimum, an overestimate only makes it longer).
OFFLINE_QPS = "500"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    return demo_parser("python -m translation.demo", __doc__, "results/translation", add_help)


def main(args) -> int:
    out = Path(args.output)
    root = mini.ensure()
    print(f"== translation demo: mini set at {root}", flush=True)
    train_dir, infer_dir = out / "train" / MODEL, out / f"{MODEL}-onnxruntime"
    steps = [
        (f"train {MODEL}-mini",
         demo_command(train, ["--config", f"{MODEL}-mini", "--output", train_dir, "--data-dir", root, "--quiet"])),
        ("export", demo_command(export, ["--checkpoint", train_dir])),
    ]
    steps += [(f"Offline {'accuracy' if accuracy else 'performance'}",
               functools.partial(demo_loadgen_run, "translation.infer", f"{MODEL}-onnxruntime", train_dir / "export",
                                 root, "Offline", OFFLINE_QPS, HERE / "user.conf", infer_dir, accuracy))
              for accuracy in (False, True)]
    code = demo_steps("translation", steps)
    if code:
        return code
    print("\n== translation demo summary ==")
    print(demo_train_line(train_dir, "BLEU"))
    print(demo_summary_line(infer_dir, "Offline", lambda figures: f"BLEU={figures['BLEU']:.2f}"))
    print(f"files: mllog log, checkpoint, training curve in {train_dir}/; models in {train_dir / 'export'}/;")
    print(f"       LoadGen logs, results.json and latency histograms in {infer_dir}/Offline/<mode>/")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
