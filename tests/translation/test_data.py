"""WMT English-German data (translation.data): download and verify through the folder's scripts against a
statmt.org-shaped mirror on 127.0.0.1 serving small archives of synthetic sentences (made up here from word
lists, in the references' member layout), a resumed download, bad usage, and the text processing itself: SGM,
Moses tokenization, cleaning, BPE and sentencepiece round trips."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.parse
from pathlib import Path, PurePosixPath

import pytest

from tests.coco_mirror import REPO, SCRIPT_ENV, mirroring, write_tgz
from translation.data import cli, wmt, wmt_files
from translation.data.layout import FILES_MANIFEST

DOWNLOAD = REPO / "translation" / "download_dataset.sh"
VERIFY = REPO / "translation" / "verify_dataset.sh"

# Synthetic parallel sentences: every combination of these English/German phrases (written for this test).
SUBJECTS = [
    ("The teacher", "Der Lehrer"),
    ("My neighbour", "Mein Nachbar"),
    ("The old driver", "Der alte Fahrer"),
    ("Our baker", "Unser Bäcker"),
    ("The tall gardener", "Der große Gärtner"),
]
VERBS = [("reads", "liest"), ("buys", "kauft"), ("sees", "sieht"), ("carries", "trägt")]
OBJECTS = [
    ("a green book", "ein grünes Buch"),
    ("{n} sweet apples", "{n} süße Äpfel"),
    ("the white bag", "die weiße Tasche"),
    ("a hot soup", "eine heiße Suppe"),
]


def synthetic_pairs(count: int, offset: int = 0) -> list[tuple[str, str]]:
    pairs = []
    for i in range(offset, offset + count):
        (s_en, s_de), (v_en, v_de) = SUBJECTS[i % len(SUBJECTS)], VERBS[(i // 5) % len(VERBS)]
        o_en, o_de = OBJECTS[(i // 20) % len(OBJECTS)]
        end = "?" if i % 7 == 0 else "."
        pairs.append((f"{s_en} {v_en} {o_en.format(n=i + 2)}{end}", f"{s_de} {v_de} {o_de.format(n=i + 2)}{end}"))
    return pairs


# Pairs the cleaning drops: an empty side, more than 80 tokens, and text that is not Latin-1 (the reference's filter).
DROPPED = [("", "Leer."), (" ".join(["word"] * 85) + ".", "Zu lang."), ("★ Stars ★", "Sterne.")]
SETS = {"newstest2014": 12, "newstest2015": 6, "newstest2016": 5, "newstest2013": 7}
TEST_PAIRS = {name: synthetic_pairs(n, 200 + 20 * k) for k, (name, n) in enumerate(SETS.items())}
TRAIN_PAIRS = [synthetic_pairs(40) + DROPPED, synthetic_pairs(30, 40), synthetic_pairs(30, 70)]  # by recipe order


def side(pairs: list[tuple[str, str]], lang: str) -> list[str]:
    return [p[0] if lang == "en" else p[1] for p in pairs]


def member_bytes(recipe: dict, member: str) -> bytes:
    """What the fabricated archive holds under ``member``: an SGM test set, a training corpus or a plain set."""
    name = PurePosixPath(member).name
    if name.endswith(".sgm"):  # <set>-deen-<role>.<lang>.sgm
        stem, lang, _ = name.rsplit(".", 2)
        setid, role = stem.split("-deen-")
        tags = f'<{role}set setid="{setid}" srclang="any">\n<doc docid="synthetic" sysid="{role}">\n'
        segs = "".join(f'<seg id="{n}">{line}</seg>\n' for n, line in enumerate(side(TEST_PAIRS[setid], lang), 1))
        return (tags + segs + f"</doc>\n</{role}set>\n").encode()
    stem, lang = name.rsplit(".", 1)
    stems = [s for _, s in recipe["train"]]
    pairs = TRAIN_PAIRS[stems.index(stem)] if stem in stems else TEST_PAIRS[stem]
    return "".join(line + "\n" for line in side(pairs, lang)).encode()


@pytest.fixture
def mirror(tmp_path):
    """Both recipes' archives under statmt.org's paths (a URL the two share, once), and a copy of wmt_files.json
    with their checksums and sentence counts."""
    folder = tmp_path / "mirror"
    spec = json.loads(FILES_MANIFEST.read_text())
    served, sums = {}, {}
    for dataset in ("wmt16", "wmt17"):
        recipe = spec[dataset]
        for key, entry in recipe["archives"].items():
            path = folder / urllib.parse.urlparse(entry["url"]).path.lstrip("/")
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_tgz(path, {member: member_bytes(recipe, member) for member in entry["members"]})
                data = path.read_bytes()
                sums[path] = {
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "md5": hashlib.md5(data).hexdigest(),
                    "bytes": len(data),
                }
            served[dataset, key] = path
            for field in ("sha256", "md5", "bytes"):
                if field in entry:  # where the real manifest has one; Europarl de-en.tgz has none
                    entry[field] = sums[path][field]
        for group in ("sgm", "plain"):
            for name, item in recipe[group].items():
                item["sentences"] = SETS[name]
    manifest = tmp_path / "wmt_files.json"
    manifest.write_text(json.dumps(spec))
    with mirroring(folder) as server:
        server.manifest, server.served = manifest, served
        yield server


def flags(server) -> list:
    return ["--base-url", server.url, "--manifest", server.manifest]


def run(*argv) -> int:
    """``python -m translation.data ARGV`` in this process."""
    return cli.main(cli.get_args_parser().parse_args([str(a) for a in argv]))


def script(path: Path, *args, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(path), *map(str, args)], capture_output=True, text=True, env=SCRIPT_ENV, cwd=cwd, timeout=120
    )


def test_the_manifest_names_the_reference_sources():
    gnmt = wmt_files.Recipe.load(FILES_MANIFEST, "wmt16")
    assert {k: a.url for k, a in gnmt.archives.items()} == {  # rnn_translator/download_dataset.sh
        "europarl": "http://www.statmt.org/europarl/v7/de-en.tgz",
        "commoncrawl": "http://www.statmt.org/wmt13/training-parallel-commoncrawl.tgz",
        "nc-v11": "http://data.statmt.org/wmt16/translation-task/training-parallel-nc-v11.tgz",
        "dev": "http://data.statmt.org/wmt16/translation-task/dev.tgz",
        "test": "http://data.statmt.org/wmt16/translation-task/test.tgz",
    }
    assert gnmt.archives["dev"].md5 == "4a3dc2760bb077f4308cce96b06e6af6"  # sacrebleu's wmt16/dev
    assert gnmt.archives["europarl"].checks() == {}  # none published
    assert gnmt.sgm["newstest2014"] == ("dev", ("newstest2014-deen-src.en.sgm", "newstest2014-deen-ref.de.sgm"), 3003)
    transformer = wmt_files.Recipe.load(FILES_MANIFEST, "wmt17")
    assert [key for key, _ in transformer.train] == ["nc-v12", "commoncrawl", "europarl"]  # process_data.py's order
    assert transformer.archives["europarl"].sha256 == "0224c7c710c8a063dfd893b0cc0830202d61f4c75c17eb8e31836103d27d96e7"


def test_download_from_the_folder_then_verify_from_the_root(mirror, tmp_path):
    data_dir = tmp_path / "wmt16"
    proc = script(DOWNLOAD, data_dir, *flags(mirror), "--merges", 60, "--workers", 1, cwd=REPO / "translation")
    assert proc.returncode == 0, proc.stderr
    assert f"./verify_dataset.sh {data_dir}" in proc.stdout
    archives = json.loads(FILES_MANIFEST.read_text())["wmt16"]["archives"].values()
    assert sorted(mirror.paths()) == sorted(urllib.parse.urlparse(a["url"]).path for a in archives)
    # the raw layout: the corpora concatenated in the reference's order, the SGM files under WMT's names
    train = [p for pairs in TRAIN_PAIRS for p in pairs]
    assert (data_dir / "train.en").read_text().splitlines() == side(train, "en")
    assert wmt.read_sgm(data_dir / "newstest2014-deen-ref.de.sgm") == side(TEST_PAIRS["newstest2014"], "de")
    assert (data_dir / "newstest2014.en").read_text().splitlines() == side(TEST_PAIRS["newstest2014"], "en")
    # cleaning and the Latin-1 filter dropped exactly the three bad pairs; the dev set is 2015 + 2016
    clean_en = (data_dir / "train.tok.clean.en").read_text().splitlines()
    assert clean_en == wmt.tokenize([p[0] for p in train if p not in DROPPED], "en")
    assert len((data_dir / "newstest_dev.tok.clean.de").read_text().splitlines()) == 6 + 5
    codes = (data_dir / "bpe.60").read_text().splitlines()
    assert codes[0] == "#version: 0.2" and len(codes) == 61
    bpe = (data_dir / "train.tok.clean.bpe.60.de").read_text().splitlines()
    assert (
        any("@@ " in line for line in bpe)
        and wmt.remove_bpe(bpe) == (data_dir / "train.tok.clean.de").read_text().splitlines()
    )
    vocab = (data_dir / "vocab.bpe.60").read_text().splitlines()
    assert vocab[0] == "." and set(" ".join(bpe).split()) <= set(vocab)
    built = json.loads((data_dir / "manifest.json").read_text())
    assert built["dataset"] == "wmt16" and built["merges"] == 60
    assert set(built["files"]) == set(wmt.processed_files(60)) | {"train.en", "train.de"} | {
        f"{name}-deen-{role}.sgm"
        for name in ("newstest2014", "newstest2015", "newstest2016")
        for role in (("src.en", "ref.de") if name == "newstest2014" else ("src.de", "ref.en"))
    }
    assert (
        built["files"]["newstest2014.tok.bpe.60.en"]["sha256"]
        == hashlib.sha256((data_dir / "newstest2014.tok.bpe.60.en").read_bytes()).hexdigest()
    )

    proc = script(VERIFY, data_dir, "--manifest", mirror.manifest)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(f"{data_dir}: OK")

    again = script(DOWNLOAD, data_dir, *flags(mirror), "--merges", 60)
    assert again.returncode == 0, again.stderr
    assert len(mirror.paths()) == 5  # nothing fetched twice
    assert "bpe.60: up to date" in again.stdout


def test_verify_names_every_bad_file(mirror, tmp_path):
    data_dir = tmp_path / "wmt16"
    assert run("download", "--data-dir", data_dir, *flags(mirror), "--merges", 30, "--workers", 1) == 0
    with open(data_dir / "train.tok.clean.bpe.30.de", "r+b") as fh:  # same size, one byte changed
        fh.write(b"X")
    (data_dir / "vocab.bpe.30").unlink()
    with open(data_dir / "archives" / "dev.tgz", "ab") as fh:
        fh.write(b"trailing bytes")
    (data_dir / "stray.txt").write_text("not part of the set\n")
    proc = script(VERIFY, data_dir, "--manifest", mirror.manifest)
    assert proc.returncode == 1
    bad = sorted(line for line in proc.stderr.splitlines() if line.startswith("bad: "))
    assert len(bad) == 4, proc.stderr
    for path in ("archives/dev.tgz", "train.tok.clean.bpe.30.de", "vocab.bpe.30: missing", "stray.txt"):
        assert any(f"{data_dir}/{path}" in line for line in bad), path
    assert proc.stdout.strip() == f"{data_dir}: 4 problem(s)"


def test_a_dropped_download_resumes(mirror, tmp_path):
    recipe = wmt_files.Recipe.load(mirror.manifest, "wmt16")
    archive = recipe.archives["nc-v11"]
    payload = mirror.served["wmt16", "nc-v11"].read_bytes()
    part = tmp_path / "root" / "archives" / f"{archive.file}.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payload[: len(payload) // 2])  # what a killed run leaves
    done = wmt_files.fetch_archive(archive, tmp_path / "root", mirror.url, progress=False)
    assert done.endswith("from nc-v11.tgz")
    assert mirror.requests == [("/wmt16/translation-task/training-parallel-nc-v11.tgz", f"bytes={len(payload) // 2}-")]
    assert (tmp_path / "root" / "archives" / archive.file).read_bytes() == payload and not part.exists()
    assert sorted(p.name for p in archive.folder(tmp_path / "root").iterdir()) == [
        "news-commentary-v11.de-en.de",
        "news-commentary-v11.de-en.en",
    ]
    assert [p.name for p in (tmp_path / "root").iterdir() if p.name.startswith(".")] == []  # no partial folder left


def test_a_corrupt_download_is_refused_and_removed(mirror, tmp_path):
    recipe = wmt_files.Recipe.load(mirror.manifest, "wmt16")
    archive = recipe.archives["dev"]
    wrong = wmt_files.Archive(**{**archive.__dict__, "md5": "0" * 32})
    with pytest.raises(wmt_files.DataError, match="md5 is"):
        wmt_files.fetch_archive(wrong, tmp_path, mirror.url, progress=False)
    assert list((tmp_path / "archives").iterdir()) == []


@pytest.mark.parametrize(
    "argv, names",
    [
        (["download", "--merges", "0"], "--merges"),
        (["download", "--dataset", "wmt15"], "--dataset"),
        (["download", "--base-url", "ftp://mirror"], "--base-url"),
        (["verify", "--data-dir", ".", "--manifest", "/nonexistent/wmt_files.json"], "/nonexistent/wmt_files.json"),
        (["verify", "--data-dir", "/nonexistent/wmt16"], "/nonexistent/wmt16"),
    ],
    ids=["zero-merges", "unknown-dataset", "ftp-mirror", "missing-manifest", "missing-folder"],
)
def test_bad_usage_exits_2_with_one_line(argv, names):
    proc = subprocess.run(
        [sys.executable, "-m", "translation.data", *argv], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and names in proc.stderr
    assert proc.stderr.startswith("python -m translation.data")


def test_the_download_script_needs_no_folder():
    # `cd translation && ./download_dataset.sh` is how users start: the folder defaults to the recipe's.
    proc = script(DOWNLOAD, "--dataset", "wmt17", "--help", cwd=REPO / "translation")
    assert proc.returncode == 0
    assert "build/translation/wmt16_de_en, or build/translation/wmt17_de_en for wmt17" in " ".join(proc.stdout.split())


def test_verify_of_a_folder_never_built(tmp_path):
    proc = script(VERIFY, tmp_path)
    assert proc.returncode == 1
    assert (
        proc.stderr.strip() == f"bad: {tmp_path}/manifest.json: missing, so the folder was never processed "
        f"whole; run ./download_dataset.sh {tmp_path} again"
    )


# -- the text processing --------------------------------------------------------------------------------------------
SENTENCES = {
    "en": [
        "The committee met on 12 March 2016 and approved 3,500 new homes.",
        'She asked: "Why did the price rise by 4.5 percent?"',
        "It's not the first time; the U.S. team won 2-1 (after extra time)!",
        "Prices start at $19.99 & shipping is free.",
    ],
    "de": [
        "Die Größe der Straße überrascht Jürgen nicht.",
        "„Das Maß ist voll“, sagte die Bürgermeisterin am Dienstag.",
        "Er zahlte 1.234,56 Euro für das Fahrrad, oder?",
        "Über 80 Befragte äußerten sich: Ja, weiß ich!",
    ],
}


TOKENIZED = {  # what tokenizer.perl -l en / -l de writes for the last English and the third German sentence
    "en": "Prices start at $ 19.99 &amp; shipping is free .",
    "de": "Er zahlte 1.234,56 Euro für das Fahrrad , oder ?",
}


@pytest.mark.parametrize("lang", ["en", "de"])
def test_tokenize_bpe_and_back_give_the_sentence(lang, tmp_path):
    sentences = SENTENCES[lang]
    tokens = wmt.tokenize(sentences, lang)
    assert tokens[-1 if lang == "en" else 2] == TOKENIZED[lang]  # punctuation split off, XML characters escaped
    corpus = tokens + wmt.tokenize([p[0 if lang == "en" else 1] for p in synthetic_pairs(60)], lang)
    codes = wmt.learn_bpe(corpus, tmp_path / "bpe.40", merges=40)
    segmented = wmt.apply_bpe(tokens, codes)
    assert any("@@ " in line for line in segmented)  # words were split, so the round trip means something
    assert wmt.detokenize(wmt.remove_bpe(segmented), lang) == sentences


def test_clean_follows_clean_corpus_n():
    pairs = [
        ("a b c", "x y"),
        ("", "x"),
        ("a", ""),
        (" ".join("a" * 81), "x " * 40),
        ("a " * 10, "x"),
        ("a  b\tc ", " x|y "),
        ("w" * 1001, "x"),
        ("a", "x " * 9),
    ]
    assert list(wmt.clean(pairs)) == [("a b c", "x y"), ("a b c", "xy"), ("a", "x x x x x x x x x")]
    assert list(wmt.clean([("a b c", "x")], max_length=2)) == []
    assert list(wmt.latin1([("café", "Straße"), ("Москва", "Moskau"), ("ok", "★")])) == [("café", "Straße")]


def test_sgm_round_trip_and_wmt_layout(tmp_path):
    lines = ["Erster Satz.", "Zweiter Satz mit <b> und & darin.", "Dritter: „Zitat“ – 3,5 %."]
    path = wmt.write_sgm(tmp_path / "x-ref.de.sgm", lines, "newstest2099", "de", "ref")
    assert wmt.read_sgm(path) == lines
    assert path.read_text().splitlines()[0] == '<refset setid="newstest2099" srclang="any" trglang="de">'
    # segments over several lines, several documents, upper-case tags, spaces to collapse: as input-from-sgm.perl
    (tmp_path / "y.sgm").write_text(
        '<srcset setid="t" srclang="any">\n<doc docid="a" sysid="ref">\n'
        '<seg id="1"> one  two </seg>\n<SEG id="2">three\nfour</SEG>\n</doc>\n'
        '<doc docid="b" sysid="ref">\n<seg id="1">five</seg>\n</doc>\n</srcset>\n'
    )
    assert wmt.read_sgm(tmp_path / "y.sgm") == ["one two", "three four", "five"]
    with pytest.raises(ValueError, match="line 1"):
        wmt.write_sgm(tmp_path / "z.sgm", ["a </seg> b"], "t", "en")


def test_prepare_refuses_a_corpus_whose_sides_differ_and_writes_nothing_half(tmp_path):
    pairs = synthetic_pairs(20)
    (tmp_path / "train.en").write_text("".join(p[0] + "\n" for p in pairs))
    (tmp_path / "train.de").write_text("".join(p[1] + "\n" for p in pairs[:-1]))
    for name in ("newstest2014",):
        wmt.write_sgm(tmp_path / f"{name}-deen-src.en.sgm", [p[0] for p in pairs[:3]], name, "en", "src")
        wmt.write_sgm(tmp_path / f"{name}-deen-ref.de.sgm", [p[1] for p in pairs[:3]], name, "de", "ref")
    with pytest.raises(wmt.DataError, match="train.tok.de: 19 lines, fewer than"):
        wmt.prepare(tmp_path, merges=10, progress=False, dev_sets=(), workers=1)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "train.tok.clean.en" not in names and "manifest.json" not in names
    assert not [n for n in names if n.startswith(".")]  # no temporary file left behind


def test_sentencepiece_recipe_round_trip(tmp_path):
    pairs = synthetic_pairs(120)
    for lang, k in (("en", 0), ("de", 1)):
        (tmp_path / f"train.{lang}").write_text("".join(p[k] + "\n" for p in pairs))
        (tmp_path / f"newstest2013.{lang}").write_text("".join(p[k] + "\n" for p in pairs[:5]))
    wmt.write_sgm(tmp_path / "newstest2014-deen-src.en.sgm", [p[0] for p in pairs[5:9]], "newstest2014", "en")
    wmt.write_sgm(tmp_path / "newstest2014-deen-ref.de.sgm", [p[1] for p in pairs[5:9]], "newstest2014", "de", "ref")
    manifest = wmt.prepare_sentencepiece(tmp_path, vocab_size=90, progress=False, workers=1)
    built = json.loads(manifest.read_text())
    assert built["dataset"] == "wmt17" and "spm.ende.90.model" in built["files"]
    pieces = (tmp_path / "newstest2014.spm.90.de").read_text().splitlines()
    assert len(pieces) == 4 and any(
        len(line.split()) > len(p[1].split()) for line, p in zip(pieces, pairs[5:9], strict=True)
    )
    assert wmt.decode_pieces(pieces, tmp_path / "spm.ende.90.model") == [p[1] for p in pairs[5:9]]


def test_worker_processes_keep_the_order(tmp_path, monkeypatch):
    pairs = synthetic_pairs(50)
    (tmp_path / "train.de").write_text("".join(p[1] + "\n" for p in pairs))
    monkeypatch.setattr(wmt, "CHUNK", 7)  # 8 chunks over 2 spawned workers
    count = wmt._map_file(wmt._tokenize_chunk, "de", tmp_path / "train.de", tmp_path / "train.tok.de", 2, False)
    assert count == 50
    assert (tmp_path / "train.tok.de").read_text().splitlines() == wmt.tokenize([p[1] for p in pairs], "de")


def test_the_transformer_recipe_downloads_and_verifies(mirror, tmp_path):
    data_dir = tmp_path / "wmt17"
    argv = ["--dataset", "wmt17", "--data-dir", data_dir, *flags(mirror), "--vocab-size", 80, "--workers", 1]
    assert run("download", *argv) == 0
    archives = json.loads(FILES_MANIFEST.read_text())["wmt17"]["archives"].values()
    assert sorted(mirror.paths()) == sorted(urllib.parse.urlparse(a["url"]).path for a in archives)
    # process_data.py's order: News Commentary v12, Common Crawl, Europarl v7; no cleaning
    assert (data_dir / "train.de").read_text().splitlines() == side(
        TRAIN_PAIRS[0] + TRAIN_PAIRS[1] + TRAIN_PAIRS[2], "de"
    )
    assert (data_dir / "newstest2013.en").read_text().splitlines() == side(TEST_PAIRS["newstest2013"], "en")
    model = data_dir / "spm.ende.80.model"
    for stem in ("train", "newstest2013", "newstest2014"):
        pieces = (data_dir / f"{stem}.spm.80.de").read_text().splitlines()
        assert wmt.decode_pieces(pieces, model) == (data_dir / f"{stem}.de").read_text().splitlines()
    assert json.loads((data_dir / "manifest.json").read_text())["dataset"] == "wmt17"
    proc = script(VERIFY, data_dir, "--manifest", mirror.manifest)  # the recipe read from manifest.json
    assert proc.returncode == 0 and proc.stdout.strip().endswith(f"{data_dir}: OK"), proc.stderr
    with open(data_dir / "archives" / "training-parallel-nc-v12.tgz", "r+b") as fh:
        fh.write(b"\0")
    proc = script(VERIFY, data_dir, "--manifest", mirror.manifest)
    assert proc.returncode == 1 and "archives/training-parallel-nc-v12.tgz: sha256 is" in proc.stderr
