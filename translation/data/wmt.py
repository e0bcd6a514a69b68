"""WMT English-German text processing, as the MLPerf training references do it, with Python tools.

GNMT (wmt16; the reference is rnn_translator/download_dataset.sh): Moses tokenization (``tokenizer.perl -q -l de``
and ``-l en``: no aggressive hyphen splitting, XML escaping on), here sacremoses' port of the same rules; Moses'
clean-corpus-n.perl at 1..80 tokens (its ratio rule, 9, included); the reference's filter_dataset.py (a pair is
dropped when either side is not Latin-1 text); a shared BPE of 32,000 merges learnt by subword-nmt on the
tokenized, cleaned German then English training text; the BPE applied to training, development and test text;
the vocabulary of the BPE'd training text, most frequent first (subword-nmt's get_vocab, counts cut off).

Transformer (wmt17; the reference is translation/tensorflow/process_data.py): no tokenization and no cleaning;
a shared subword vocabulary of 32,768 learnt on the raw English and German training text. The reference learns it
with its own subtokenizer (Tensor2Tensor's, with the min count, 6, that brings it near that size); this suite uses
sentencepiece instead: the maintained library for the same job (a shared vocabulary of subword units learnt on raw,
untokenized text, whose decoding gives the text back exactly), with the size as an exact parameter rather than
the result of a search. Its unigram model, sentencepiece's default, like the reference's subtokenizer chooses a
set of whole subword units rather than a sequence of merges. So the ids are not the reference's ids.

Every file is written in a partial folder beside it and renamed into place when whole, so a killed run leaves no
half file (and the next run reclaims its partial folders); a step whose outputs are newer than its inputs is not run
again. Text is read and written as UTF-8, a malformed byte passed through unchanged (``surrogateescape``; the
Latin-1 filter then drops its pair). The file names are the references' (``train.tok.clean.bpe.32000.en``,
``bpe.32000``, ``vocab.bpe.32000``, ...).

Moses' detokenization is not an exact inverse of its tokenization (``9:30`` comes back as ``9: 30``); BLEU is
computed on detokenized output against the raw reference text (``newstest2014.de``), as the reference does with
sacrebleu. No ML framework is imported.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import re
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from loadgen.data.atomic import partial_folder, write_atomic
from loadgen.data.errors import DataError, one_line
from loadgen.data.manifest import Manifest

LANGS = ("en", "de")  # English source, German target: the benchmark translates English into German
TRAIN = "train"
TEST = "newstest2014"  # BLEU is measured on it (3,003 sentences)
DEV = "newstest_dev"  # GNMT's validation set: newstest2015 and newstest2016, concatenated (its README)
DEV_SETS = ("newstest2015", "newstest2016")
TRANSFORMER_DEV = "newstest2013"  # the Transformer reference's evaluation set (process_data.py)
MERGES = 32_000  # rnn_translator/download_dataset.sh: `for merge_ops in 32000`
MAX_LENGTH = 80  # clean-corpus-n.perl ... 1 80
RATIO = 9.0  # clean-corpus-n.perl's default -ratio, which the reference does not change
MAX_WORD_LENGTH = 1000  # clean-corpus-n.perl's default -max-word-length
VOCAB_SIZE = 32_768  # process_data.py: _TARGET_VOCAB_SIZE
SAMPLE = 4_000_000  # sentences sentencepiece learns its vocabulary from: a random sample bounds its memory
MANIFEST = "manifest.json"
IGNORED = ("archives/*", "data/*")  # the downloaded archives and the members taken from them: checked apart
ENCODING = {"encoding": "utf-8", "errors": "surrogateescape", "newline": "\n"}
CHUNK = 10_000  # lines a worker processes at a time


# -- SGM (WMT's "fake SGML" test sets) --------------------------------------------------------------------------
_SEG = re.compile(r"<seg[^>]*>(.*?)</seg>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


def read_sgm(path: str | os.PathLike) -> list[str]:
    """The text of every ``<seg>`` of the SGM file ``path``, in order, its white space collapsed and trimmed, as
    Moses' input-from-sgm.perl extracts it (the reference's step; entities are left as they are)."""
    text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    return [_SPACE.sub(" ", seg).strip() for seg in _SEG.findall(text)]


def write_sgm(
    path: str | os.PathLike, lines: Sequence[str], setid: str, lang: str, role: str = "src", docid: str = "doc1"
) -> Path:
    """Write ``lines`` as a WMT SGM file: a ``srcset`` (``role="src"``) or ``refset`` (``"ref"``) named ``setid``
    in ``lang``, one document ``docid``, one numbered ``<seg>`` a line, text unescaped as WMT's files have it.

    ``read_sgm`` gives ``lines`` back when none has white space to collapse; a line holding a newline or seg tag
    raises ValueError."""
    if role not in ("src", "ref"):
        raise ValueError(f"role {role!r}: expected src or ref")
    for n, line in enumerate(lines):
        if "\n" in line or "<seg" in line.lower() or "</seg>" in line.lower():
            raise ValueError(f"line {n + 1} cannot be a seg of an SGM file: {line!r}")
    header = (
        f'<srcset setid="{setid}" srclang="{lang}">'
        if role == "src"
        else f'<refset setid="{setid}" srclang="any" trglang="{lang}">'
    )
    body = [header, f'<doc sysid="{role}" docid="{docid}" origlang="{lang}">', "<p>"]
    body += [f'<seg id="{n}">{line}</seg>' for n, line in enumerate(lines, 1)]
    body += ["</p>", "</doc>", f"</{role}set>"]
    return write_atomic(path, "\n".join(body) + "\n")


# -- Moses tokenization -----------------------------------------------------------------------------------------
@functools.cache
def _moses(lang: str, detokenizer: bool = False):
    from sacremoses import MosesDetokenizer, MosesTokenizer

    return MosesDetokenizer(lang) if detokenizer else MosesTokenizer(lang)


def tokenize(lines: Iterable[str], lang: str) -> list[str]:
    """Each line tokenized with the Moses rules of ``lang`` as the reference's ``tokenizer.perl -q -l LANG``:
    punctuation split off, XML special characters escaped (``&amp;``, ``&quot;``, ``&apos;``, ...), no aggressive
    hyphen splitting; tokens joined by single spaces."""
    tokenizer = _moses(lang)
    return [tokenizer.tokenize(line, aggressive_dash_splits=False, return_str=True, escape=True) for line in lines]


def detokenize(lines: Iterable[str], lang: str) -> list[str]:
    """The inverse of :func:`tokenize` as Moses' detokenizer does it: tokens joined by the rules of ``lang``,
    escapes undone."""
    detokenizer = _moses(lang, detokenizer=True)
    return [detokenizer.detokenize(line.split(), unescape=True) for line in lines]


# -- cleaning -------------------------------------------------------------------------------------------------------
def clean(
    pairs: Iterable[tuple[str, str]],
    min_length: int = 1,
    max_length: int = MAX_LENGTH,
    ratio: float = RATIO,
    max_word_length: int = MAX_WORD_LENGTH,
) -> Iterator[tuple[str, str]]:
    """The pairs clean-corpus-n.perl keeps, normalised as it writes them: white space collapsed and trimmed, ``|``
    removed (unless the first pair has one: a factored corpus); a pair is dropped when a side is empty, has fewer
    than ``min_length`` or more than ``max_length`` tokens (split on spaces), when one side has more than ``ratio``
    times the other's tokens, or when a side has a token longer than ``max_word_length`` characters."""
    factored = None
    long_word = re.compile(rf"[^\s|]{{{max_word_length + 1}}}")
    for src, tgt in pairs:
        if factored is None:
            factored = "|" in src or "|" in tgt
        if not factored:
            src, tgt = src.replace("|", ""), tgt.replace("|", "")
        src, tgt = _SPACE.sub(" ", src).strip(), _SPACE.sub(" ", tgt).strip()
        if not src or not tgt:
            continue
        ns, nt = len(src.split(" ")), len(tgt.split(" "))
        if not (min_length <= ns <= max_length and min_length <= nt <= max_length):
            continue
        if ns / nt > ratio or nt / ns > ratio or long_word.search(src) or long_word.search(tgt):
            continue
        yield src, tgt


def latin1(pairs: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """The pairs whose two sides are Latin-1 text: the reference's filter_dataset.py, which drops the rest (rare
    glyphs, other scripts: most likely not English-German pairs)."""
    for src, tgt in pairs:
        try:
            src.encode("latin-1")
            tgt.encode("latin-1")
        except UnicodeEncodeError:
            continue
        yield src, tgt


# -- BPE ------------------------------------------------------------------------------------------------------------
def learn_bpe(lines: Iterable[str], out: str | os.PathLike, merges: int = MERGES, min_frequency: int = 2) -> Path:
    """Learn ``merges`` BPE merge operations (fewer if no pair occurs ``min_frequency`` times) from tokenized
    ``lines`` with subword-nmt, as the reference's ``learn_bpe.py -s MERGES``, into the codes file ``out``."""
    from subword_nmt.learn_bpe import learn_bpe as learn

    with atomic_output(out) as fh:
        learn((line for line in lines), fh, merges, min_frequency=min_frequency)
    return Path(out)


@functools.cache
def _bpe(codes: str):
    from subword_nmt.apply_bpe import BPE

    with open(codes, encoding="utf-8") as fh:
        return BPE(fh)


def apply_bpe(lines: Iterable[str], codes: str | os.PathLike) -> list[str]:
    """Each tokenized line segmented with the BPE ``codes`` file, ``@@`` ending every piece but a word's last,
    as the reference's ``apply_bpe.py -c CODES``."""
    bpe = _bpe(str(codes))
    return [bpe.process_line(line) for line in lines]


_BPE_MARK = re.compile(r"@@( |$)")


def remove_bpe(lines: Iterable[str]) -> list[str]:
    """The tokens of BPE-segmented lines joined back (``@@ `` removed), as a translation is before detokenizing."""
    return [_BPE_MARK.sub("", line) for line in lines]


def bpe_vocab(lines: Iterable[str]) -> list[str]:
    """The tokens of ``lines``, most frequent first (ties in order of first appearance): subword-nmt's get_vocab
    without its counts, the reference's ``get_vocab.py | cut -f1 -d ' '``."""
    import io

    from subword_nmt.get_vocab import get_vocab

    out = io.StringIO()
    get_vocab(lines, out)
    return [row.split(" ", 1)[0] for row in out.getvalue().splitlines()]


# -- files ----------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, binary: bool = False) -> Iterator:
    """A file handle (text, UTF-8, or ``binary``) whose file is renamed to ``path`` once the block ends without an
    exception: a kill or an error leaves the old file, or none. The file is written in a partial folder beside
    ``path`` (loadgen.data.partial_folder), so a killed run's leftovers are reclaimed by the next run."""
    path = Path(path)
    work = partial_folder(path.parent, path.name)
    try:
        with open(work / path.name, "wb") if binary else open(work / path.name, "w", **ENCODING) as fh:
            yield fh
        os.replace(work / path.name, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def read_lines(path: str | os.PathLike) -> Iterator[str]:
    """The lines of a text file without their newline; only ``\\n`` ends a line, as for the Perl tools."""
    try:
        with open(path, **ENCODING) as fh:
            for line in fh:
                yield line[:-1] if line.endswith("\n") else line
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None


def write_lines(path: str | os.PathLike, lines: Iterable[str]) -> int:
    """Write ``lines`` to ``path`` whole or not at all; how many."""
    count = 0
    with atomic_output(path) as fh:
        for line in lines:
            fh.write(line + "\n")
            count += 1
    return count


def _pairs(folder: Path, stem: str) -> Iterator[tuple[str, str]]:
    """The line pairs of ``<stem>.en`` and ``<stem>.de``; files of different lengths raise DataError."""
    sentinel = object()
    paths = [folder / f"{stem}.{lang}" for lang in LANGS]
    for n, (src, tgt) in enumerate(itertools.zip_longest(*map(read_lines, paths), fillvalue=sentinel)):
        if src is sentinel or tgt is sentinel:
            short = paths[0] if src is sentinel else paths[1]
            raise DataError(
                f"{short}: {n} lines, fewer than {paths[1] if short == paths[0] else paths[0]}; the "
                "two sides of a parallel corpus must have a line each"
            )
        yield src, tgt


def _write_pairs(folder: Path, stem: str, pairs: Iterable[tuple[str, str]]) -> int:
    """Write ``<stem>.en`` and ``<stem>.de`` from ``pairs``, both whole or neither; how many pairs."""
    count = 0
    with atomic_output(folder / f"{stem}.{LANGS[0]}") as src_fh, atomic_output(folder / f"{stem}.{LANGS[1]}") as tgt_fh:
        for src, tgt in pairs:
            src_fh.write(src + "\n")
            tgt_fh.write(tgt + "\n")
            count += 1
    return count


def _chunks(lines: Iterable[str]) -> Iterator[list[str]]:
    it = iter(lines)
    while chunk := list(itertools.islice(it, CHUNK)):
        yield chunk


def _tokenize_chunk(lang: str, lines: list[str]) -> list[str]:
    return tokenize(lines, lang)


def _bpe_chunk(codes: str, lines: list[str]) -> list[str]:
    return apply_bpe(lines, codes)


def _results(
    fn: Callable[[str, list[str]], list[str]], arg: str, chunks: Iterable[list[str]], workers: int
) -> Iterator[list[str]]:
    """``fn(arg, chunk)`` for each chunk, in order: ``workers`` processes at a time, a bounded window of chunks in
    flight (in this process when one worker, or when there is a single chunk)."""
    from loadgen.data.processes import process_pool

    chunks = iter(chunks)
    head = list(itertools.islice(chunks, 2))
    if workers <= 1 or len(head) < 2:
        yield from (fn(arg, chunk) for chunk in itertools.chain(head, chunks))
        return
    with process_pool(workers) as pool:
        pending: deque = deque()
        for chunk in itertools.chain(head, chunks):
            pending.append(pool.submit(fn, arg, chunk))
            while pending and (len(pending) > 2 * workers or pending[0].done()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _map_file(
    fn: Callable[[str, list[str]], list[str]], arg: str, src: Path, dest: Path, workers: int, progress: bool
) -> int:
    """``dest`` from ``fn(arg, chunk)`` over the chunks of ``src``'s lines (:func:`_results`); how many lines."""
    from tqdm import tqdm

    count = 0
    with (
        tqdm(desc=dest.name, unit="line", unit_scale=True, disable=None if progress else True, leave=False) as bar,
        atomic_output(dest) as fh,
    ):
        for out in _results(fn, arg, _chunks(read_lines(src)), workers):
            fh.writelines(line + "\n" for line in out)
            count += len(out)
            bar.update(len(out))
    return count


def _fresh(outputs: Sequence[Path], inputs: Sequence[Path]) -> bool:
    """Whether every output exists and is newer than every input (an output only ever appears whole)."""
    if not all(p.is_file() for p in outputs):
        return False
    return min(p.stat().st_mtime for p in outputs) >= max((p.stat().st_mtime for p in inputs), default=0)


def sgm_pair(folder: str | os.PathLike, name: str) -> dict[str, Path]:
    """``{lang: path}`` of test set ``name``'s two SGM files in ``folder`` (``<name>-<pair>-src.<lang>.sgm`` and
    ``<name>-<pair>-ref.<lang>.sgm``, one English and one German); anything else raises DataError."""
    folder = Path(folder)
    found = {}
    for role in ("src", "ref"):
        paths = sorted(folder.glob(f"{name}-*-{role}.*.sgm"))
        if len(paths) != 1:
            raise DataError(
                f"{folder}: {len(paths) or 'no'} {name}-*-{role}.<lang>.sgm files"
                f"{' (' + ', '.join(p.name for p in paths) + ')' if paths else ''}; expected one"
            )
        found[paths[0].name.rsplit(".", 2)[-2]] = paths[0]
    if sorted(found) != sorted(LANGS):
        raise DataError(
            f"{folder}: {name}'s SGM files are in {', '.join(sorted(found))}; expected one in each of "
            f"{', '.join(LANGS)}"
        )
    return found


def sgm_to_text(folder: str | os.PathLike, name: str) -> int:
    """``<name>.en`` and ``<name>.de`` in ``folder`` from the set's two SGM files (:func:`sgm_pair`); how many
    sentences. Sides of different lengths raise DataError."""
    folder = Path(folder)
    files = sgm_pair(folder, name)
    sides = {lang: read_sgm(path) for lang, path in files.items()}
    if len(sides["en"]) != len(sides["de"]):
        raise DataError(f"{files['de']}: {len(sides['de'])} segments, {files['en'].name} has {len(sides['en'])}")
    return _write_pairs(folder, name, zip(sides["en"], sides["de"], strict=True))


def processed_files(merges: int = MERGES, dev_sets: Sequence[str] = DEV_SETS, test: str = TEST) -> list[str]:
    """The files :func:`prepare` writes besides manifest.json, by name."""
    names = [f"bpe.{merges}", f"vocab.bpe.{merges}"]
    for lang in LANGS:
        names += [f"{TRAIN}.tok.{lang}", f"{TRAIN}.tok.clean.{lang}", f"{TRAIN}.tok.clean.bpe.{merges}.{lang}"]
        if dev_sets:
            names += [f"{DEV}.tok.clean.{lang}", f"{DEV}.tok.clean.bpe.{merges}.{lang}"]
        for name in (test, *dev_sets):
            names += [f"{name}.{lang}", f"{name}.tok.{lang}", f"{name}.tok.bpe.{merges}.{lang}"]
        names += [f"{name}.tok.clean.{lang}" for name in dev_sets]
    return sorted(names)


def write_manifest(folder: str | os.PathLike, **about) -> Path:
    """``folder/manifest.json``: every file at the top of ``folder`` with its size and sha256 (the archives and
    the members taken from them, in ``archives/`` and ``data/``, ignored: they are checked against
    wmt_files.json), plus ``about`` (what built it). Written last, so it says the folder is whole."""
    folder = Path(folder)
    files = {k: v for k, v in Manifest.of_folder(folder, ("*",)).files.items() if not k.startswith(".")}
    body = {"files": {k: v for k, v in files.items() if k != MANIFEST}, "counts": [], "ignore": list(IGNORED), **about}
    return write_atomic(folder / MANIFEST, json.dumps(body, indent=1) + "\n")


def _step(what: str, outputs: Sequence[Path], inputs: Sequence[Path], run: Callable[[], object]) -> None:
    """Run ``run`` unless ``outputs`` are newer than ``inputs``; say what was done."""
    if _fresh(outputs, inputs):
        print(f"{what}: up to date")
        return
    result = run()
    print(f"{what}: {result}")


class _Folder:
    """The files of one folder by stem and language: ``folder.of("train.tok", "en")`` is ``train.tok.en``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def of(self, stem: str, lang: str) -> Path:
        return self.folder / f"{stem}.{lang}"

    def both(self, stem: str, langs: Sequence[str] = LANGS) -> list[Path]:
        return [self.of(stem, lang) for lang in langs]

    def lines(self, stems: Iterable[str], langs: Sequence[str] = LANGS) -> Iterator[str]:
        """The lines of every ``<stem>.<lang>``, stem by stem, language by language."""
        return itertools.chain.from_iterable(read_lines(p) for stem in stems for p in self.both(stem, langs))


def prepare(
    folder: str | os.PathLike,
    merges: int = MERGES,
    max_length: int = MAX_LENGTH,
    progress: bool = True,
    dev_sets: Sequence[str] = DEV_SETS,
    test: str = TEST,
    workers: int | None = None,
) -> Path:
    """GNMT's processed files in ``folder`` from its raw files there, as the reference's script; the manifest.

    Reads ``train.en``, ``train.de`` (parallel, a sentence a line) and, for ``test`` and each of ``dev_sets``, its
    two SGM files ``<name>-<pair>-src.<l>.sgm`` and ``<name>-<pair>-ref.<l>.sgm`` (one English, one German:
    ``newstest2014-deen-src.en.sgm`` and ``newstest2014-deen-ref.de.sgm``).

    Writes, for ``l`` in en and de (``M`` = ``merges``):

    - ``<name>.l`` for each test and dev set: its plain text, from the SGM files;
    - ``train.tok.l``, ``<name>.tok.l``: Moses-tokenized (:func:`tokenize`);
    - ``train.tok.clean.l``: the pairs :func:`clean` keeps (1..``max_length`` tokens, ratio 9) that are Latin-1
      (:func:`latin1`); ``<dev>.tok.clean.l`` for each dev set, cleaned; ``newstest_dev.tok.clean.l``: those of
      ``dev_sets`` concatenated, Latin-1 pairs only;
    - ``bpe.M``: ``M`` merges learnt on ``train.tok.clean.de`` then ``train.tok.clean.en``;
    - ``train.tok.clean.bpe.M.l``, ``newstest_dev.tok.clean.bpe.M.l``, ``<name>.tok.bpe.M.l``: BPE applied;
    - ``vocab.bpe.M``: the tokens of ``train.tok.clean.bpe.M.en`` then ``.de``, most frequent first;
    - ``manifest.json``: every file at the top of ``folder`` with its size and sha256, last.

    (The reference also writes ``train.clean``, the cleaned untokenized text, and BPE versions of ``train.tok``
    and of the other ``.tok.clean`` files, which its training does not read; they are not written here.)
    ``workers`` processes tokenize and apply BPE (default: the CPU count). A step whose outputs are newer than its
    inputs is skipped, so a killed run resumes; the manifest is removed first and written last.
    """
    at = _Folder(Path(folder))
    workers = workers or os.cpu_count() or 1
    (at.folder / MANIFEST).unlink(missing_ok=True)
    sets = (test, *dev_sets)
    for name in sets:
        _step(
            f"{name}: plain text",
            at.both(name),
            list(sgm_pair(at.folder, name).values()),
            lambda name=name: f"{sgm_to_text(at.folder, name)} sentences",
        )

    def map_file(fn, arg: str, src: Path, dest: Path) -> str:
        return f"{_map_file(fn, arg, src, dest, workers, progress)} lines"

    for stem in (TRAIN, *sets):
        for lang in LANGS:
            src, dest = at.of(stem, lang), at.of(f"{stem}.tok", lang)
            _step(
                dest.name,
                [dest],
                [src],
                lambda lang=lang, src=src, dest=dest: map_file(_tokenize_chunk, lang, src, dest),
            )

    def cleaned(stem: str, pairs: Iterable[tuple[str, str]]) -> str:
        return f"{_write_pairs(at.folder, stem, pairs)} pairs kept"

    train_clean = f"{TRAIN}.tok.clean"
    _step(
        train_clean,
        at.both(train_clean),
        at.both(f"{TRAIN}.tok"),
        lambda: cleaned(train_clean, latin1(clean(_pairs(at.folder, f"{TRAIN}.tok"), max_length=max_length))),
    )
    for name in dev_sets:
        _step(
            f"{name}.tok.clean",
            at.both(f"{name}.tok.clean"),
            at.both(f"{name}.tok"),
            lambda name=name: cleaned(
                f"{name}.tok.clean", clean(_pairs(at.folder, f"{name}.tok"), max_length=max_length)
            ),
        )
    dev_clean = f"{DEV}.tok.clean"
    dev_stems = [dev_clean] if dev_sets else []  # no dev set (a mini set): no newstest_dev files
    for stem in dev_stems:
        _step(
            stem,
            at.both(stem),
            [p for name in dev_sets for p in at.both(f"{name}.tok.clean")],
            lambda: cleaned(
                dev_clean,
                latin1(itertools.chain.from_iterable(_pairs(at.folder, f"{name}.tok.clean") for name in dev_sets)),
            ),
        )

    codes = at.folder / f"bpe.{merges}"
    learn_from = ("de", "en")  # the reference learns on `cat train.tok.clean.de train.tok.clean.en`: German first

    def learn() -> str:
        learn_bpe(at.lines([train_clean], learn_from), codes, merges)
        return f"{len(codes.read_text().splitlines()) - 1} merges"  # less its version line

    _step(codes.name, [codes], at.both(train_clean, learn_from), learn)
    for stem in (train_clean, *dev_stems, *(f"{name}.tok" for name in sets)):
        for lang in LANGS:
            src, dest = at.of(stem, lang), at.of(f"{stem}.bpe.{merges}", lang)
            _step(
                dest.name, [dest], [src, codes], lambda src=src, dest=dest: map_file(_bpe_chunk, str(codes), src, dest)
            )
    vocab = at.folder / f"vocab.bpe.{merges}"
    bpe_train = f"{train_clean}.bpe.{merges}"
    _step(
        vocab.name,
        [vocab],
        at.both(bpe_train),
        lambda: f"{write_lines(vocab, bpe_vocab(at.lines([bpe_train])))} tokens",
    )
    return write_manifest(
        at.folder, dataset="wmt16", merges=merges, max_length=max_length, test=test, dev=list(dev_sets)
    )


# -- sentencepiece (the Transformer) ----------------------------------------------------------------------------
def learn_sentencepiece(
    files: Sequence[str | os.PathLike],
    prefix: str | os.PathLike,
    vocab_size: int = VOCAB_SIZE,
    sample: int = 0,
    threads: int = 1,
    progress: bool = True,
) -> Path:
    """A shared sentencepiece unigram model of ``vocab_size`` pieces learnt on the raw text of ``files`` (all
    their lines, or a random ``sample`` of them when non-zero): ``<prefix>.model`` and ``<prefix>.vocab``, both
    renamed into place once written; the model's path. Every character of the text is covered (English and
    German: one script)."""
    import sentencepiece as spm

    prefix = Path(prefix)
    tmp = partial_folder(prefix.parent, prefix.name)  # reclaimed by the next run if this one is killed
    try:
        spm.SentencePieceTrainer.train(
            input=",".join(str(p) for p in files),
            model_prefix=str(tmp / prefix.name),
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=1.0,
            input_sentence_size=sample,
            shuffle_input_sentence=bool(sample),
            num_threads=threads,
            minloglevel=0 if progress else 2,
        )
        for suffix in (".vocab", ".model"):  # the model last: it is what says the pair is whole
            os.replace(tmp / f"{prefix.name}{suffix}", prefix.with_name(prefix.name + suffix))
    except RuntimeError as exc:  # sentencepiece's own errors: a corpus too small for the vocabulary, ...
        raise DataError(
            f"{', '.join(map(str, files))}: sentencepiece cannot learn {vocab_size} pieces ({one_line(exc)})"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return prefix.with_name(prefix.name + ".model")


@functools.cache
def _sentencepiece(model: str):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=model)


def encode_pieces(lines: Iterable[str], model: str | os.PathLike) -> list[str]:
    """Each raw line as its sentencepiece pieces, space-separated (``spm_encode --output_format=piece``)."""
    processor = _sentencepiece(str(model))
    return [" ".join(pieces) for pieces in processor.encode(list(lines), out_type=str)]


def decode_pieces(lines: Iterable[str], model: str | os.PathLike) -> list[str]:
    """The raw text of lines of space-separated pieces (:func:`encode_pieces`' inverse)."""
    processor = _sentencepiece(str(model))
    return [processor.decode(line.split(" ")) if line else "" for line in lines]


def _pieces_chunk(model: str, lines: list[str]) -> list[str]:
    return encode_pieces(lines, model)


def prepare_sentencepiece(
    folder: str | os.PathLike,
    vocab_size: int = VOCAB_SIZE,
    progress: bool = True,
    dev: str = TRANSFORMER_DEV,
    test: str = TEST,
    sample: int = SAMPLE,
    workers: int | None = None,
) -> Path:
    """The Transformer's processed files in ``folder`` from its raw files there; the manifest.

    Reads ``train.en``, ``train.de``, ``<dev>.en``, ``<dev>.de`` (plain text: newstest2013, as WMT's dev.tgz holds
    it) and ``test``'s two SGM files (``newstest2014-deen-src.en.sgm``, ``newstest2014-deen-ref.de.sgm``). Writes
    ``<test>.en``, ``<test>.de`` (plain text); ``spm.ende.V.model`` and ``spm.ende.V.vocab``: one sentencepiece
    model of ``vocab_size`` (V) pieces learnt on ``train.en`` and ``train.de`` (a random ``sample`` of their
    lines, 0 for all); ``train.spm.V.l``, ``<dev>.spm.V.l``, ``<test>.spm.V.l``: each line as its pieces; and
    ``manifest.json``, last. No tokenization or cleaning: the reference has none.
    """
    at = _Folder(Path(folder))
    workers = workers or os.cpu_count() or 1
    (at.folder / MANIFEST).unlink(missing_ok=True)
    _step(
        f"{test}: plain text",
        at.both(test),
        list(sgm_pair(at.folder, test).values()),
        lambda: f"{sgm_to_text(at.folder, test)} sentences",
    )
    prefix = at.folder / f"spm.ende.{vocab_size}"
    model = prefix.with_name(prefix.name + ".model")
    _step(
        model.name,
        [model],
        at.both(TRAIN),
        lambda: learn_sentencepiece(at.both(TRAIN), prefix, vocab_size, sample, workers, progress).name,
    )
    for stem in (TRAIN, dev, test):
        for lang in LANGS:
            src, dest = at.of(stem, lang), at.of(f"{stem}.spm.{vocab_size}", lang)
            _step(
                dest.name,
                [dest],
                [src, model],
                lambda src=src, dest=dest: (
                    str(_map_file(_pieces_chunk, str(model), src, dest, workers, progress)) + " lines"
                ),
            )
    return write_manifest(at.folder, dataset="wmt17", vocab_size=vocab_size, test=test, dev=[dev])
