"""DLRM's tables sharded over torchrun's processes on TorchRec (recommendation.sharded), on CPU with gloo.

The mini recipe to its target in one unsharded process and in two sharded ones (table-wise, row-wise). The sharded
run starts from the same weights and takes the same SGD steps, up to float summation order: the weights agree to
1e-5 after 100 steps and the first evaluation's AUC to 1e-4. Not beyond: at the mini recipe's rate of 0.5 the last-bit
differences grow (seen on an AMD EPYC: 4e-7 in the weights at step 300, 3e-3 at step 360, AUC 0.8022 against 0.8034
at step 540, so the sharded run reached the target one evaluation later), so the end of the run is checked for
reaching the target, not for the same step. The sharded checkpoint is the unsharded model in the unsharded layout
(served and exported as it is), a sharded run resumes from it, and
the memory plan refuses a Terabyte run that cannot fit before anything is allocated. A killed rank, ranks out of
sync and an uneven batch, sharded: tests/loadgen/training/test_distributed.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def _train(tmp: Path, name: str, nproc: int, *flags: str) -> dict:
    out = tmp / name
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] \
        if nproc > 1 else [sys.executable]
    proc = subprocess.run([*launcher, "-m", "recommendation.train", "--processed-dir", str(tmp / "processed"),
                           "--threads", "1", "--quiet", "--output", str(out), *flags],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("RESULT,") == 1, proc.stdout  # rank 0 alone prints it
    return {"out": out, **json.loads((out / "train_result.json").read_text())}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    """The mini recipe (a quarter of an epoch to AUC 0.8025): one process unsharded, then two processes sharded
    table-wise and row-wise, preprocessed once. About a minute on two cores."""
    tmp = tmp_path_factory.mktemp("sharded")
    results = {"unsharded": _train(tmp, "unsharded", 1)}
    for sharding in ("table_wise", "row_wise"):
        results[sharding] = _train(tmp, sharding, 2, "--sharding", sharding)
    return results


@pytest.fixture(scope="module")
def short(runs) -> dict[str, dict]:
    """The first 100 steps of the same recipe, unsharded and row-wise: short enough that float summation order
    has not grown past 1e-5 in any weight (see the module's docstring)."""
    tmp = runs["unsharded"]["out"].parent
    return {"unsharded": _train(tmp, "short_unsharded", 1, "--max-steps", "100"),
            "row_wise": _train(tmp, "short_row_wise", 2, "--sharding", "row_wise", "--max-steps", "100")}


@pytest.mark.parametrize("sharding", ["table_wise", "row_wise"])
def test_sharded_runs_follow_one_process_and_reach_the_target(runs, sharding):
    one, two = runs["unsharded"], runs[sharding]
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one["reached_target"] and two["reached_target"]
    # The first evaluation (step 270): the same SGD steps on the same data from the same weights.
    assert two["history"]["auc"][0] == pytest.approx(one["history"]["auc"][0], abs=1e-4)
    assert two["history"]["train loss"][0] == pytest.approx(one["history"]["train loss"][0], rel=1e-5)
    log = (two["out"] / "mlperf_train_log.txt").read_text()
    assert log.count('"key": "run_start"') == 1  # one writer: rank 0


def test_the_sharded_log_passes_the_compliance_checker(runs, tmp_path):
    log = runs["row_wise"]["out"] / "mlperf_train_log.txt"
    proc = subprocess.run([sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", "training",
                           "--ruleset", "2.1.0", "--log_output", str(tmp_path / "cc.log"), str(log)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_a_sharded_checkpoint_is_the_unsharded_model_and_exports(runs, short, tmp_path):
    from recommendation import data, export
    from recommendation.models import load

    # safetensors gathered on rank 0 (nothing unpickled), after the same 100 steps as one process took
    gathered, meta = load(short["row_wise"]["out"])
    unsharded, _ = load(short["unsharded"]["out"])
    assert meta["table_sizes"] == unsharded.table_sizes
    mine, theirs = gathered.state_dict(), unsharded.state_dict()
    assert sorted(mine) == sorted(theirs)  # emb_l.K.weight, bot_l.*, top_l.*: the single-process layout
    for key in mine:
        torch.testing.assert_close(mine[key], theirs[key], atol=1e-5, rtol=0)

    sharded, meta = load(runs["row_wise"]["out"])

    # The test day's AUC of the saved model is the one the sharded run logged: the gather lost nothing.
    processed = runs["row_wise"]["out"].parent / "processed"
    loader = data.BinLoader(data.split_file(next(processed.iterdir()), "test"), 16384, meta["max_ind_range"])
    with torch.no_grad():
        scores, labels = zip(*[(sharded(torch.from_numpy(d), torch.from_numpy(s))[:, 0].numpy(), y)
                               for d, s, y in loader], strict=True)
    from sklearn.metrics import roc_auc_score

    auc = roc_auc_score(np.concatenate(labels), np.concatenate(scores))
    assert auc == pytest.approx(runs["row_wise"]["metrics"]["auc"], abs=1e-6)

    out = tmp_path / "export"
    args = ["--checkpoint", str(runs["row_wise"]["out"]), "--output", str(out)]
    assert export.main(export.get_args_parser().parse_args(args)) == 0  # with its ONNX-vs-PyTorch parity check
    assert (out / "dlrm.pt2").is_file() and (out / "dlrm.onnx").is_file()


def test_a_sharded_run_resumes_where_it_stopped(raw, tmp_path):
    """Resume checkpoints hold the gathered, unsharded model; --resume fills each rank's shards from it."""
    flags = ["--raw-dir", str(raw), "--batch-size", "64", "--test-freq", "3"]
    whole = _train(tmp_path, "whole", 2, *flags, "--max-steps", "12")
    _train(tmp_path, "cut", 2, *flags, "--max-steps", "6")
    resumed = _train(tmp_path, "cut", 2, *flags, "--max-steps", "12", "--resume")
    assert resumed["resumed"] and resumed["steps"] == 12
    assert resumed["history"]["auc"] == pytest.approx(whole["history"]["auc"], abs=1e-6)


def _dry_run(capsys, *flags: str) -> tuple[int, str, str]:
    from recommendation import train

    code = train.main(train.get_args_parser().parse_args(["--config", "terabyte", "--dry-run", *flags]))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_terabyte_plan_refuses_one_80_gb_gpu_in_one_line(capsys):
    code, out, err = _dry_run(capsys, "--world-size", "1", "--device-memory-gb", "80")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("python -m recommendation.train: error: ")
    # The reference's 40M-row tables: 187,767,399 rows x 128 float32.
    assert "need 96.1 GB (96,136,908,288 bytes)" in err and "1 x 80 GB" in err


def test_the_terabyte_plan_fits_eight_80_gb_gpus(capsys):
    code, out, err = _dry_run(capsys, "--world-size", "8", "--device-memory-gb", "80")
    assert code == 0, err
    assert "96,136,908,288 bytes" in out and "the planner's plan:" in out
    per_rank = [line for line in out.splitlines() if line.strip().startswith("rank ")]
    assert len(per_rank) == 8
    used = [int(line.split(": ")[1].split(" bytes")[0].replace(",", "")) for line in per_rank]
    assert sum(used) == 96_136_908_288  # every table placed once
    assert max(used) < 80e9 * 0.85  # within each GPU, less the planner's reserve
    assert out.rstrip().splitlines()[-1].startswith("fits: ")


def test_a_smaller_hash_range_caps_the_tables(capsys):
    code, out, _ = _dry_run(capsys, "--world-size", "1", "--max-ind-range", "10000000")
    assert code == 0  # tb0875_10M's range: 27.7 GB, one 80 GB GPU holds it
    assert "27,680,763,904 bytes" in out


@pytest.mark.parametrize("sharding", ["table_wise", "row_wise", "column_wise"])
def test_forced_sharding_types_are_what_the_planner_plans(sharding, capsys):
    code, out, _ = _dry_run(capsys, "--world-size", "4", "--sharding", sharding)
    assert code == 0
    table = out.split("the planner's plan:")[1].split("per rank:")[0]
    rows = [line for line in table.splitlines() if "| fused" in line]  # param | sharding type | kernel | ranks
    assert len(rows) == 26 and all(f"| {sharding} " in line for line in rows)
