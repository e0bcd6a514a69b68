"""GNMT under LoadGen on the mini set: both backends in all four scenarios (a model trained for seconds: this tests
the plumbing), responses as UTF-8 text, the BLEU agreeing with export's parity check, the accuracy tool on logs of
known BLEU, and the usage errors of the profiles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loadgen.accuracy import read_log
from loadgen.settings import SCENARIOS
from translation import accuracy, infer
from translation.data import training

from .conftest import TEST_SENTENCES

CASES = [(b, s) for b in infer.BACKENDS_OFFERED for s in SCENARIOS]


def run(argv) -> int:
    return infer.main(infer.cli.parse_args(infer.get_args_parser(), argv, infer.PROFILES))


def common(backend, scenario, model_dir, root, out, model="gnmt") -> list[str]:
    return ["--profile", f"{model}-{backend}", "--model-dir", str(model_dir), "--dataset-path", str(root),
            "--scenario", scenario, "--count", str(TEST_SENTENCES), "--samples-per-query", "2", "--threads", "2",
            "--output", str(out)]


@pytest.mark.parametrize(("backend", "scenario"), CASES, ids=[f"cpu-{s}-{b}" for b, s in CASES])
def test_accuracy_run(backend, scenario, gnmt_export, mini_root, tmp_path):
    assert run([*common(backend, scenario, gnmt_export, mini_root, tmp_path), "--accuracy"]) == 0
    figures = json.loads((tmp_path / scenario / "accuracy" / "results.json").read_text())["figures"]["accuracy"]
    assert figures["sentences"] == TEST_SENTENCES
    # Under LoadGen the exported graphs translate as they did in export.py's parity check on the same sentences.
    meta = json.loads((gnmt_export / "export.json").read_text())
    assert meta["sentences"] == TEST_SENTENCES and meta["parity"][backend]["identical"] >= 0.99
    assert figures["BLEU"] == pytest.approx(meta["parity"][backend]["BLEU"], abs=1e-6)
    log = read_log(tmp_path / scenario / "accuracy" / "mlperf_log_accuracy.json")
    assert sorted(log) == list(range(TEST_SENTENCES))
    texts = [data.tobytes().decode("utf-8") for _, data in sorted(log.items())]
    assert all("@@" not in t and "<unk>" not in t for t in texts)  # BPE undone, detokenized text


@pytest.mark.parametrize("backend", infer.BACKENDS_OFFERED)
def test_transformer_accuracy_run(backend, transformer_export, mini_root, tmp_path):
    assert run([*common(backend, "Offline", transformer_export, mini_root, tmp_path, "transformer"), "--accuracy"]) == 0
    figures = json.loads((tmp_path / "Offline" / "accuracy" / "results.json").read_text())["figures"]["accuracy"]
    meta = json.loads((transformer_export / "export.json").read_text())
    assert meta["model"] == "transformer" and meta["parity"][backend]["identical"] >= 0.99
    assert figures["BLEU"] == pytest.approx(meta["parity"][backend]["BLEU"], abs=1e-6)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_performance_run(scenario, gnmt_export, mini_root, tmp_path):
    argv = [*common("onnxruntime", scenario, gnmt_export, mini_root, tmp_path), "--qps", "50", "--time", "0"]
    assert run(argv) == 0
    figures = json.loads((tmp_path / scenario / "performance" / "results.json").read_text())["figures"]
    assert figures["queries"] == (1 if scenario == "Offline" else TEST_SENTENCES)


def test_groups_cover_a_batch_once_sorted_by_length(gnmt_export, mini_root):
    task = infer.TranslationTask(mini_root, "gnmt", None)
    indices = np.arange(100)[::-1].copy()
    groups = task.order(indices)
    assert sorted(np.concatenate(groups).tolist()) == list(range(100)) and all(len(g) <= infer.GROUP for g in groups)
    lengths = [len(task.sources[i]) for g in groups for i in indices[g]]
    assert lengths == sorted(lengths)


def write_log(path, texts: dict[int, str]) -> str:
    entries = [
        {"seq_id": n, "qsl_idx": idx, "data": t.encode("utf-8").hex(), "size": len(t.encode("utf-8"))}
        for n, (idx, t) in enumerate(texts.items())
    ]
    path.write_text(json.dumps(entries))
    return str(path)


def test_accuracy_tool_on_logs_of_known_bleu(mini_root, tmp_path, capsys):
    refs = training.read(mini_root / "newstest2014.de")
    perfect = write_log(tmp_path / "perfect.json", dict(enumerate(refs)))
    assert (
        accuracy.main(
            accuracy.get_args_parser().parse_args(
                ["--mlperf-accuracy-file", perfect, "--dataset-path", str(mini_root), "--tokenized-bleu"]
            )
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == "BLEU: 100.0, tokenized BLEU: 100.0"
    # Half the sentences replaced by another's: the BLEU is sacreBLEU's own on the same texts.
    hyps = [r if i % 2 else refs[(i + 7) % len(refs)] for i, r in enumerate(refs)]
    log = write_log(tmp_path / "half.json", dict(reversed(list(enumerate(hyps)))))  # LoadGen's order is any
    import sacrebleu

    expected = sacrebleu.corpus_bleu(hyps, [refs], lowercase=True, tokenize="intl").score
    assert accuracy.bleu(log, mini_root)["BLEU"] == pytest.approx(expected)
    assert 10 < expected < 90


def test_accuracy_tool_names_a_missing_sample_and_bad_text(mini_root, tmp_path, capsys):
    refs = training.read(mini_root / "newstest2014.de")
    short = write_log(tmp_path / "short.json", dict(enumerate(refs[:-1])))
    assert (
        accuracy.main(
            accuracy.get_args_parser().parse_args(["--mlperf-accuracy-file", short, "--dataset-path", str(mini_root)])
        )
        == 1
    )
    assert f"no response for samples [{len(refs) - 1}]" in capsys.readouterr().err
    entries = json.loads((tmp_path / "short.json").read_text())
    entries.append({"seq_id": 9999, "qsl_idx": len(refs) - 1, "data": "fffe", "size": 2})
    (tmp_path / "bad.json").write_text(json.dumps(entries))
    assert (
        accuracy.main(
            accuracy.get_args_parser().parse_args(
                ["--mlperf-accuracy-file", str(tmp_path / "bad.json"), "--dataset-path", str(mini_root)]
            )
        )
        == 1
    )
    assert "not UTF-8 text" in capsys.readouterr().err
