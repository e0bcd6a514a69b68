"""translation.models: GNMT and Transformer have the references' structure, train, decode step by step exactly as
they do with teacher forcing, read each sentence within its own length, and export to ONNX graphs that onnxruntime
runs to the same log-probabilities at other batch sizes and lengths than the export's."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from translation.models import (
    BOS,
    EOS,
    GNMT,
    PAD,
    Attention,
    EncoderModule,
    StepModule,
    Transformer,
    build,
    export_onnx,
    label_smoothed_loss,
    onnx_callables,
)

VOCAB = 19
TINY = {"gnmt": {"hidden": 16, "layers": 4}, "transformer": {"d_model": 16, "ffn": 32, "heads": 2, "layers": 2}}


def tiny(name: str, seed: int = 0, **extra) -> GNMT | Transformer:
    torch.manual_seed(seed)
    return build(name, VOCAB, **{**TINY[name], **extra})


def batch(lengths: list[int], seed: int = 1, vocab: int = VOCAB) -> tuple[torch.Tensor, torch.Tensor]:
    """Random sentences of the given lengths, right-padded with PAD."""
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(4, vocab, (len(lengths), max(lengths)), generator=generator)
    for i, n in enumerate(lengths):
        src[i, n:] = PAD
    return src, torch.tensor(lengths)


def targets(rows: int, steps: int, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    words = torch.randint(4, VOCAB, (rows, steps), generator=generator)
    tgt_in = torch.cat([torch.full((rows, 1), BOS), words], 1)
    tgt_out = torch.cat([words, torch.full((rows, 1), EOS)], 1)
    tgt_out[0, -2:] = PAD  # a shorter target: its last positions are padding
    tgt_in[0, -1:] = PAD
    return tgt_in, tgt_out


def test_gnmt_has_the_reference_structure():
    model = GNMT(100, hidden=8)  # the reference's 4 layers, shared embedding
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert [n for n in shapes if "embedding" in n] == ["embedding.weight"]  # one table for source and target
    assert shapes["enc_forward.weight_ih_l0"] == shapes["enc_backward.weight_ih_l0"] == (32, 8)  # bidirectional 1st
    assert shapes["enc_layers.0.weight_ih_l0"] == (32, 16)  # the 2nd layer reads both directions
    assert [shapes[f"enc_layers.{i}.weight_ih_l0"] for i in (1, 2)] == [(32, 8)] * 2
    assert shapes["dec_layers.0.weight_ih_l0"] == (32, 8)  # the 1st decoder layer reads the embedding only
    assert [shapes[f"dec_layers.{i}.weight_ih_l0"] for i in (1, 2, 3)] == [(32, 16)] * 3  # + attention context
    assert shapes["classifier.weight"] == (100, 8) and "classifier.bias" in shapes
    assert {"attention.normalize_scalar", "attention.normalize_bias", "attention.linear_att"} <= set(shapes)
    uniform = [p for n, p in model.named_parameters() if n != "attention.normalize_scalar"]
    assert all(float(p.detach().abs().max()) <= 0.1 for p in uniform)  # the reference's uniform(-0.1, 0.1)
    assert model.attention.normalize_scalar.item() == pytest.approx(8**-0.5) and model.dropout.p == 0.2
    defaults = {k: v.default for k, v in inspect.signature(GNMT).parameters.items()}
    assert defaults == {
        "vocab_size": inspect.Parameter.empty,
        "hidden": 1024,
        "layers": 4,
        "dropout": 0.2,
        "share_embedding": True,
    }
    assert len(dict(GNMT(10, hidden=8, share_embedding=False).named_parameters())) == len(shapes) + 1


def test_transformer_is_big_pre_norm_with_tied_embeddings():
    model = Transformer(100, d_model=16, ffn=24, heads=4)  # the reference's 6 + 6 layers
    assert len(model.encoder.layers) == len(model.decoder.layers) == 6
    assert model.encoder.layers[0].norm_first and model.decoder.layers[0].norm_first
    assert model.encoder.norm is not None and model.decoder.norm is not None  # the final norm of a pre-norm stack
    assert [n for n, _ in model.named_parameters() if "embedding" in n] == ["embedding.weight"]
    assert not any(p.shape == (100, 16) for n, p in model.named_parameters() if n != "embedding.weight")
    assert float(model.embedding.weight[PAD].detach().abs().max()) == 0.0
    defaults = {k: v.default for k, v in inspect.signature(Transformer).parameters.items()}
    assert defaults == {
        "vocab_size": inspect.Parameter.empty,
        "d_model": 1024,
        "ffn": 4096,
        "heads": 16,
        "layers": 6,
        "dropout": 0.1,
        "norm_first": True,
    }
    layer = model.encoder.layers[0]
    assert (layer.linear1.out_features, layer.self_attn.num_heads, layer.dropout.p) == (24, 4, 0.1)
    assert isinstance(layer.self_attn, Attention) and isinstance(model.decoder.layers[0].multihead_attn, Attention)
    assert not Transformer(10, d_model=8, ffn=8, heads=2, norm_first=False).encoder.layers[0].norm_first


@pytest.mark.parametrize("name", ["gnmt", "transformer"])
def test_a_training_step_lowers_the_loss(name):
    model = tiny(name)
    src, lengths = batch([6, 3, 5], vocab=VOCAB - 1)
    tgt_in, tgt_out = targets(3, 4)
    tgt_in[1, 1] = VOCAB - 1  # a word only the decoder reads
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = []
    for _ in range(6):
        logits = model(src, lengths, tgt_in)
        assert logits.shape == (3, 5, VOCAB)
        loss = label_smoothed_loss(logits, tgt_out, reduction="token")
        optimizer.zero_grad()
        loss.backward()
        if not losses:
            grads = {n: p.grad for n, p in model.named_parameters()}
            assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
            assert float(grads["embedding.weight"][VOCAB - 1].abs().max()) > 0  # the decoder shares the table
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert all(not torch.equal(p, before[n]) for n, p in model.named_parameters())


@pytest.mark.parametrize("name", ["gnmt", "transformer"])
def test_decode_steps_give_the_teacher_forced_log_probs(name):
    model = tiny(name).eval()
    src, lengths = batch([7, 2, 5])
    tgt_in, _ = targets(3, 5)
    tgt_in[0, -1] = 7  # no padding inside a prefix
    with torch.no_grad():
        expected = F.log_softmax(model(src, lengths, tgt_in), -1)
        state = model.encode(src, lengths)
        assert len(state) == len(model.state_names) and all(s.size(0) == 3 for s in state)
        for t in range(1, tgt_in.size(1) + 1):
            log_probs, attention, state = model.decode_step(tgt_in[:, :t], state)
            torch.testing.assert_close(log_probs, expected[:, t - 1], atol=1e-5, rtol=1e-5)
            if name == "gnmt":
                assert attention.shape == (3, 7)
                torch.testing.assert_close(attention.sum(-1), torch.ones(3))
                assert float(attention[1, 2:].abs().max()) == 0.0  # no attention on padding
            else:
                assert attention is None


@pytest.mark.parametrize("name", ["gnmt", "transformer"])
def test_each_sentence_is_read_within_its_own_length(name):
    model = tiny(name).eval()
    src, lengths = batch([6, 3, 4])
    noisy = src.clone()
    noisy[1, 3:] = 5  # what sits in the padding must not matter
    with torch.no_grad():
        together = model.encode(src, lengths)[0]
        assert torch.allclose(model.encode(noisy, lengths)[0][1, :3], together[1, :3], atol=1e-6)
        for i, n in enumerate(lengths.tolist()):
            alone = model.encode(src[i : i + 1, :n], lengths[i : i + 1])[0]
            torch.testing.assert_close(alone[0], together[i, :n], atol=1e-5, rtol=1e-5)
        if name == "gnmt":  # the backward direction starts from each sentence's own last token
            changed = src.clone()
            changed[1, 2] = 4 if src[1, 2] != 4 else 5
            assert not torch.allclose(model.encode(changed, lengths)[0][1, 0], together[1, 0])


def test_label_smoothed_loss_is_the_references():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 7)
    target = torch.tensor([[4, 5, EOS], [6, EOS, PAD]])
    log_probs = logits.log_softmax(-1)
    expected = sum(
        0.9 * -log_probs[b, t, target[b, t]] - 0.1 * log_probs[b, t].mean()
        for b in range(2)
        for t in range(3)
        if target[b, t] != PAD
    )
    torch.testing.assert_close(label_smoothed_loss(logits, target), expected)
    torch.testing.assert_close(label_smoothed_loss(logits, target, reduction="token"), expected / 5)
    torch.testing.assert_close(label_smoothed_loss(logits, target, reduction="sentence"), expected / 2)
    plain = F.cross_entropy(logits.view(-1, 7), target.view(-1), ignore_index=PAD, reduction="sum")
    torch.testing.assert_close(label_smoothed_loss(logits, target, smoothing=0.0), plain)
    with pytest.raises(ValueError, match="unknown reduction"):
        label_smoothed_loss(logits, target, reduction="mean")


def test_attention_computes_what_torch_multihead_attention_does():
    torch.manual_seed(0)
    ours = Attention(16, 4, dropout=0.0).eval()
    query, memory = torch.randn(3, 5, 16), torch.randn(3, 6, 16)
    pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2, [False] * 2 + [True] * 4])
    causal = torch.arange(5).unsqueeze(0) > torch.arange(5).unsqueeze(1)
    with torch.no_grad():
        for args, kwargs in (
            ((query, memory, memory), {"key_padding_mask": pad}),
            ((query, query, query), {"attn_mask": causal}),
            ((memory, memory, memory), {"key_padding_mask": pad.float() * -1e9}),
        ):
            expected = nn.MultiheadAttention.forward(ours, *args, need_weights=False, **kwargs)[0]
            torch.testing.assert_close(ours(*args, **kwargs)[0], expected, atol=1e-5, rtol=1e-5)


def test_build_names_the_two_models():
    assert isinstance(build("gnmt", 30, hidden=8), GNMT)
    assert isinstance(build("transformer", 30, d_model=8, ffn=8, heads=2, layers=1), Transformer)
    with pytest.raises(ValueError, match="unknown model 'rnn'"):
        build("rnn", 30)
    with pytest.raises(ValueError, match="at least 2 layers"):
        GNMT(30, hidden=8, layers=1)


@pytest.mark.parametrize("name", ["gnmt", "transformer"])
def test_onnx_graphs_give_pytorchs_log_probs(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = tiny(name, dropout=0.3).train()
    export_onnx(model, tmp_path / "encoder.onnx", tmp_path / "step.onnx")
    assert model.training  # export leaves the model's mode as it found it
    model.eval()
    step_module = StepModule(model)
    assert EncoderModule(model).output_names == list(model.state_names)
    assert step_module.output_names[0] == "log_probs" and ("attention" in step_module.output_names) == (name == "gnmt")
    encode, step = onnx_callables(
        ort.InferenceSession(str(tmp_path / "encoder.onnx")), ort.InferenceSession(str(tmp_path / "step.onnx"))
    )
    src, lengths = batch([9, 4, 1, 6], seed=5)  # another batch size and source length than the export's
    prefix = torch.cat([torch.full((4, 1), BOS), batch([6] * 4, seed=6)[0]], 1)
    with torch.no_grad():
        ours, theirs = model.encode(src, lengths), encode(src, lengths)
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
        for t in (1, 4, 7):
            expected, attention, ours = model.decode_step(prefix[:, :t], ours)
            log_probs, their_attention, theirs = step(prefix[:, :t], theirs)
            torch.testing.assert_close(log_probs, expected, atol=1e-4, rtol=1e-4)
            if name == "gnmt":
                torch.testing.assert_close(their_attention, attention, atol=1e-4, rtol=1e-4)
            for a, b in zip(ours, theirs, strict=True):
                torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
