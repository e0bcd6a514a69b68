"""BLEU from LoadGen's ``mlperf_log_accuracy.json``, as training scores it.

Each logged response is the UTF-8 bytes of one detokenized German translation (``infer.py``); the sample index is
the test sentence's line. The BLEU is sacreBLEU over the distinct samples in line order against the raw
references (``newstest2014.de``), lowercased with the ``intl`` tokenizer: the training evaluation's figure, so a
model's LoadGen accuracy run and its last training evaluation agree. ``--tokenized-bleu`` also prints the
reference inference tool's form: BLEU on Moses-tokenized output against the tokenized reference
(``newstest2014.tok.de``), case-sensitive, no further tokenization.

    python -m translation.accuracy --mlperf-accuracy-file results/.../mlperf_log_accuracy.json \\
        --dataset-path build/translation/mini
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadgen.accuracy import Accuracy, Metric, command, in_order, read_log
from loadgen.cli import existing_dir, positive

PROG = "python -m translation.accuracy"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from loadgen.accuracy import get_args_parser as accuracy_parser

    parser = accuracy_parser(PROG, __doc__, add_help)
    parser.add_argument("--dataset-path", type=existing_dir, required=True,
                        help="the prepared WMT folder holding newstest2014.de (default: required)")
    parser.add_argument("--tokenized-bleu", action="store_true",
                        help="also print BLEU on Moses-tokenized text, as the reference's inference tool "
                             "(default: False)")
    parser.add_argument("--count", type=positive(int), default=None,
                        help="score the first N test sentences, for a run with --count N (default: all)")
    return parser


def translations(accuracy_log: str | Path, count: int) -> list[str]:
    """The translations of samples 0..count-1 from the log; every one must be there (an accuracy run answers
    each sample) and decode as UTF-8."""
    by_sample = read_log(accuracy_log)
    missing = sorted(set(range(count)) - set(by_sample))
    extra = sorted(set(by_sample) - set(range(count)))
    if missing or extra:
        what = f"no response for samples {missing[:5]}" if missing else f"samples {extra[:5]} beyond the {count}"
        raise ValueError(f"{accuracy_log}: {what} (the test set has {count} sentences)")
    out = []
    for idx, data in in_order(by_sample):
        try:
            out.append(data.tobytes().decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError(f"{accuracy_log}: sample {idx} is not UTF-8 text ({exc.reason})") from None
    return out


def bleu(accuracy_log: str | Path, dataset: str | Path, tokenized: bool = False,
         count: int | None = None) -> Accuracy:
    """``BLEU`` (0 to 100, sacreBLEU lowercased ``intl``) of the first ``count`` test sentences (default: all), and
    ``tokenized_BLEU`` when asked."""
    import sacrebleu

    from loadgen.data import DataError
    from translation.data import training, wmt

    root = Path(dataset)
    try:
        references = training.read(root / f"{wmt.TEST}.{training.TARGET}")[:count]
        refs = training.read(root / f"{wmt.TEST}.tok.{training.TARGET}")[:count] if tokenized else []
    except DataError as exc:  # the command's one-line error for unreadable input
        raise ValueError(str(exc)) from None
    hypotheses = translations(accuracy_log, len(references))
    metrics = [Metric("BLEU", training.bleu(hypotheses, references), "score")]
    if tokenized:
        tokens = wmt.tokenize(hypotheses, training.TARGET)
        score = sacrebleu.corpus_bleu(tokens, [refs], tokenize="none").score
        metrics.append(Metric("tokenized_BLEU", float(score), "score"))
    return Accuracy(tuple(metrics), {"sentences": len(references)})


def line(result: Accuracy) -> str:
    """The reference tool's ``BLEU: xx.x`` (process_accuracy.py), also written to accuracy.txt beside a LoadGen
    accuracy run."""
    return ", ".join(f"{m.name.replace('_', ' ')}: {m.value:.1f}" for m in result.metrics)


def main(args) -> int:
    return command(PROG, lambda: bleu(args.mlperf_accuracy_file, args.dataset_path, args.tokenized_bleu, args.count),
                   line)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
