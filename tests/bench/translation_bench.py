"""translation figures for ``make bench``, each measured side by side in one run; targets in each ``@measures``.

- gnmt_offline_harness_over_raw      samples/s of an Offline run under LoadGen with onnxruntime (infer.py's task:
                                     its QSL, length-sorted groups, ``predict`` - the encoder graph once, then the
                                     step graph in ``translation.beam``'s search with GNMT_SEARCH, beam 5 - and the
                                     detokenized UTF-8 responses) / a raw loop doing that work for the same batches
                                     and nothing else: pad the batch's source ids (+ EOS), the same two onnxruntime
                                     sessions through ``infer.backend_callables``, ``beam.translate`` with
                                     GNMT_SEARCH, detokenization, UTF-8 bytes. Same threads: each session --threads
                                     intra-op threads (as infer.py and the harness give them), torch's own ops (the
                                     search's topk and reordering) on one thread on both sides: at torch's default
                                     (one a core) its OpenMP threads spin against onnxruntime's and the same
                                     harness run took 2 to 8 times as long (111-226 against 519-908 samples/s, 2
                                     cores). The model: the mini GNMT (gnmt-mini: hidden 128, 4 layers) trained for
                                     500 steps through train.py (seed 1, one thread), exported by export.py.
                                     Barely trained, GNMT runs to the 149-token limit on some sentences (20 of the
                                     500 after 300 steps), which would then be most of the work; after 500 steps
                                     none does and its translations are as long as their sources (median 4
                                     subwords, at most 17); the figure refuses a model that reaches the limit. The
                                     mini test set's 500 sentences are loaded; a round is one Offline run of 20
                                     batches of 8 (--batch) sentences and the raw loop over the same 20 batches:
                                     LoadGen draws the same samples in every run (its seeds are fixed; checked),
                                     and the raw side replays the batches the harness was handed in an untimed
                                     first run, so both sides translate the same 160 sentences in the same groups.
                                     Forty rounds, the two sides back to back (each first in every other round);
                                     each side's samples over its total time.
- translation_train_over_plain_loop  training target tokens/s of train.py's data path and step (the Translation
                                     workload as the driver sets it up, gnmt-mini: ``train_batches`` - the
                                     length-bucketed batches of ``translation.data.training.batches`` and its
                                     ``collate`` - and the driver's step: the learning rate set, zero_grad(set_to_none
                                     =True), the workload's loss, backward, step, the loss summed on the device) /
                                     a re-implementation of a plain PyTorch training loop: a
                                     ``torch.utils.data.DataLoader`` over the same (src, tgt) pairs in random order
                                     (a collate that pads with ``pad_sequence``, in the training process), the
                                     forward pass, the same label-smoothed loss, zero_grad, backward, step and
                                     ``.item()`` of the loss each step. Same model (gnmt-mini), batch (64),
                                     optimizer (Adam) and torch threads; the two sides train one model in turn. Each
                                     round, our side trains the first 20 batches of an epoch of ``train_batches`` and
                                     the plain side the same 1,280 pairs in its own random batches, so both count the
                                     same target tokens (the non-PAD tokens of the decoder output, EOS included);
                                     the plain side's random batches of those pairs hold 2.2 times the padded
                                     positions (source and target) of ours.
                                     Eight rounds, the two sides back to back (each first in every other round);
                                     each side's tokens over its total time.
No figure here runs the reference's code: the offline baseline is onnxruntime and translation.beam themselves, the
training one a re-implementation of a plain PyTorch loop.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import math
import time
from pathlib import Path

import numpy as np

from loadgen.backends import BackendConfig, create_backend
from loadgen.harness import run
from loadgen.settings import RunSettings
from tests.bench.sides import alternate, timed_steps
from tests.bench.targets import INFORMATIONAL, at_least, measures

GNMT_TRAIN_STEPS = 500  # see the module docstring: enough that no test sentence runs to the length limit
ROUNDS, PHASE_BATCHES = 40, 20
TRAIN_ROUNDS, TRAIN_STEPS = 8, 20


def _trained_gnmt(work: Path, root: Path) -> Path:
    """The mini GNMT trained for GNMT_TRAIN_STEPS steps by train.py and exported to ONNX by export.py, on one
    thread (on two, with another job on the machine's 2 cores, 100 steps took 59 s against 7 s: torch's OpenMP
    threads spin-wait for each other): the export folder."""
    from translation import export, train

    ckpt = work / "gnmt"
    argv = ["--config", "gnmt-mini", "--data-dir", str(root), "--output", str(ckpt), "--seed", "1",
            "--max-steps", str(GNMT_TRAIN_STEPS), "--eval-sentences", "8", "--threads", "1", "--quiet",
            "--no-save-resume"]
    with contextlib.redirect_stdout(io.StringIO()):  # the run's evaluation and RESULT lines
        assert train.main(train.get_args_parser().parse_args(argv)) == 0
        assert export.main(export.get_args_parser().parse_args(
            ["--checkpoint", str(ckpt), "--formats", "onnxruntime", "--parity-sentences", "16",
             "--threads", "1"])) == 0
    return ckpt / "export"


def _recording_task(root: Path, step_backend):
    """infer.py's task, noting each batch the harness hands it (its ``order`` sees every batch once)."""
    from translation import infer

    class Recording(infer.TranslationTask):
        def __init__(self) -> None:
            super().__init__(root, "gnmt", step_backend)
            self.batches: list[np.ndarray] = []

        def order(self, indices: np.ndarray) -> list[np.ndarray]:
            self.batches.append(indices.copy())
            return super().order(indices)

    return Recording()


@measures(
    # As ssd_offline_harness_over_raw: the harness may cost at most 2 % of the raw loop. Its extra work here
    # (sorting each batch by length, collating, checking and completing the responses) took 0.2-0.5 ms a batch of
    # 8 in profiles on 2 busy cores, beside 11-25 ms of beam search: close to the bound at this batch.
    gnmt_offline_harness_over_raw=at_least(0.98),
    gnmt_offline_raw_samples_per_s=INFORMATIONAL,  # the two sides of the ratio
    gnmt_offline_harness_samples_per_s=INFORMATIONAL,
)
def gnmt_offline_harness_over_raw(work: Path, args) -> dict[str, float]:
    import torch

    from translation import beam, infer, mini
    from translation.data import training

    root = mini.ensure()
    exported = _trained_gnmt(work, root)
    torch.set_num_threads(1)  # the beam search's own tensor work; module docstring
    encoder, step = (create_backend("onnxruntime", BackendConfig(threads=args.threads)).load(
        str(exported / f"gnmt-{part}.onnx")) for part in ("encoder", "step"))
    task = _recording_task(root, step)
    count, per_round = task.total_count, PHASE_BATCHES * args.batch
    # LoadGen's Offline query holds max(count, 1.1 x qps x duration) samples: a 1 ms duration leaves exactly
    # ``per_round``.
    rs = RunSettings(model="gnmt", scenario="Offline", qps=1.0, time_s=0.001, count=per_round,
                     performance_sample_count=count)
    encode, step_fn = infer.backend_callables("gnmt", encoder.predict, step.predict)
    sources, vocab, subwords = task.sources, task.vocab, task.subwords

    def raw_batch(indices: np.ndarray) -> tuple[list[list[int]], list[np.ndarray]]:
        """The translations' ids and the responses' bytes."""
        src, lengths = training.pad_ids([sources[i] for i in indices.tolist()], eos=True)
        found = beam.translate(encode, step_fn, torch.from_numpy(src), torch.from_numpy(lengths), beam.GNMT_SEARCH)
        return found, [np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
                       for text in training.detokenize(vocab, found, subwords)]

    def harness_phase(r: int) -> float:
        task.batches.clear()
        result = run(task, encoder, rs, work / f"offline_{r}", max_batchsize=args.batch, workers=1, trace=False)
        if not all(np.array_equal(a, b) for a, b in zip(task.batches, batches, strict=True)):
            raise RuntimeError("LoadGen issued other samples than in the first run: the raw side's batches differ")
        return per_round / result.qps

    def raw_phase(r: int) -> float:
        start = time.perf_counter()
        for indices in batches:
            raw_batch(indices)
        return time.perf_counter() - start

    # An untimed run of each side: the batches LoadGen issues, and the model's output lengths.
    run(task, encoder, rs, work / "offline_first", max_batchsize=args.batch, workers=1, trace=False)
    batches = list(task.batches)
    assert sum(len(b) for b in batches) == per_round, [len(b) for b in batches]
    longest = max(len(ids) for indices in batches for ids in raw_batch(indices)[0])
    if longest >= beam.GNMT_SEARCH.max_len - 1:
        raise RuntimeError(f"a translation of {longest} tokens reached the search's limit: the model is not trained "
                           "enough for representative work (raise GNMT_TRAIN_STEPS)")
    raw_s, harness_s = alternate(ROUNDS, raw_phase, harness_phase)
    harness, raw = ROUNDS * per_round / harness_s, ROUNDS * per_round / raw_s
    return {"gnmt_offline_harness_over_raw": harness / raw, "gnmt_offline_raw_samples_per_s": raw,
            "gnmt_offline_harness_samples_per_s": harness}


def _plain_collate(pairs):
    """The plain loop's collate: source + EOS, BOS + target, target + EOS, each padded with ``pad_sequence``."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    from translation.models import BOS, EOS, PAD

    bos, eos = torch.tensor([BOS]), torch.tensor([EOS])
    src = [torch.cat([torch.from_numpy(s), eos]) for s, _ in pairs]
    tgt = [torch.from_numpy(t) for _, t in pairs]
    return (pad_sequence(src, batch_first=True, padding_value=PAD), torch.tensor([len(s) for s in src]),
            pad_sequence([torch.cat([bos, t]) for t in tgt], batch_first=True, padding_value=PAD),
            pad_sequence([torch.cat([t, eos]) for t in tgt], batch_first=True, padding_value=PAD))


@measures(
    # train.py's length-bucketed batches (pairs of similar length together, less padding) must be at least as fast
    # per target token as a plain loop's random batches, otherwise its data path is not worth having.
    translation_train_over_plain_loop=at_least(1.0),
    translation_train_tokens_per_s=INFORMATIONAL,  # the two sides of the ratio
    translation_train_plain_tokens_per_s=INFORMATIONAL,
)
def translation_train_over_plain_loop(work: Path, args) -> dict[str, float]:
    import torch

    from loadgen.training.distributed import World
    from translation import mini, train
    from translation.data import training
    from translation.models import LOSS_REDUCTION, label_smoothed_loss

    torch.set_num_threads(args.threads)
    cfg = train.CONFIGS["gnmt-mini"]
    flags = argparse.Namespace(data_dir=str(mini.ensure()), eval_sentences=8)
    workload = train.Translation(flags, cfg, World(), torch.device("cpu"))
    torch.manual_seed(0)
    workload.setup(seed=0)
    model, optimizer = workload.model.train(), workload.optimizer
    pairs = list(zip(workload.train_set.src, workload.train_set.tgt, strict=True))
    steps, loss_sum, plain_losses = [0], torch.zeros(()), []

    def ours_step(batch) -> None:  # the driver's step (loadgen.training.driver)
        for group in optimizer.param_groups:
            group["lr"] = workload.learning_rate(steps[0])
        optimizer.zero_grad(set_to_none=True)
        loss = workload.loss(model, batch)
        loss.backward()
        optimizer.step()
        loss_sum.add_(loss.detach())
        steps[0] += 1

    def plain_step(batch) -> None:
        src, src_lengths, tgt_in, tgt_out = batch
        optimizer.zero_grad()
        loss = label_smoothed_loss(model(src, src_lengths, tgt_in), tgt_out, cfg.smoothing,
                                   reduction=LOSS_REDUCTION[cfg.model])
        loss.backward()
        optimizer.step()
        plain_losses.append(loss.item())

    def round_pairs(r: int) -> np.ndarray:
        """The pairs our side trains on in round ``r``: the first TRAIN_STEPS batches of epoch ``r``."""
        return np.concatenate(training.batches(workload.lengths, cfg.batch_size, workload.seed, r)[:TRAIN_STEPS])

    def plain_phase(r: int) -> float:
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(pairs, round_pairs(r).tolist()),
                                             cfg.batch_size, shuffle=True, collate_fn=_plain_collate,
                                             generator=torch.Generator().manual_seed(r))
        return timed_steps(loader, plain_step, TRAIN_STEPS, untimed=0)

    # Two untimed steps of each side first (an epoch no round uses), so that first calls fall in no round.
    for batch in itertools.islice(workload.train_batches(TRAIN_ROUNDS), 2):
        ours_step(batch)
    for batch in itertools.islice(torch.utils.data.DataLoader(pairs, cfg.batch_size, shuffle=True,
                                                              collate_fn=_plain_collate), 2):
        plain_step(batch)
    # No untimed steps in a phase: neither side starts worker processes, and both must train the same pairs.
    ours_s, plain_s = alternate(TRAIN_ROUNDS, lambda r: timed_steps(workload.train_batches(r), ours_step,
                                                                    TRAIN_STEPS, untimed=0), plain_phase)
    if not (math.isfinite(loss_sum.item()) and all(math.isfinite(v) for v in plain_losses)):
        raise FloatingPointError("a loss is not finite")
    tokens = sum(len(workload.train_set.tgt[i]) + 1 for r in range(TRAIN_ROUNDS) for i in round_pairs(r))
    return {"translation_train_over_plain_loop": plain_s / ours_s, "translation_train_tokens_per_s": tokens / ours_s,
            "translation_train_plain_tokens_per_s": tokens / plain_s}


FIGURES = [gnmt_offline_harness_over_raw, translation_train_over_plain_loop]
