"""translation.train: one training step of each model, what ruleset 0.7.0 says of a short mini run's log (it asks
for the real BLEU targets even in the open division), closed-config excerpts with every closed key, the two
learning-rate schedules, and the GNMT mini recipe to its target (slow)."""

from __future__ import annotations

import json
import math

import pytest

from tests import mllog_logs
from tests.mllog_logs import mllog_events
from translation import train

RULESET = "0.7.0"
GNMT_CLOSED = (
    "global_batch_size",
    "opt_base_learning_rate",
    "opt_learning_rate_alt_decay_func",
    "opt_learning_rate_alt_warmup_func",
    "opt_learning_rate_decay_factor",
    "opt_learning_rate_decay_interval",
    "opt_learning_rate_decay_steps",
    "opt_learning_rate_remain_steps",
    "opt_learning_rate_warmup_steps",
    "max_sequence_length",
)
TRANSFORMER_CLOSED = (
    "global_batch_size",
    "opt_name",
    "opt_base_learning_rate",
    "opt_learning_rate_warmup_steps",
    "opt_adam_beta_1",
    "opt_adam_beta_2",
    "opt_adam_epsilon",
    "max_sequence_length",
)


def run_train(tmp_path, root, *extra) -> int:
    args = train.get_args_parser().parse_args(
        [
            "--data-dir",
            str(root),
            "--output",
            str(tmp_path),
            "--quiet",
            "--threads",
            "2",
            "--eval-sentences",
            "4",
            *extra,
        ]
    )
    return train.main(args)


def checker_says(log) -> str:
    proc = mllog_logs.checker(log, RULESET)
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("config", ["gnmt-mini", "transformer-mini"])
def test_one_step_and_what_the_checker_says_of_the_short_log(config, tmp_path, mini_root):
    assert run_train(tmp_path, mini_root, "--config", config, "--max-steps", "1") == 0
    log = tmp_path / "mlperf_train_log.txt"
    events = {e["key"]: e for e in mllog_events(log)}
    model = config.split("-")[0]
    assert events["submission_benchmark"]["value"] == model and events["submission_division"]["value"] == "open"
    bleu = events["eval_accuracy"]["value"]
    assert 0 <= bleu < 0.24 and "epoch_num" in events["eval_accuracy"]["metadata"]  # a fraction, not 0..100
    assert events["max_sequence_length"]["metadata"]["method"] == "discard"
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["model"] == model and meta["vocab_size"] % 8 == 0
    # 0.7.0 wants BLEU >= 24.0 (gnmt) / 25.0 (transformer) even in the open division: one step is far from it,
    # and the checker says so.
    said = checker_says(log)
    assert "Failed checks for eval_accuracy" in said and "FAILED" in said and "SUCCESS" not in said, said


@pytest.mark.parametrize(
    ("config", "keys", "bleu"), [("gnmt", GNMT_CLOSED, 0.241), ("transformer", TRANSFORMER_CLOSED, 0.251)]
)
def test_closed_config_excerpt_passes_and_its_rules_bite(config, keys, bleu, tmp_path, mini_root):
    # The reference config for one step on the mini set (at a small batch: the mini set is no WMT), then an
    # evaluation at the closed target written after run_start: no test-sized run reaches it.
    assert run_train(tmp_path, mini_root, "--config", config, "--batch-size", "8", "--max-steps", "1") == 0
    log = tmp_path / "mlperf_train_log.txt"
    events = {e["key"]: e["value"] for e in mllog_events(log)}
    assert events["submission_division"] == "closed" and all(k in events for k in keys)
    if config == "gnmt":
        assert events["opt_base_learning_rate"] == 1e-3 and events["opt_learning_rate_warmup_steps"] == 200
        assert events["opt_learning_rate_decay_factor"] == 0.5 and events["opt_learning_rate_decay_steps"] == 4
        assert events["max_sequence_length"] == 50
    else:
        assert events["opt_name"] == "adam" and events["opt_adam_epsilon"] == 1e-9
        assert (events["opt_adam_beta_1"], events["opt_adam_beta_2"]) == (0.9, 0.997)
    good = checker_says(mllog_logs.closed_excerpt(log, tmp_path / "closed.txt", bleu, 1))
    assert "SUCCESS" in good, good
    short = checker_says(mllog_logs.closed_excerpt(log, tmp_path / "short.txt", bleu - 0.01, 1))
    assert "SUCCESS" not in short
    if config == "transformer":  # the rule's epsilon
        wrong = checker_says(mllog_logs.closed_excerpt(log, tmp_path / "eps.txt", bleu, 1, opt_adam_epsilon=1e-8))
        assert "SUCCESS" not in wrong


def test_gnmt_schedule_warms_up_exponentially_then_halves_four_times_over_the_last_third():
    cfg = train.CONFIGS["gnmt"]
    total = 3000
    remain, interval = train.gnmt_decay(cfg, total)
    assert (remain, interval) == (2000, 250)
    lr = [train.gnmt_learning_rate(s, cfg, total) for s in range(total + 500)]
    assert lr[0] == pytest.approx(0.01 * cfg.lr) and lr[200] == cfg.lr
    assert lr[100] == pytest.approx(cfg.lr * math.exp(math.log(0.01) * 0.5))
    assert lr[1999] == cfg.lr and lr[2000] == cfg.lr / 2 and lr[2250] == cfg.lr / 4
    assert lr[2750] == cfg.lr / 16 and lr[total + 499] == cfg.lr / 16  # at most 4 halvings


def test_transformer_schedule_is_linear_warmup_then_inverse_square_root():
    cfg = train.CONFIGS["transformer"]
    assert train.transformer_learning_rate(499, cfg) == pytest.approx(cfg.lr / 2)
    assert train.transformer_learning_rate(999, cfg) == pytest.approx(cfg.lr)
    assert train.transformer_learning_rate(3999, cfg) == pytest.approx(cfg.lr / 2)


@pytest.mark.slow
def test_gnmt_mini_recipe_reaches_bleu_25_and_the_log_passes_the_checker(tmp_path, mini_root, capsys):
    # The demo's recipe on the whole mini set: it must stop because the BLEU reached 25.0 on the held-out test set
    # (a fraction in the log), not because the epochs ran out; 0.7.0 then accepts the open log.
    cfg = train.CONFIGS["gnmt-mini"]
    args = train.get_args_parser().parse_args(["--data-dir", str(mini_root), "--output", str(tmp_path), "--quiet"])
    assert train.main(args) == 0
    result = json.loads((tmp_path / "train_result.json").read_text())
    assert result["reached_target"] and result["metrics"]["BLEU"] >= 0.25 and result["epochs"] < cfg.epochs
    assert capsys.readouterr().out.count("RESULT,gnmt,1,") == 1
    assert "SUCCESS" in checker_says(tmp_path / "mlperf_train_log.txt")
    # Both backends translate the whole mini test set as PyTorch does (export's parity check, >= 99 % identical).
    from translation import export

    assert export.main(export.get_args_parser().parse_args(["--checkpoint", str(tmp_path)])) == 0
    meta = json.loads((tmp_path / "export" / "export.json").read_text())
    assert meta["sentences"] == 500 and meta["pytorch_BLEU"] >= 25
    assert all(p["identical"] >= 0.99 for p in meta["parity"].values()) and set(meta["parity"]) == set(export.FORMATS)


def test_transformer_reads_a_sentencepiece_folder(tmp_path, mini_root):
    # The Transformer's real data (download_dataset.sh --dataset wmt17) is sentencepiece'd, not BPE'd: the same
    # raw files of the mini set prepared that way train and evaluate alike.
    import shutil

    from translation.data import training, wmt

    folder = tmp_path / "wmt17"
    folder.mkdir()
    for name in ("train.en", "train.de", "newstest2013.en", "newstest2013.de", "newstest2014-deen-src.en.sgm",
                 "newstest2014-deen-ref.de.sgm"):
        shutil.copy(mini_root / name, folder / name)
    wmt.prepare_sentencepiece(folder, vocab_size=600, progress=False, sample=0, workers=1)
    subwords = training.Subwords.of(folder)
    assert (subwords.kind, subwords.size) == ("spm", 600)
    refs = training.read(folder / "newstest2014.de")[:5]
    pieces = wmt.encode_pieces(refs, folder / "spm.ende.600.model")
    assert subwords.text(pieces) == refs  # pieces back to the raw text
    out = tmp_path / "run"
    assert run_train(out, folder, "--config", "transformer-mini", "--max-steps", "2") == 0
    assert json.loads((out / "model.json").read_text())["vocab_size"] == len(subwords.vocab())
