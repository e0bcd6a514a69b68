"""The translation models: GNMT (MLPerf training ``rnn_translator``) and Transformer "big" (MLPerf training
``translation``), behind one interface that training, evaluation, export and every inference backend use.

GNMT is the reference's ``seq2seq.models.gnmt.GNMT`` (the ``gnmt_v2`` flavour of Wu et al. 2016): shared source and
target embeddings; a 4-layer LSTM encoder whose first layer is bidirectional, with residual connections from the 3rd
layer on; a 4-layer LSTM decoder whose first layer's output queries a normalized Bahdanau attention
(``BahdanauAttention(normalize=True)``), the attention context being concatenated to the input of every later layer at
the same step, residual connections from the 3rd layer on; a linear classifier over the vocabulary; dropout 0.2 in
front of every LSTM layer but the first; every weight uniform in [-0.1, 0.1] (the reference's ``init_weight``), the
LSTMs' hidden-hidden biases zero. The decoder starts from zero states (the reference passes no encoder state).

Transformer is the MLPerf reference's big model (fairseq ``transformer_wmt_en_de_big_t2t`` with
``--share-all-embeddings``, the sizes of the TensorFlow reference's ``big`` parameters): 6+6 layers, d_model 1024, 16
heads, feed-forward 4096, dropout 0.1 on residuals, attention weights and the ReLU output, pre-norm layers with a
final layer norm on each stack (``*_normalize_before``, as tensor2tensor), sinusoidal positions, one embedding for the
encoder input, decoder input and output projection, scaled by sqrt(d_model). The layers are ``torch.nn``'s, their
attention :class:`Attention` (``nn.MultiheadAttention``'s parameters, a forward that exports with dynamic lengths).

The interface (both models):

* ``forward(src, src_lengths, tgt_in) -> logits [B, T, V]``: teacher forcing; ``src [B, S]`` right-padded with PAD,
  ``src_lengths [B]`` int64 (>= 1), ``tgt_in [B, T]`` starting with BOS.
* ``encode(src, src_lengths) -> state``: the decoder's initial state, a flat tuple of tensors named by
  ``state_names``, each with the batch as dim 0 (so a beam search reorders it with ``index_select(0, rows)``).
* ``decode_step(prefix, state) -> (log_probs [N, V], attention [N, S] | None, new_state)``: ``prefix [N, t]`` holds
  every token so far, BOS first (GNMT reads only the last one, the Transformer all of them: it keeps no cache).
  ``step_updates`` names the state entries a step changes; the others pass through unchanged.

:class:`EncoderModule` and :class:`StepModule` are the same two functions as tensor-only modules for
``torch.onnx.export``; :func:`export_onnx` writes both graphs and :func:`onnx_callables` turns the two onnxruntime
sessions back into ``encode``/``step`` callables for ``translation.beam``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# The GNMT reference's vocabulary convention (seq2seq/data/config.py), shared by both models and the data code.
PAD, UNK, BOS, EOS = 0, 1, 2, 3
GNMT_INIT = 0.1  # the reference's init_weight: every weight uniform in [-0.1, 0.1]
# How each reference normalises the summed label-smoothed loss: the GNMT trainer divides by the batch size
# (``loss /= B * iter_size``), fairseq (the Transformer) by the number of target tokens (its sample_size).
LOSS_REDUCTION = {"gnmt": "sentence", "transformer": "token"}

State = tuple[torch.Tensor, ...]


def source_padding(src: torch.Tensor, src_lengths: torch.Tensor) -> torch.Tensor:
    """``[B, S]`` bool, True at the padding after each sentence's length."""
    positions = torch.arange(src.size(1), device=src.device).unsqueeze(0)
    return positions >= src_lengths.to(src.device).unsqueeze(1)


class BahdanauAttention(nn.Module):
    """Normalized Bahdanau attention as the GNMT reference's ``BahdanauAttention(normalize=True)``: score
    ``g * v/|v| . tanh(W_q q + W_k k + b)``, masked softmax over the source, context = weights @ encoder outputs."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.linear_q = nn.Linear(hidden, hidden, bias=False)
        self.linear_k = nn.Linear(hidden, hidden, bias=False)
        self.linear_att = nn.Parameter(torch.empty(hidden))
        self.normalize_scalar = nn.Parameter(torch.full((1,), hidden ** -0.5))
        self.normalize_bias = nn.Parameter(torch.zeros(hidden))

    def forward(self, query: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor,
                src_pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``query [B, T, H]``, ``memory [B, S, H]``, ``keys = linear_k(memory)``, ``src_pad [B, S]`` ->
        ``context [B, T, H]``, ``weights [B, T, S]`` (exactly 0 on padding)."""
        v = self.linear_att / self.linear_att.norm() * self.normalize_scalar
        hidden = torch.tanh(self.linear_q(query).unsqueeze(2) + keys.unsqueeze(1) + self.normalize_bias)
        scores = (hidden @ v).masked_fill(src_pad.unsqueeze(1), float("-inf"))
        weights = scores.softmax(-1)
        return weights @ memory, weights


class GNMT(nn.Module):
    """GNMT v2 as the MLPerf reference (module docstring). Sizes default to the reference's (hidden 1024, 4 layers,
    dropout 0.2, shared embeddings); the mini config shrinks them. State: ``memory [N, S, H]`` (encoder outputs),
    ``keys [N, S, H]`` (their attention projection, computed once), ``src_pad [N, S]`` bool, ``h``/``c [N, L, H]``
    (every decoder layer's LSTM state)."""

    state_names = ("memory", "keys", "src_pad", "h", "c")
    step_updates = ("h", "c")
    has_attention = True

    def __init__(self, vocab_size: int, hidden: int = 1024, layers: int = 4, dropout: float = 0.2,
                 share_embedding: bool = True) -> None:
        super().__init__()
        if layers < 2:
            raise ValueError(f"GNMT needs at least 2 layers (a bidirectional one, then unidirectional), got {layers}")
        self.vocab_size, self.hidden, self.layers = vocab_size, hidden, layers
        self.embedding = nn.Embedding(vocab_size, hidden, padding_idx=PAD)
        self.tgt_embedding = None if share_embedding else nn.Embedding(vocab_size, hidden, padding_idx=PAD)
        # The bidirectional first layer as two LSTMs: the backward one reads each sentence reversed within its own
        # length, as the reference's packed sequence does, in plain tensor ops that export to ONNX.
        self.enc_forward = nn.LSTM(hidden, hidden, batch_first=True)
        self.enc_backward = nn.LSTM(hidden, hidden, batch_first=True)
        self.enc_layers = nn.ModuleList([nn.LSTM(2 * hidden, hidden, batch_first=True)]
                                        + [nn.LSTM(hidden, hidden, batch_first=True) for _ in range(layers - 2)])
        self.dec_layers = nn.ModuleList([nn.LSTM(hidden, hidden, batch_first=True)]
                                        + [nn.LSTM(2 * hidden, hidden, batch_first=True) for _ in range(layers - 1)])
        self.attention = BahdanauAttention(hidden)
        self.classifier = nn.Linear(hidden, vocab_size)
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self, init_weight: float = GNMT_INIT) -> None:
        for name, p in self.named_parameters():
            if name.endswith("normalize_scalar"):
                nn.init.constant_(p, self.hidden ** -0.5)
            elif name.endswith("normalize_bias") or ".bias_hh" in name:
                nn.init.zeros_(p)
            else:
                nn.init.uniform_(p, -init_weight, init_weight)

    def _tgt_embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return (self.embedding if self.tgt_embedding is None else self.tgt_embedding)(tokens)

    def _encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embedding(src)
        src_pad = source_padding(src, src_lengths)
        positions = torch.arange(src.size(1), device=src.device).unsqueeze(0)
        # position t of sentence b reads position len_b - 1 - t: a reversal within the length (padding stays put)
        reverse = torch.where(src_pad, positions, src_lengths.to(src.device).unsqueeze(1) - 1 - positions)
        reverse = reverse.unsqueeze(2).expand(-1, -1, x.size(2))
        forward, _ = self.enc_forward(x)
        backward, _ = self.enc_backward(x.gather(1, reverse))
        x = torch.cat([forward, backward.gather(1, reverse)], dim=2)
        for i, rnn in enumerate(self.enc_layers):
            y, _ = rnn(self.dropout(x))
            x = y + x if i > 0 else y  # residual from the 3rd layer (the bidirectional one is the 1st)
        return x, src_pad

    def _decode(self, tokens: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, src_pad: torch.Tensor,
                h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``tokens [B, T]`` from states ``h, c [B, L, H]`` -> logits ``[B, T, V]``, attention ``[B, T, S]`` and the
        states after the last token."""
        hs, cs = [], []

        def run(i: int, x: torch.Tensor) -> torch.Tensor:
            y, (hi, ci) = self.dec_layers[i](x, (h[:, i].unsqueeze(0).contiguous(), c[:, i].unsqueeze(0).contiguous()))
            hs.append(hi.squeeze(0))
            cs.append(ci.squeeze(0))
            return y

        x = run(0, self._tgt_embed(tokens))
        context, weights = self.attention(x, memory, keys, src_pad)  # gnmt_v2: the 1st layer's output is the query
        for i in range(1, self.layers):
            y = run(i, torch.cat([self.dropout(x), context], dim=2))
            x = y + x if i >= 2 else y  # residual from the 3rd layer
        return self.classifier(x), weights, torch.stack(hs, 1), torch.stack(cs, 1)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> State:
        memory, src_pad = self._encode(src, src_lengths)
        zeros = memory.new_zeros(memory.size(0), self.layers, self.hidden)
        return memory, self.attention.linear_k(memory), src_pad, zeros, zeros

    def decode_step(self, prefix: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor, State]:
        memory, keys, src_pad, h, c = state
        logits, weights, h, c = self._decode(prefix[:, -1:], memory, keys, src_pad, h, c)
        return F.log_softmax(logits[:, -1].float(), dim=-1), weights[:, -1], (memory, keys, src_pad, h, c)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, keys, src_pad, h, c = self.encode(src, src_lengths)
        return self._decode(tgt_in, memory, keys, src_pad, h, c)[0]


def sinusoids(length: int | torch.Tensor, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """``[length, dim]`` sinusoidal position encodings, sines then cosines over geometric timescales 1..10^4 (fairseq's
    ``SinusoidalPositionalEmbedding`` and the TensorFlow reference's ``get_position_encoding``), from position 0."""
    half = dim // 2
    rates = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * -(math.log(10000.0) / (half - 1)))
    angles = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1) * rates.unsqueeze(0)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class Attention(nn.MultiheadAttention):
    """``nn.MultiheadAttention`` (same parameters, batch first) whose forward splits the heads with shape-free
    reshapes around ``F.scaled_dot_product_attention``: torch's own forward bakes the traced key length into a Reshape,
    so its ONNX graph would only take the example's lengths. Masks: bool (True = masked) or additive float."""

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__(d_model, heads, dropout=dropout, batch_first=True)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = False,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, None]:
        if need_weights:
            raise NotImplementedError("translation.models.Attention returns no attention weights")
        weights, biases = self.in_proj_weight.chunk(3), self.in_proj_bias.chunk(3)
        q, k, v = (F.linear(x, w, b).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)
                   for x, w, b in zip((query, key, value), weights, biases, strict=True))  # [B, heads, L, d]

        def additive(mask: torch.Tensor) -> torch.Tensor:
            return mask.to(q.dtype) if mask.is_floating_point() else q.new_zeros(()).masked_fill(mask, float("-inf"))

        mask = None if key_padding_mask is None else additive(key_padding_mask)[:, None, None, :]
        if attn_mask is not None:
            mask = additive(attn_mask) if mask is None else mask + additive(attn_mask)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).flatten(2)), None


class EncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` (batch first, ReLU) with :class:`Attention`."""

    def __init__(self, d_model: int, heads: int, ffn: int, dropout: float, norm_first: bool) -> None:
        super().__init__(d_model, heads, ffn, dropout, batch_first=True, norm_first=norm_first)
        self.self_attn = Attention(d_model, heads, dropout)


class DecoderLayer(nn.TransformerDecoderLayer):
    """``nn.TransformerDecoderLayer`` (batch first, ReLU) with :class:`Attention` for both attentions."""

    def __init__(self, d_model: int, heads: int, ffn: int, dropout: float, norm_first: bool) -> None:
        super().__init__(d_model, heads, ffn, dropout, batch_first=True, norm_first=norm_first)
        self.self_attn = Attention(d_model, heads, dropout)
        self.multihead_attn = Attention(d_model, heads, dropout)


class Transformer(nn.Module):
    """Transformer big as the MLPerf reference (module docstring), from ``torch.nn``'s encoder and decoder layers.
    ``norm_first=False`` gives the post-norm of Vaswani et al. (fairseq ``transformer_vaswani_wmt_en_de_big``).
    State: ``memory [N, S, D]`` (encoder outputs), ``src_pad [N, S]`` bool; a step re-reads the whole prefix."""

    state_names = ("memory", "src_pad")
    step_updates = ()
    has_attention = False

    def __init__(self, vocab_size: int, d_model: int = 1024, ffn: int = 4096, heads: int = 16, layers: int = 6,
                 dropout: float = 0.1, norm_first: bool = True) -> None:
        super().__init__()
        if d_model % 2 or d_model < 4 or d_model % heads:
            raise ValueError(f"d_model {d_model} must be even, at least 4 and a multiple of heads ({heads})")
        self.vocab_size, self.d_model = vocab_size, d_model
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        encoder_layer = EncoderLayer(d_model, heads, ffn, dropout, norm_first)
        decoder_layer = DecoderLayer(d_model, heads, ffn, dropout, norm_first)
        self.encoder = nn.TransformerEncoder(encoder_layer, layers, norm=nn.LayerNorm(d_model) if norm_first else None,
                                             enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(decoder_layer, layers, norm=nn.LayerNorm(d_model) if norm_first else None)
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """fairseq's initialisation: embeddings N(0, d^-1/2) with a zero PAD row, linear layers Xavier-uniform with
        zero biases (attention projections included)."""
        nn.init.normal_(self.embedding.weight, 0.0, self.d_model ** -0.5)
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention):
                nn.init.xavier_uniform_(module.in_proj_weight)
                nn.init.zeros_(module.in_proj_bias)

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens) * math.sqrt(self.d_model)
        return self.dropout(x + sinusoids(tokens.size(1), self.d_model, tokens.device).to(x.dtype))

    def _decode(self, tokens: torch.Tensor, memory: torch.Tensor, src_pad: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.size(1), device=tokens.device)
        causal = positions.unsqueeze(0) > positions.unsqueeze(1)  # True where a position would see a later one
        x = self.decoder(self._embed(tokens), memory, tgt_mask=causal, tgt_is_causal=True,
                         memory_key_padding_mask=src_pad)
        return F.linear(x, self.embedding.weight)  # the output projection is the shared embedding

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> State:
        src_pad = source_padding(src, src_lengths)
        return self.encoder(self._embed(src), src_key_padding_mask=src_pad), src_pad

    def decode_step(self, prefix: torch.Tensor, state: State) -> tuple[torch.Tensor, None, State]:
        memory, src_pad = state
        logits = self._decode(prefix, memory, src_pad)[:, -1]
        return F.log_softmax(logits.float(), dim=-1), None, state

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, src_pad = self.encode(src, src_lengths)
        return self._decode(tgt_in, memory, src_pad)


Model = GNMT | Transformer


def label_smoothed_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.1, pad: int = PAD,
                        reduction: str = "sum") -> torch.Tensor:
    """The references' label-smoothed cross entropy (GNMT's ``LabelSmoothing``, fairseq's
    ``label_smoothed_cross_entropy``, both 0.1): per target token ``(1 - eps) * nll + eps * mean_v(-log p_v)``, PAD
    targets left out. ``reduction``: ``"sum"`` over the tokens (what both references compute), ``"sentence"`` that sum
    divided by the batch size (the GNMT trainer's normalisation), ``"token"`` divided by the non-PAD tokens (fairseq's,
    for the Transformer); :data:`LOSS_REDUCTION` says which each model's reference uses."""
    log_probs = F.log_softmax(logits.float(), dim=-1)
    nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    loss = ((1.0 - smoothing) * nll - smoothing * log_probs.mean(-1)).masked_fill(target == pad, 0.0)
    total = loss.sum()
    if reduction == "sum":
        return total
    if reduction == "sentence":
        return total / target.size(0)
    if reduction == "token":
        return total / (target != pad).sum().clamp(min=1)
    raise ValueError(f"unknown reduction {reduction!r}: sum, sentence or token")


class EncoderModule(nn.Module):
    """``encode`` as a tensor-only module: ``(src, src_lengths) -> *state``, for ``torch.onnx.export``."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model
        self.input_names = ["src", "src_lengths"]
        self.output_names = list(model.state_names)
        self.dynamic_axes = {"src": {0: "batch", 1: "src_len"}, "src_lengths": {0: "batch"},
                             **{name: _state_axes(name) for name in model.state_names}}

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> State:
        return tuple(self.model.encode(src, src_lengths))


class StepModule(nn.Module):
    """``decode_step`` as a tensor-only module: ``(prefix, *state) -> (log_probs, [attention], *next states)``, the
    attention only for a model that has one (GNMT), the next states only for the entries a step changes
    (``step_updates``, output names ``next_<name>``), for ``torch.onnx.export``."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model
        self.input_names = ["prefix", *model.state_names]
        self.output_names = ["log_probs", *(["attention"] if model.has_attention else []),
                             *(f"next_{name}" for name in model.step_updates)]
        self.dynamic_axes = {"prefix": {0: "rows", 1: "steps"}, "log_probs": {0: "rows"},
                             "attention": {0: "rows", 1: "src_len"},
                             **{name: _state_axes(name, "rows") for name in model.state_names},
                             **{f"next_{name}": _state_axes(name, "rows") for name in model.step_updates}}

    def forward(self, prefix: torch.Tensor, *state: torch.Tensor) -> State:
        log_probs, attention, new_state = self.model.decode_step(prefix, tuple(state))
        updates = dict(zip(self.model.state_names, new_state, strict=True))
        return (log_probs, *([attention] if self.model.has_attention else []),
                *(updates[name] for name in self.model.step_updates))


def _state_axes(name: str, batch: str = "batch") -> dict[int, str]:
    return {0: batch} if name in ("h", "c") else {0: batch, 1: "src_len"}


def export_onnx(model: Model, encoder_path: str | Path, step_path: str | Path, opset: int = 17) -> None:
    """Write the encoder and the decoder step as two ONNX graphs (:class:`EncoderModule`, :class:`StepModule`) with
    dynamic batch, source and prefix lengths, traced in eval mode; the model's mode is left as it was."""
    was_training = model.training
    encoder, step = EncoderModule(model).eval(), StepModule(model).eval()  # the exporter restores these modes
    generator = torch.Generator().manual_seed(0)
    src = torch.randint(4, max(model.vocab_size, 5), (2, 5), generator=generator)
    src_lengths = torch.tensor([5, 3])
    src[1, 3:] = PAD
    prefix = torch.cat([torch.full((2, 1), BOS), torch.randint(4, max(model.vocab_size, 5), (2, 2),
                                                               generator=generator)], dim=1)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused inference kernels have no ONNX form
    try:
        with torch.no_grad():
            state = encoder(src, src_lengths)
            for module, args, path in ((encoder, (src, src_lengths), encoder_path),
                                       (step, (prefix, *state), step_path)):
                torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset,
                                  input_names=module.input_names, output_names=module.output_names,
                                  dynamic_axes={k: v for k, v in module.dynamic_axes.items()
                                                if k in module.input_names + module.output_names})
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        model.train(was_training)


def onnx_callables(encoder_session, step_session) -> tuple[Callable[..., State], Callable[..., tuple]]:
    """Two onnxruntime sessions (the graphs of :func:`export_onnx`) -> ``encode(src, src_lengths) -> state`` and
    ``step(prefix, state) -> (log_probs, attention | None, new_state)`` on torch CPU tensors, for
    ``translation.beam``."""
    state_names = [output.name for output in encoder_session.get_outputs()]
    step_inputs = {i.name for i in step_session.get_inputs()}
    step_outputs = [output.name for output in step_session.get_outputs()]

    def feed(names: Sequence[str], tensors: Sequence[torch.Tensor], wanted: set[str]) -> dict:
        return {n: t.detach().cpu().contiguous().numpy() for n, t in zip(names, tensors, strict=True) if n in wanted}

    def encode(src: torch.Tensor, src_lengths: torch.Tensor) -> State:
        inputs = {i.name for i in encoder_session.get_inputs()}
        outputs = encoder_session.run(None, feed(["src", "src_lengths"], [src, src_lengths], inputs))
        return tuple(torch.from_numpy(o) for o in outputs)

    def step(prefix: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor | None, State]:
        results = dict(zip(step_outputs, step_session.run(None, feed(["prefix", *state_names], [prefix, *state],
                                                                          step_inputs)), strict=True))
        new_state = tuple(torch.from_numpy(results[f"next_{n}"]) if f"next_{n}" in results else s
                          for n, s in zip(state_names, state, strict=True))
        attention = results.get("attention")
        return (torch.from_numpy(results["log_probs"]), None if attention is None else torch.from_numpy(attention),
                new_state)

    return encode, step


def build(name: str, vocab_size: int, **sizes) -> Model:
    """``gnmt`` or ``transformer`` with the reference's sizes unless ``sizes`` says otherwise."""
    if name == "gnmt":
        return GNMT(vocab_size, **sizes)
    if name == "transformer":
        return Transformer(vocab_size, **sizes)
    raise ValueError(f"unknown model {name!r}: gnmt or transformer")
