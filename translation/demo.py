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
import sys
from pathlib import Path

from loadgen.cli import TrainServeDemo, demo_parser
from translation import export, mini, train

HERE = Path(__file__).resolve().parent
MODEL = "gnmt"
# Expected samples/s for LoadGen, about twice what the mini GNMT does on onnxruntime on 2 cores (about 550
# sentences/s with beam 5): LoadGen plans the run's work from it (an underestimate ends it short of user.conf's 2 s
# minimum, INVALID; an overestimate only makes it longer).
OFFLINE_QPS = "1200"


DEMO = TrainServeDemo("translation", train, ("--config", f"{MODEL}-mini"), export, f"{MODEL}-onnxruntime",
                      tuple(("Offline", OFFLINE_QPS, accuracy) for accuracy in (False, True)), HERE / "user.conf",
                      "BLEU", lambda figures: f"BLEU={figures['BLEU']:.2f}")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    return demo_parser("python -m translation.demo", __doc__, "results/translation", add_help)


def main(args) -> int:
    out = Path(args.output)
    return DEMO.run(mini.ensure(), out / "train" / MODEL, out / f"{MODEL}-onnxruntime")


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
