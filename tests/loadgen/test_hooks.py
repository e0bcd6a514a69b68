"""The Task hooks under the real LoadGen: ragged samples with ``collate``, structured outputs, a task-owned forward
pass over two graphs with a decode loop, the ordering hook, named metrics, and ``cli.execute`` with a factory."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from loadgen import cli
from loadgen.accuracy import Accuracy, Metric, read_log
from loadgen.backends.null import NullBackend
from loadgen.harness import RaggedTask, run
from loadgen.report import Result
from loadgen.settings import SCENARIOS, RunSettings
from tests.loadgen.conftest import NULL_QPS, IndexTask

# --- a detection-like task: samples of different lengths, a graph with no batch axis, a list of dicts ------------


def detection_sample(i: int) -> np.ndarray:
    """Sample i: 1 to 5 values, so a batch mixes lengths."""
    return np.arange(1 + i % 5, dtype=np.float32) + i


class NoBatchAxisDetector(NullBackend):
    """A graph without a batch axis, as some ONNX detection exports are: one sample in, its boxes and scores out."""

    name = "no-batch-axis"

    def predict(self, feeds):
        x = feeds[0]
        assert x.ndim == 1, "this graph takes one sample, without a batch axis"
        return [np.stack([x, x, x + 2, x + 2], axis=1), x / 10]


class DetectionTask(RaggedTask):
    def __init__(self, total: int = 40, performance: int = 16) -> None:
        super().__init__(detection_sample, total, performance)
        self.most_loaded = 0

    def load(self, indices) -> None:
        super().load(indices)
        self.most_loaded = max(self.most_loaded, len(self.loaded))

    def predict(self, backend, inputs):
        padded, lengths = inputs  # the default collate: one field padded, then the lengths
        return [dict(zip(("boxes", "scores"), backend.predict([row[:n]]), strict=True))
                for row, n in zip(padded, lengths.tolist(), strict=True)]

    def postprocess(self, outputs, indices):
        assert isinstance(outputs, list) and all(isinstance(o, dict) for o in outputs), "passed through unchanged"
        return [np.concatenate([o["boxes"], o["scores"][:, None]], axis=1).astype(np.float32) for o in outputs]


def expected_detections(i: int) -> np.ndarray:
    x = detection_sample(i)
    return np.stack([x, x, x + 2, x + 2, x / 10], axis=1).astype(np.float32)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"cpu-{s}-null-ragged-accuracy")
def test_ragged_structured_outputs_in_every_scenario(scenario, tmp_path):
    task = DetectionTask()
    rs = RunSettings(model="synthetic", scenario=scenario, accuracy=True, qps=NULL_QPS[scenario],
                     performance_sample_count=16)
    run(task, NoBatchAxisDetector(), rs, tmp_path, max_batchsize=6)
    responses = read_log(tmp_path / "mlperf_log_accuracy.json", np.float32)
    assert sorted(responses) == list(range(40))
    for i, data in responses.items():
        np.testing.assert_array_equal(data.reshape(-1, 5), expected_detections(i))
    assert task.most_loaded <= 16 and task.loaded == frozenset()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"cpu-{s}-null-ragged-performance")
def test_ragged_task_performance_run_is_valid(scenario, quick_conf, tmp_path):
    rs = RunSettings(model="synthetic", scenario=scenario, qps=NULL_QPS[scenario], user_conf=quick_conf,
                     performance_sample_count=16)
    result = run(DetectionTask(), NoBatchAxisDetector(), rs, tmp_path, max_batchsize=6, trace=False)
    assert result.valid, result.invalid_reasons


def test_default_collate_pads_and_gives_lengths():
    task = RaggedTask(lambda i: (np.full(i + 1, i, np.int64), np.full((i + 1, 2), -i, np.int64)), 3)
    task.load([0, 1, 2])
    tokens, pairs, lengths = task.inputs(np.array([2, 0]))
    np.testing.assert_array_equal(tokens, [[2, 2, 2], [0, 0, 0]])
    assert pairs.shape == (2, 3, 2) and pairs[1].tolist() == [[0, 0], [0, 0], [0, 0]]
    assert lengths.tolist() == [3, 1]
    with pytest.raises(KeyError, match="not loaded"):
        task.inputs(np.array([5 % 3, 7]))


# --- a translation-like task: an encoder run once, a decoder loop with early stop, buckets by length ------------

BOS, EOS, VOCAB, MAX_STEPS = 1, 0, 16, 12


def source(i: int) -> np.ndarray:
    return (np.arange(2 + i % 6, dtype=np.int64) * 3 + i) % VOCAB


def reference(i: int) -> list[int]:
    """The greedy decode of sample i: BOS+1 up to a stop that depends on the encoded source."""
    stop = 3 + int(source(i).sum()) % 7
    return list(range(BOS + 1, stop))


class Encoder(NullBackend):
    name = "encoder"

    def predict(self, feeds):
        tokens, lengths = feeds
        mask = np.arange(tokens.shape[1])[None, :] < lengths[:, None]
        return [(tokens * mask).sum(axis=1)]


class Decoder(NullBackend):
    """Next-token logits from the encoder state and the previous token; counts its steps."""

    name = "decoder"

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def predict(self, feeds):
        state, previous = feeds
        self.steps += 1
        stop = 3 + state % 7
        nxt = np.where(previous + 1 < stop, previous + 1, EOS)
        return [np.eye(VOCAB, dtype=np.float32)[nxt]]


class TranslationTask(RaggedTask):
    """Two graphs (the harness's backend is the encoder; the task owns the decoder) and buckets of 3 by length."""

    def __init__(self, total: int = 30) -> None:
        super().__init__(source, total)
        self.decoder = Decoder()
        self.buckets: list[list[int]] = []
        self.loops: list[int] = []  # decoder steps of each forward pass

    def order(self, indices):
        lengths = np.array([len(self.sample(i)[0]) for i in indices.tolist()])
        by_length = np.argsort(-lengths, kind="stable")
        groups = [by_length[k:k + 3] for k in range(0, len(by_length), 3)]
        self.buckets += [lengths[g].tolist() for g in groups]
        return groups

    def predict(self, backend, inputs):
        (state,) = backend.predict(inputs)  # the encoder, once per batch
        tokens = np.full(len(state), BOS, dtype=np.int64)
        out, done = [], np.zeros(len(state), dtype=bool)
        for _ in range(MAX_STEPS):
            tokens = self.decoder.predict([state, tokens])[0].argmax(axis=1)  # greedy
            done |= tokens == EOS
            out.append(np.where(done, EOS, tokens))
            if done.all():  # early stop: every sentence has ended
                break
        self.loops.append(len(out))
        return np.stack(out, axis=1)

    def postprocess(self, outputs, indices):
        return [row[: int(np.argmax(row == EOS)) if (row == EOS).any() else len(row)] for row in outputs]

    def accuracy(self, accuracy_log):
        responses = read_log(accuracy_log, np.int64)
        exact = sum(r.tolist() == reference(i) for i, r in responses.items())
        return Accuracy((Metric("exact", 100.0 * exact / len(responses), "percent"),
                         Metric("sentences", float(len(responses)), "score")))


@pytest.mark.parametrize("scenario", ["Offline", "Server"], ids=lambda s: f"cpu-{s}-null-autoregressive")
def test_autoregressive_task_decodes_every_sample(scenario, tmp_path):
    task = TranslationTask()
    rs = RunSettings(model="synthetic", scenario=scenario, accuracy=True, qps=NULL_QPS[scenario])
    result = run(task, Encoder(), rs, tmp_path, max_batchsize=8)
    responses = read_log(tmp_path / "mlperf_log_accuracy.json", np.int64)
    assert sorted(responses) == list(range(30))
    for i, r in responses.items():
        assert r.tolist() == reference(i), f"sample {i} got another sample's answer or a wrong decode"
    # Each loop stopped when its longest sentence had ended (its tokens and EOS), never running on to MAX_STEPS.
    assert task.decoder.steps == sum(task.loops)
    assert max(task.loops) == max(len(reference(i)) for i in range(30)) + 1 < MAX_STEPS
    assert all(b == sorted(b, reverse=True) and len(b) <= 3 for b in task.buckets)
    assert result.accuracy["exact"] == 100.0 and "exact=100.000%, sentences=30.000" in result.line()
    figures = json.loads((tmp_path / "results.json").read_text())["figures"]
    assert figures["accuracy"] == {"exact": 100.0, "sentences": 30.0}
    assert figures["metrics"][0] == {"name": "exact", "value": 100.0, "scale": "percent", "text": "100.000%"}


def test_autoregressive_task_in_a_valid_server_run(quick_conf, tmp_path):
    task = TranslationTask()
    rs = RunSettings(model="synthetic", scenario="Server", qps=NULL_QPS["Server"], user_conf=quick_conf)
    result = run(task, Encoder(), rs, tmp_path, max_batchsize=8, trace=False)
    assert result.valid, result.invalid_reasons


def test_order_must_cover_the_batch(tmp_path):
    from loadgen.harness import RunAborted

    class Dropping(TranslationTask):
        def order(self, indices):
            return [np.arange(len(indices))[1:]] if len(indices) > 1 else [np.arange(len(indices))]

    rs = RunSettings(model="synthetic", scenario="Offline", accuracy=True)
    with pytest.raises(RunAborted, match="cover"):
        run(Dropping(), Encoder(), rs, tmp_path, max_batchsize=8)


# --- named metrics in the summary line -------------------------------------------------------------------------

def _line(*metrics: Metric) -> str:
    return Result(scenario="Offline", mode="accuracy", valid=None, invalid_reasons=[], qps=None, mean_s=None,
                  time_s=1.0, queries=10, tiles={}, accuracy=Accuracy(metrics), output_dir=".", files={}).line()


@pytest.mark.parametrize(("metric", "shown"), [
    (Metric("top1", 0.76, "fraction"), "top1=76.000%"),
    (Metric("AUC", 0.80251, "fraction"), "AUC=80.251%"),
    (Metric("mAP", 37.55, "percent"), "mAP=37.550%"),
    (Metric("BLEU", 24.0, "score"), "BLEU=24.000"),
], ids=lambda v: v.name if isinstance(v, Metric) else "")
def test_a_named_metric_prints_in_its_scale(metric, shown):
    line = _line(metric)
    assert f"time=1.000, {shown}, queries=10" in line
    assert "2400" not in line and "7600" not in line


def test_several_metrics_print_in_order():
    line = _line(Metric("bbox_mAP", 37.5, "percent"), Metric("segm_mAP", 33.9, "percent"))
    assert "bbox_mAP=37.500%, segm_mAP=33.900%, queries=" in line


def test_a_metric_refuses_an_unknown_scale():
    with pytest.raises(ValueError, match="scale"):
        Metric("BLEU", 24.0, "points")


# --- cli.execute with a task factory ---------------------------------------------------------------------------

def counting_factory(marks: str, args):
    """Builds the task, and leaves a mark naming the process that built it."""
    Path(marks, f"{os.getpid()}-{len(os.listdir(marks))}").touch()
    return IndexTask(total=32, performance=32)


def test_multi_scenario_execute_builds_the_task_once_per_run(tmp_path, monkeypatch, quick_conf, capsys):
    # A command line that would fail if anything re-ran it: the runs must come from args and the factory alone.
    monkeypatch.setattr(sys, "argv", ["/nonexistent/program", "--no-such-flag"])
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "/nonexistent/program", "--no-such-flag"])
    marks = tmp_path / "marks"
    marks.mkdir()
    parser = cli.ArgumentParser(prog="toy")
    cli.add_inference_args(parser, backends=["null"])
    args = cli.parse_args(parser, ["--backend", "null", "--model-name", "synthetic", "--scenario",
                                   "Offline,SingleStream", "--user-conf", quick_conf, "--qps", "100000",
                                   "--max-batchsize", "6", "--output", str(tmp_path / "out")])
    assert cli.execute(args, functools.partial(counting_factory, str(marks)), prog="toy") == 0
    builders = [name.split("-")[0] for name in os.listdir(marks)]
    assert len(builders) == 2 and len(set(builders)) == 2 and str(os.getpid()) not in builders
    for scenario in ("Offline", "SingleStream"):
        assert json.loads((tmp_path / "out" / scenario / "performance" / "results.json").read_text())["status"] == "ok"


def test_single_run_execute_builds_the_task_in_process(tmp_path, quick_conf):
    marks = tmp_path / "marks"
    marks.mkdir()
    parser = cli.ArgumentParser(prog="toy")
    cli.add_inference_args(parser, backends=["null"])
    args = cli.parse_args(parser, ["--backend", "null", "--model-name", "synthetic", "--scenario", "Offline",
                                   "--accuracy", "--output", str(tmp_path / "out")])
    assert cli.execute(args, functools.partial(counting_factory, str(marks)), prog="toy") == 0
    assert [name.split("-")[0] for name in os.listdir(marks)] == [str(os.getpid())]
