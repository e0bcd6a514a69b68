"""The one beam search of the translation benchmark: evaluation during training and LoadGen inference, on every
backend, for both models.

It sees a model only through two callables with the interface of ``translation.models``:
``encode(src, src_lengths) -> state`` (a tuple of tensors, batch first) and ``step(prefix, state) -> (log_probs [N, V],
attention [N, S] | None, new_state)``; an onnxruntime backend passes callables that run sessions and return torch
tensors (``models.onnx_callables``). Every sentence of a batch is searched independently (``B x beam`` rows), so a
sentence gets the same translation alone or in any batch.

Scoring is Wu et al. 2016 (GNMT), section 7, as the GNMT reference's ``SequenceGenerator`` computes it: a finished
hypothesis of ``n`` tokens (EOS counted) scores ``log P / lp + cp`` with the length normalisation
``lp = ((len_const + n) / (len_const + 1)) ** alpha`` and the coverage penalty ``cp = coverage * sum_j log(min(a_j,
1))`` over the source positions ``j``, ``a_j`` the attention the hypothesis paid to ``j`` summed over its steps
(positions never attended, the padding, count 0, as in the reference). The Transformer reference (TensorFlow
``beam_search.py``) uses the same ``lp`` with no coverage.

The search (the references differ; this is the TensorFlow reference's with fairseq's finishing rule):

* each step expands every live hypothesis and keeps the ``2 * beam`` best continuations of each sentence; those of the
  first ``beam`` that end in EOS are finished (scored as above), the ``beam`` best that do not stay live;
* a sentence is done once ``beam`` hypotheses have finished (so beam 1 is greedy decoding), or once its best finished
  score beats the best any live hypothesis could still reach (its log-probability can only fall, its ``lp`` is at most
  that of the longest allowed length, its ``cp`` at most 0), or at its length limit, where only EOS may follow;
* PAD is never generated (fairseq's rule); the best finished hypothesis is returned without BOS and EOS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from translation.models import BOS, EOS, PAD

Encode = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]
Step = Callable[[torch.Tensor, tuple[torch.Tensor, ...]], tuple[torch.Tensor, torch.Tensor | None, tuple]]


def _check(beam: int, max_len: int | None, extra_len: int | None, alpha: float, coverage: float) -> None:
    if beam < 1:
        raise ValueError(f"beam must be at least 1, got {beam}")
    if alpha < 0:
        raise ValueError(f"alpha must be at least 0 (Wu et al. use 0 to 1), got {alpha}")
    if max_len is None and extra_len is None:
        raise ValueError("set max_len, extra_len or both: the search needs a length limit")
    if (max_len is not None and max_len < 1) or (extra_len is not None and extra_len < 0):
        raise ValueError(f"max_len must be at least 1 and extra_len at least 0, got {max_len} and {extra_len}")
    if coverage < 0:
        raise ValueError(f"coverage must be at least 0, got {coverage}")


@dataclass(frozen=True)
class Search:
    """One model's search settings; ``max_len`` caps the tokens a hypothesis may generate (EOS counted), ``extra_len``
    caps them at the sentence's source length plus ``extra_len``; at least one of the two is set."""

    beam: int
    alpha: float
    coverage: float = 0.0
    len_const: float = 5.0
    max_len: int | None = None
    extra_len: int | None = None

    def __post_init__(self) -> None:
        _check(self.beam, self.max_len, self.extra_len, self.alpha, self.coverage)


# The GNMT reference (rnn_translator train.py test setup): --beam-size 5, --len-norm-factor 0.6, --len-norm-const 5.0,
# --cov-penalty-factor 0.1, --max-length-test 150 (a hypothesis with BOS and EOS: 149 generated tokens).
GNMT_SEARCH = Search(beam=5, alpha=0.6, coverage=0.1, len_const=5.0, max_len=149)
# The Transformer reference (translation/tensorflow/transformer model_params): beam_size 4, alpha 0.6,
# extra_decode_length 50 (a sentence's source length + 50; the reference adds it to the padded batch length).
TRANSFORMER_SEARCH = Search(beam=4, alpha=0.6, coverage=0.0, len_const=5.0, extra_len=50)
SEARCH = {"gnmt": GNMT_SEARCH, "transformer": TRANSFORMER_SEARCH}


def length_norm(length: torch.Tensor | float, alpha: float, len_const: float = 5.0) -> torch.Tensor | float:
    """Wu et al.'s ``lp``: ``((len_const + length) / (len_const + 1)) ** alpha``."""
    return ((len_const + length) / (len_const + 1.0)) ** alpha


def coverage_penalty(attention: torch.Tensor, coverage: float) -> torch.Tensor:
    """``coverage * sum_j log(min(a_j, 1))`` per row of summed attention ``[N, S]``, unattended positions counting 0."""
    log = attention.clamp(max=1.0).log()
    return coverage * log.masked_fill(attention <= 0, 0.0).sum(-1)


@torch.no_grad()
def beam_search(encode: Encode, step: Step, src: torch.Tensor, src_lengths: torch.Tensor, beam: int,
                max_len: int | None, alpha: float, coverage: float = 0.0, len_const: float = 5.0,
                extra_len: int | None = None) -> list[list[int]]:
    """Translate ``src [B, S]`` (``src_lengths [B]``): the best hypothesis of each sentence, without BOS and EOS
    (module docstring for the search and its scoring)."""
    _check(beam, max_len, extra_len, alpha, coverage)
    batch, device = src.size(0), src.device
    src_lengths = src_lengths.to(device)
    limits = torch.full((batch,), max_len if max_len is not None else 2 ** 62, dtype=torch.long, device=device)
    if extra_len is not None:
        limits = torch.minimum(limits, src_lengths.long() + extra_len)
    best: list[list[int]] = [[] for _ in range(batch)]
    best_score = torch.full((batch,), float("-inf"), device=device)
    finished = torch.zeros(batch, dtype=torch.long, device=device)

    rows = torch.arange(batch, device=device).repeat_interleave(beam)  # sentence b's hypotheses are rows b*beam...
    state = tuple(s.index_select(0, rows.to(s.device)) for s in encode(src, src_lengths))
    alive = torch.arange(batch, device=device)  # the sentences still searched, beam rows each
    prefix = torch.full((batch * beam, 1), BOS, dtype=torch.long, device=device)
    scores = torch.full((batch, beam), float("-inf"), device=device)
    scores[:, 0] = 0.0  # the beam starts as one hypothesis
    attended = None
    t = 0
    while alive.numel():
        t += 1
        log_probs, attention, state = step(prefix, state)
        log_probs = log_probs.to(device=device, dtype=torch.float32)
        vocab = log_probs.size(1)
        if coverage and attention is None:
            raise ValueError("a coverage penalty needs the model's attention, and this step returns none")
        if attention is not None and coverage:
            attention = attention.to(device).float()
            attended = attention if attended is None else attended + attention
        n = alive.numel()
        candidates = scores.view(-1, 1) + log_probs  # [n * beam, V], a new tensor: the masks below write into it
        candidates[:, PAD] = float("-inf")
        at_limit = (limits[alive] <= t).repeat_interleave(beam)
        if at_limit.any():  # the last allowed token is EOS
            eos = candidates[:, EOS].clone()
            candidates[at_limit] = float("-inf")
            candidates[:, EOS] = eos
        candidates = candidates.view(n, beam * vocab)
        top_scores, top = candidates.topk(min(2 * beam, beam * vocab), dim=1)
        source = top // vocab + torch.arange(n, device=device).unsqueeze(1) * beam  # the row each extends
        tokens = top % vocab
        is_eos = tokens == EOS

        ends = is_eos & torch.isfinite(top_scores)
        ends[:, beam:] = False
        if ends.any():
            i, j = ends.nonzero(as_tuple=True)
            rows_done = source[i, j]
            normalised = top_scores[i, j] / length_norm(float(t), alpha, len_const)
            if attended is not None:
                normalised = normalised + coverage_penalty(attended[rows_done], coverage)
            sentences = alive[i]
            for k in range(i.numel()):  # in rank order, so a tie keeps the better-ranked hypothesis
                b = int(sentences[k])
                finished[b] += 1
                if normalised[k] > best_score[b]:
                    best_score[b] = normalised[k]
                    best[b] = prefix[rows_done[k], 1:].tolist()

        # the beam best continuations that do not end the hypothesis stay live
        keep = (~is_eos) & ((~is_eos).cumsum(1) <= beam)
        order = torch.sort(keep.long(), dim=1, descending=True, stable=True).indices[:, :beam]
        scores = top_scores.gather(1, order)
        picked = source.gather(1, order).view(-1)
        prefix = torch.cat([prefix.index_select(0, picked), tokens.gather(1, order).view(-1, 1)], dim=1)
        state = tuple(s.index_select(0, picked.to(s.device)) for s in state)
        if attended is not None:
            attended = attended.index_select(0, picked)

        reachable = scores.max(1).values / length_norm(limits[alive].float(), alpha, len_const)
        done = (finished[alive] >= beam) | (best_score[alive] >= reachable) | (limits[alive] <= t)
        if done.any():
            still = (~done).nonzero(as_tuple=True)[0]
            kept = (still.unsqueeze(1) * beam + torch.arange(beam, device=device)).view(-1)
            alive, scores, prefix = alive[still], scores[still], prefix.index_select(0, kept)
            state = tuple(s.index_select(0, kept.to(s.device)) for s in state)
            if attended is not None:
                attended = attended.index_select(0, kept)
    return best


def translate(encode: Encode, step: Step, src: torch.Tensor, src_lengths: torch.Tensor,
              config: Search) -> list[list[int]]:
    """:func:`beam_search` with one model's settings (``GNMT_SEARCH``, ``TRANSFORMER_SEARCH``)."""
    return beam_search(encode, step, src, src_lengths, **asdict(config))


def greedy(encode: Encode, step: Step, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int | None = None,
           extra_len: int | None = None) -> list[list[int]]:
    """Greedy decoding: the beam-1 search (no length normalisation or coverage penalty can change a beam of 1)."""
    return beam_search(encode, step, src, src_lengths, beam=1, max_len=max_len, alpha=0.0, extra_len=extra_len)
