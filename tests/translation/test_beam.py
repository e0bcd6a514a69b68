"""translation.beam: the one beam search. On table-driven fake models whose best answers are known it beats greedy
decoding, normalises lengths, applies the coverage penalty, stops early only when nothing live can win, and keeps the
length limits; on tiny real models beam 1 is the argmax path, a sentence's translation does not depend on its batch,
overfit toy pairs come back exactly, and onnxruntime graphs give PyTorch's translations."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from translation.beam import (
    GNMT_SEARCH,
    SEARCH,
    TRANSFORMER_SEARCH,
    Search,
    beam_search,
    coverage_penalty,
    greedy,
    length_norm,
    translate,
)
from translation.models import BOS, EOS, PAD, build, export_onnx, label_smoothed_loss, onnx_callables

A, B, C, D = 4, 5, 6, 7
TINY = {"gnmt": {"hidden": 24, "layers": 4}, "transformer": {"d_model": 24, "ffn": 48, "heads": 4, "layers": 2}}


class Table:
    """A fake model whose next-token distribution, and attention over a 2-token source, depend on the last token
    only; unlisted tokens get 1e-9."""

    def __init__(self, probs: dict[int, dict[int, float]], attention: dict[int, list[float]] | None = None) -> None:
        table = torch.full((8, 8), 1e-9)
        for last, row in probs.items():
            for token, p in row.items():
                table[last, token] = p
        self.log_probs = (table / table.sum(1, keepdim=True)).log()
        self.attention = None
        if attention is not None:
            self.attention = torch.zeros(8, 2)
            for last, row in attention.items():
                self.attention[last] = torch.tensor(row)
        self.calls = 0

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (src.float(),)

    def step(self, prefix: torch.Tensor, state: tuple[torch.Tensor, ...]):
        self.calls += 1
        last = prefix[:, -1]
        return self.log_probs[last], None if self.attention is None else self.attention[last], state

    def search(self, sentences: int = 1, **kwargs) -> list[list[int]]:
        src = torch.full((sentences, 2), A)
        return beam_search(self.encode, self.step, src, torch.full((sentences,), 2), **kwargs)


def test_the_beam_finds_what_greedy_decoding_misses():
    table = Table(
        {BOS: {A: 0.55, B: 0.45}, A: {C: 0.4, D: 0.3, EOS: 0.3}, C: {EOS: 1}, D: {EOS: 1}, B: {EOS: 0.95, C: 0.05}}
    )
    assert table.search(beam=1, max_len=10, alpha=0.0) == [[A, C]]  # 0.55 * 0.4 = 0.22
    assert greedy(table.encode, table.step, torch.full((1, 2), A), torch.tensor([2]), max_len=10) == [[A, C]]
    assert table.search(beam=2, max_len=10, alpha=0.0) == [[B]]  # 0.45 * 0.95 = 0.43
    assert table.search(sentences=3, beam=2, max_len=10, alpha=0.0) == [[B]] * 3


def test_length_normalisation_is_wu_et_al():
    assert length_norm(1.0, 0.6) == 1.0 and length_norm(10.0, 0.6) == pytest.approx((15 / 6) ** 0.6)
    assert length_norm(7.0, 1.0, len_const=3.0) == pytest.approx(10 / 4)
    table = Table({BOS: {EOS: 0.55, A: 0.45}, A: {EOS: 1}})
    assert table.search(beam=2, max_len=10, alpha=0.0) == [[]]  # log 0.55 > log 0.45
    # alpha 2: log 0.55 / 1 = -0.598 < log 0.45 / (7/6)^2 = -0.587; the longer hypothesis, found after the shorter
    # one finished, wins: the search did not stop while it could still come first
    assert table.search(beam=2, max_len=10, alpha=2.0) == [[A]]
    assert table.search(beam=1, max_len=10, alpha=2.0) == [[]]  # beam 1 is greedy whatever alpha says


def test_the_coverage_penalty_favours_a_hypothesis_that_reads_the_whole_source():
    total = torch.tensor([[1.5, 0.5, 0.0], [1.0, 1.0, 0.0]])  # position 2 never attended (padding): it counts 0
    torch.testing.assert_close(coverage_penalty(total, 0.1), torch.tensor([0.1 * math.log(0.5), 0.0]))
    table = Table(
        {BOS: {A: 0.6, B: 0.4}, A: {EOS: 1}, B: {EOS: 1}}, attention={BOS: [0.5, 0.5], A: [1.0, 0.0], B: [0.5, 0.5]}
    )
    assert table.search(beam=2, max_len=10, alpha=0.0) == [[A]]
    # [A] attends (1.5, 0.5): log 0.6 + log 0.5 = -1.20 < [B], which attends (1, 1): log 0.4 = -0.92
    assert table.search(beam=2, max_len=10, alpha=0.0, coverage=1.0) == [[B]]
    # the beams cross at step 2 ([B, D] comes from the 2nd row, [A, C] from the 1st): the attention must follow
    crossing = Table(
        {
            BOS: {A: 0.52, B: 0.48},
            A: {C: 0.3, D: 0.25, B: 0.25, EOS: 0.2},
            B: {D: 0.9, EOS: 0.1},
            C: {EOS: 1},
            D: {EOS: 1},
        },
        attention={BOS: [0.5, 0.5], A: [0.0, 1.0], B: [1.0, 0.0], C: [0.5, 0.5], D: [1.0, 0.0]},
    )
    assert crossing.search(beam=2, max_len=10, alpha=0.0) == [[B, D]]  # 0.48 * 0.9 against 0.52 * 0.3
    # [B, D] attends (2.5, 0.5): log 0.432 + 2 log 0.5 = -2.22 < [A, C], which attends (1, 2): log 0.156 = -1.86
    assert crossing.search(beam=2, max_len=10, alpha=0.0, coverage=2.0) == [[A, C]]
    with pytest.raises(ValueError, match="needs the model's attention"):
        Table({BOS: {EOS: 1}}).search(beam=2, max_len=10, alpha=0.0, coverage=0.1)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_the_search_stops_once_nothing_live_can_win(alpha):
    table = Table({BOS: {EOS: 0.9, A: 0.1}, A: {A: 1.0}})
    assert table.search(beam=3, max_len=50, alpha=alpha) == [[]]
    assert table.calls == 1  # one finished hypothesis of 3, but log 0.1 / lp(50) < log 0.9: no need to go on


def test_the_length_limits_hold_and_pad_is_never_generated():
    table = Table({BOS: {PAD: 0.5, A: 0.5}, A: {PAD: 0.5, A: 0.5}})  # EOS is (nearly) impossible
    assert table.search(beam=3, max_len=6, alpha=0.6) == [[A] * 5]  # the 6th token must be EOS
    src = torch.tensor([[A, PAD, PAD], [A, B, C]])
    found = beam_search(
        table.encode, table.step, src, torch.tensor([1, 3]), beam=2, max_len=None, alpha=0.6, extra_len=2
    )
    assert found == [[A] * 2, [A] * 4]  # each sentence's own source length + 2, EOS included
    found = beam_search(table.encode, table.step, src, torch.tensor([1, 3]), beam=2, max_len=4, alpha=0.6, extra_len=2)
    assert found == [[A] * 2, [A] * 3]


def test_the_reference_settings():
    assert (GNMT_SEARCH.beam, GNMT_SEARCH.alpha, GNMT_SEARCH.coverage, GNMT_SEARCH.len_const) == (5, 0.6, 0.1, 5.0)
    assert (TRANSFORMER_SEARCH.beam, TRANSFORMER_SEARCH.alpha, TRANSFORMER_SEARCH.coverage) == (4, 0.6, 0.0)
    assert TRANSFORMER_SEARCH.extra_len == 50 and SEARCH == {"gnmt": GNMT_SEARCH, "transformer": TRANSFORMER_SEARCH}
    with pytest.raises(ValueError, match="length limit"):
        Search(beam=4, alpha=0.6)
    with pytest.raises(ValueError, match="beam must be at least 1"):
        Search(beam=0, alpha=0.6, max_len=10)


@pytest.fixture(scope="module")
def lively():
    """Tiny models trained 80 steps to copy 16 random sentences: far from done, but their translations depend on the
    source and end at various lengths (random weights would repeat one token, whatever the source)."""
    models = {}

    def get(name: str):
        if name not in models:
            torch.manual_seed(0)
            model = build(name, 17, **TINY[name], dropout=0.0)
            lengths = torch.randint(1, 9, (16,), generator=torch.Generator().manual_seed(0))
            src, _ = sentences(lengths.tolist(), seed=10)
            tgt_in = torch.cat([torch.full((16, 1), BOS), src], 1)
            tgt_out = torch.cat([src, torch.full((16, 1), PAD)], 1)
            tgt_out[torch.arange(16), lengths] = EOS
            optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
            for _ in range(80):
                loss = label_smoothed_loss(model(src, lengths, tgt_in), tgt_out, reduction="token")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            models[name] = model.eval()
        return models[name]

    return get


def sentences(lengths: list[int], vocab: int = 17, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(4, vocab, (len(lengths), max(lengths)), generator=generator)
    for i, n in enumerate(lengths):
        src[i, n:] = PAD
    return src, torch.tensor(lengths)


def argmax_path(model, src: torch.Tensor, max_len: int) -> list[int]:
    """Greedy decoding of one unpadded sentence through the teacher-forced forward pass, token by token."""
    tokens = [BOS]
    with torch.no_grad():
        while len(tokens) < max_len:  # the max_len-th generated token could only be EOS
            logits = model(src.unsqueeze(0), torch.tensor([src.numel()]), torch.tensor([tokens]))[0, -1]
            logits[PAD] = float("-inf")
            token = int(logits.argmax())
            if token == EOS:
                break
            tokens.append(token)
    return tokens[1:]


def reference_search(name: str, **changes) -> Search:
    return dataclasses.replace(SEARCH[name], **changes)


@pytest.mark.parametrize("name", ["gnmt", "transformer"])
def test_beam_1_is_the_argmax_path(name, lively):
    model = lively(name)
    src, lengths = sentences([5, 2, 7, 4, 6, 3], seed=4)
    expected = [argmax_path(model, src[i, :n], 9) for i, n in enumerate(lengths.tolist())]
    assert len({len(e) for e in expected}) > 2
    search = reference_search(name, beam=1, max_len=9, extra_len=None)  # GNMT's coverage penalty included
    assert translate(model.encode, model.decode_step, src, lengths, search) == expected
    assert greedy(model.encode, model.decode_step, src, lengths, max_len=9) == expected


@pytest.mark.parametrize("name", ["gnmt", "transformer"])
def test_a_sentence_gets_the_same_translation_alone_or_in_a_batch(name, lively):
    model = lively(name)
    src, lengths = sentences([6, 1, 9, 3, 4], seed=5)
    search = reference_search(name, max_len=12, extra_len=6)  # the reference's beam, alpha and coverage
    together = translate(model.encode, model.decode_step, src, lengths, search)
    alone = [
        translate(model.encode, model.decode_step, src[i : i + 1, :n], lengths[i : i + 1], search)[0]
        for i, n in enumerate(lengths.tolist())
    ]
    assert together == alone
    assert len({len(t) for t in together}) > 2  # hypotheses of several lengths: finishing differs per sentence
    shuffled = [3, 0, 4, 2, 1]
    assert translate(model.encode, model.decode_step, src[shuffled], lengths[shuffled], search) == [
        together[i] for i in shuffled
    ]


TOY = [
    ([5, 6, 7, 8], [8, 7, 6, 5]),
    ([9, 10, 11], [11, 10, 9]),
    ([5, 9, 6, 10, 7], [7, 10, 6, 9, 5]),
    ([11, 8], [8, 11]),
]  # reversal


@pytest.mark.parametrize("name", ["gnmt", "transformer"])
def test_overfit_toy_pairs_come_back_from_the_references_search(name):
    torch.manual_seed(0)
    model = build(name, 12, **TINY[name], dropout=0.0)
    width, steps = max(len(s) for s, _ in TOY), max(len(t) for _, t in TOY) + 1
    src, tgt_in, tgt_out = (torch.full((len(TOY), n), PAD) for n in (width, steps, steps))
    for i, (s, t) in enumerate(TOY):
        src[i, : len(s)] = torch.tensor(s)
        tgt_in[i, : len(t) + 1] = torch.tensor([BOS, *t])
        tgt_out[i, : len(t) + 1] = torch.tensor([*t, EOS])
    lengths = torch.tensor([len(s) for s, _ in TOY])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2 if name == "gnmt" else 3e-3)
    for _ in range(150):
        loss = label_smoothed_loss(model(src, lengths, tgt_in), tgt_out, reduction="token")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert translate(model.encode, model.decode_step, src, lengths, SEARCH[name]) == [t for _, t in TOY]


@pytest.mark.parametrize("name", ["gnmt", "transformer"])
def test_onnxruntime_translates_as_pytorch_does(name, tmp_path, lively):
    ort = pytest.importorskip("onnxruntime")
    model = lively(name)
    export_onnx(model, tmp_path / "encoder.onnx", tmp_path / "step.onnx")
    encode, step = onnx_callables(
        ort.InferenceSession(str(tmp_path / "encoder.onnx")), ort.InferenceSession(str(tmp_path / "step.onnx"))
    )
    src, lengths = sentences([7, 3, 8, 1, 5], seed=6)
    search = reference_search(name, max_len=10, extra_len=6)
    expected = translate(model.encode, model.decode_step, src, lengths, search)
    assert translate(encode, step, src, lengths, search) == expected
    assert len({len(t) for t in expected}) > 2
    random = build(name, 17, **TINY[name]).eval()  # and untrained weights, whose log-probabilities are near ties
    export_onnx(random, tmp_path / "encoder.onnx", tmp_path / "step.onnx")
    encode, step = onnx_callables(
        ort.InferenceSession(str(tmp_path / "encoder.onnx")), ort.InferenceSession(str(tmp_path / "step.onnx"))
    )
    assert translate(encode, step, src, lengths, search) == translate(
        random.encode, random.decode_step, src, lengths, search
    )
