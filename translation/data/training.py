"""What training, evaluation and inference read from a prepared WMT folder (the real one or the mini set): the shared
subword vocabulary, sentences as token ids, length-bucketed batches, and the raw references BLEU is scored on.

A prepared folder holds one of two subword schemes (:class:`Subwords` finds which). GNMT's
(``translation.data.wmt.prepare``, also the mini set's), for ``M`` BPE merges::

    vocab.bpe.M                                one subword a line (its first field), both languages together
    train.tok.clean.bpe.M.{en,de}              the training pairs, tokenized, cleaned, BPE'd
    newstest2014.tok.bpe.M.en                  the test source, as the model reads it
    newstest2014.de                            the raw German reference BLEU is scored against

and the Transformer's (``wmt.prepare_sentencepiece``), for ``V`` pieces: ``spm.ende.V.model`` and ``.vocab``,
``train.spm.V.{en,de}``, ``newstest2014.spm.V.en`` and the same raw reference.

The vocabulary puts the GNMT reference's four special tokens first (``<pad>``, ``<unk>``, ``<s>``, ``</s>``: ids 0
to 3, the models' PAD, UNK, BOS and EOS) and pads its size to a multiple of 8, as the reference does for tensor
cores.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from loadgen.data.errors import DataError
from translation.data import wmt
from translation.models import BOS, EOS, PAD, UNK

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")  # ids PAD, UNK, BOS, EOS
assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
SOURCE, TARGET = wmt.LANGS  # English into German
VOCAB_ROUND = 8  # the reference pads the vocabulary to a multiple of 8
_VOCAB = re.compile(r"^vocab\.bpe\.(\d+)$")


class Vocab:
    """Subword <-> id. Unknown subwords map to UNK; ids beyond the file's subwords (the padding) decode to nothing."""

    def __init__(self, subwords: Iterable[str]) -> None:
        self.tokens = list(SPECIALS) + [t for t in dict.fromkeys(subwords) if t not in SPECIALS]
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read the vocabulary ({exc})") from exc
        subwords = [line.split()[0] for line in lines if line.strip()]
        if not subwords:
            raise DataError(f"{path}: an empty vocabulary")
        return cls(subwords)

    def __len__(self) -> int:
        return -(-len(self.tokens) // VOCAB_ROUND) * VOCAB_ROUND

    def encode(self, line: str) -> np.ndarray:
        """One BPE'd line -> its ids (no BOS/EOS)."""
        return np.fromiter((self.index.get(t, UNK) for t in line.split()), dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> the BPE'd line, up to the first EOS; PAD, BOS and padding ids dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i > EOS and i < len(self.tokens):
                out.append(self.tokens[i])
            elif i == UNK:
                out.append(SPECIALS[UNK])
        return " ".join(out)


_SPM = re.compile(r"^spm\.ende\.(\d+)\.model$")


@dataclasses.dataclass(frozen=True)
class Subwords:
    """The subword scheme of a prepared folder: its vocabulary file, the files of each split, and how a line of
    subwords becomes plain text again."""

    root: Path
    kind: str  # "bpe" or "spm"
    size: int  # BPE merges or sentencepiece pieces

    @classmethod
    def of(cls, root: str | os.PathLike) -> Subwords:
        """The one scheme ``root`` was prepared with; DataError for none or several."""
        root = Path(root)
        found = sorted([("bpe", int(m.group(1))) for p in root.glob("vocab.bpe.*") if (m := _VOCAB.match(p.name))]
                       + [("spm", int(m.group(1))) for p in root.glob("spm.ende.*.model")
                          if (m := _SPM.match(p.name))])
        if len(found) != 1:
            what = ("no vocab.bpe.<merges> or spm.ende.<pieces>.model" if not found else
                    "several vocabularies (" + ", ".join(f"{k} {n}" for k, n in found) + ")")
            raise DataError(f"{root}: {what}; prepare the folder with ./download_dataset.sh or python -m "
                            "translation.mini")
        return cls(root, *found[0])

    @property
    def vocab_file(self) -> Path:
        name = f"vocab.bpe.{self.size}" if self.kind == "bpe" else f"spm.ende.{self.size}.vocab"
        return _existing(self.root / name)

    def file(self, stem: str, lang: str) -> Path:
        """A split's subword file: ``train.tok.clean.bpe.M.en``, ``newstest2014.tok.bpe.M.en``,
        ``train.spm.V.en``, ..."""
        if self.kind == "spm":
            return _existing(self.root / f"{stem}.spm.{self.size}.{lang}")
        clean = ".clean" if stem == wmt.TRAIN else ""
        return _existing(self.root / f"{stem}.tok{clean}.bpe.{self.size}.{lang}")

    def vocab(self) -> Vocab:
        return Vocab.load(self.vocab_file)

    def text(self, lines: Iterable[str]) -> list[str]:
        """Lines of target-language subwords -> plain text: BPE undone and Moses-detokenized, or sentencepiece's
        pieces decoded."""
        if self.kind == "spm":
            return wmt.decode_pieces(lines, self.root / f"spm.ende.{self.size}.model")
        return wmt.detokenize(wmt.remove_bpe(lines), TARGET)


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: missing; prepare the folder with ./download_dataset.sh or python -m translation.mini")
    return path


def read(path: str | os.PathLike) -> list[str]:
    try:
        return list(wmt.read_lines(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc


@dataclasses.dataclass
class Parallel:
    """Source and target id sequences of one split (targets without BOS/EOS; :func:`collate` adds them)."""

    src: list[np.ndarray]
    tgt: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.src)

    @classmethod
    def load(cls, root: str | os.PathLike, vocab: Vocab, max_length: int | None = None) -> Parallel:
        """The training pairs, dropping those with a side longer than ``max_length`` subwords: the reference's
        ``max_sequence_length`` with method ``discard``."""
        subwords = Subwords.of(root)
        src_lines, tgt_lines = (read(subwords.file(wmt.TRAIN, lang)) for lang in (SOURCE, TARGET))
        if len(src_lines) != len(tgt_lines):
            raise DataError(f"{root}: train has {len(src_lines)} {SOURCE} and {len(tgt_lines)} {TARGET} lines")
        pairs = [(vocab.encode(s), vocab.encode(t)) for s, t in zip(src_lines, tgt_lines, strict=True)]
        pairs = [
            (s, t) for s, t in pairs if len(s) and len(t) and (max_length is None or max(len(s), len(t)) <= max_length)
        ]
        if not pairs:
            raise DataError(f"{root}: no training pair of 1 to {max_length} subwords")
        return cls([s for s, _ in pairs], [t for _, t in pairs])


@dataclasses.dataclass
class TestSet:
    """The test source as ids (in file order) and the raw references."""

    src: list[np.ndarray]
    references: list[str]

    @classmethod
    def load(cls, root: str | os.PathLike, vocab: Vocab, stem: str = wmt.TEST) -> TestSet:
        src = [vocab.encode(line) for line in read(Subwords.of(root).file(stem, SOURCE))]
        refs = read(_existing(Path(root) / f"{stem}.{TARGET}"))
        if len(src) != len(refs):
            raise DataError(f"{root}: {stem} has {len(src)} source lines and {len(refs)} references")
        return cls(src, refs)


def batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, window: int = 64) -> list[np.ndarray]:
    """One epoch of index batches of ``batch_size`` (the last partial one dropped), keyed by (seed, epoch): a
    permutation cut into windows of ``window`` batches, each window sorted by length and cut into batches, the
    batches shuffled. Pairs of similar length share a batch (less padding), as the reference's bucketing does."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    out = []
    span = batch_size * window
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out += [chunk[i : i + batch_size] for i in range(0, len(chunk) - batch_size + 1, batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def pad_ids(rows: Sequence[np.ndarray], bos: bool = False, eos: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ids -> (batch, longest) int64 padded with PAD, with BOS before and EOS after each row if asked, and
    the lengths."""
    rows = [np.concatenate([[BOS]] * bos + [r] + [[EOS]] * eos).astype(np.int64) for r in rows]
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.full((len(rows), int(lengths.max())), PAD, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, lengths


def collate(data: Parallel, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A training batch: source ids (+EOS) and lengths, decoder input (BOS + target) and decoder output (target +
    EOS), all padded."""
    src, src_lengths = pad_ids([data.src[i] for i in indices], eos=True)
    tgt_in, _ = pad_ids([data.tgt[i] for i in indices], bos=True)
    tgt_out, _ = pad_ids([data.tgt[i] for i in indices], eos=True)
    return src, src_lengths, tgt_in, tgt_out


def detokenize(vocab: Vocab, hypotheses: Sequence[Sequence[int]], subwords: Subwords) -> list[str]:
    """Decoded ids -> plain German text (:meth:`Subwords.text`)."""
    return subwords.text([vocab.decode(h) for h in hypotheses])


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacreBLEU on detokenized output against the raw references, lowercased with the ``intl`` tokenizer, as the
    MLPerf GNMT reference computes it (0 to 100)."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], lowercase=True, tokenize="intl").score)
