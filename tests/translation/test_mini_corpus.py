"""The embedded mini English-German corpus: deterministic, held-out sets disjoint from train and learnable from it,
WMT's layout and SGM format, permissive sources only."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from loadgen.data import DataError
from loadgen.data.manifest import Manifest, verify
from translation import mini_corpus


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return mini_corpus.build(tmp_path_factory.mktemp("corpus") / "raw")


def lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{path.name} does not end with a newline"
    return text[:-1].split("\n")


def words(text: str) -> set[str]:
    """Lowercased runs of letters: what a model has to have seen to spell."""
    return set(re.findall(r"[^\W\d_]+", text.lower()))


def test_two_builds_are_byte_identical(built, tmp_path):
    again = mini_corpus.build(tmp_path / "again")
    names = sorted(p.name for p in built.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert set(mini_corpus.FILES) | {"manifest.json"} == set(names)
    for name in names:
        assert (built / name).read_bytes() == (again / name).read_bytes(), name


def test_the_manifest_verifies_the_build(built):
    assert mini_corpus.ensure(built) == built  # finished: not rebuilt
    assert verify(built, Manifest.load(built / "manifest.json"), progress=False) == []


def test_parallel_files_are_clean_single_lines(built):
    for en_file, de_file in (mini_corpus.TRAIN, mini_corpus.DEV, mini_corpus.TEST):
        en, de = lines(built / en_file), lines(built / de_file)
        assert len(en) == len(de) > 0
        for line in en + de:
            assert line and line == " ".join(line.split()), f"{en_file}: {line!r} is empty or not normalised"


def test_dev_and_test_sources_never_occur_in_train(built):
    train = set(lines(built / "train.en"))
    dev, test = lines(built / "newstest2013.en"), lines(built / "newstest2014.en")
    assert not train & set(dev)
    assert not train & set(test)
    assert not set(dev) & set(test)
    assert len(set(dev)) == len(dev) and len(set(test)) == len(test)


def test_held_out_sets_are_learnable_from_train(built):
    """Every word of a dev or test sentence, on either side, occurs in train on the same side: the held-out sets
    are new combinations of seen parts (dates, amounts, lists, locale names), not unseen vocabulary."""
    seen_en = words((built / "train.en").read_text(encoding="utf-8"))
    seen_de = words((built / "train.de").read_text(encoding="utf-8"))
    for stem in ("newstest2013", "newstest2014"):
        unseen_en = words((built / f"{stem}.en").read_text(encoding="utf-8")) - seen_en
        unseen_de = words((built / f"{stem}.de").read_text(encoding="utf-8")) - seen_de
        assert not unseen_en and not unseen_de, (stem, sorted(unseen_en)[:10], sorted(unseen_de)[:10])


def nearest_neighbour(train_en: list[str], train_de: list[str], sources: list[str]) -> list[str]:
    """For each source, the German of the train sentence sharing the most character trigrams with it (Jaccard)."""
    from collections import Counter, defaultdict

    def grams(text: str) -> set[str]:
        text = text.lower()
        return {text[i : i + 3] for i in range(len(text) - 2)}

    index, train_grams = defaultdict(list), [grams(s) for s in train_en]
    for i, found in enumerate(train_grams):
        for gram in found:
            index[gram].append(i)
    hypotheses = []
    for source in sources:
        mine, shared = grams(source), Counter()
        for gram in mine:
            shared.update(index[gram])
        best = max(shared, key=lambda i: (shared[i] / len(train_grams[i] | mine), -i))
        hypotheses.append(train_de[best])
    return hypotheses


def test_test_set_needs_translating_and_a_lookup_in_train_already_scores(built):
    """The metric and tokenizer of the benchmark (sacreBLEU, lowercased, intl): copying the English scores far
    below the target 25, while looking up the most similar train sentence already scores above it, so a model
    trained on train can reach it."""
    import sacrebleu

    source, reference = lines(built / "newstest2014.en"), lines(built / "newstest2014.de")
    copy = sacrebleu.corpus_bleu(source, [reference], lowercase=True, tokenize="intl").score
    lookup = nearest_neighbour(lines(built / "train.en"), lines(built / "train.de"), source)
    looked_up = sacrebleu.corpus_bleu(lookup, [reference], lowercase=True, tokenize="intl").score
    assert copy < 15 and looked_up > 25, (copy, looked_up)


def test_sgm_files_are_wmt_sgm_matching_the_plain_test_set(built):
    src_path, ref_path = (built / name for name in mini_corpus.TEST_SGM)
    src, ref = ET.parse(src_path).getroot(), ET.parse(ref_path).getroot()  # well-formed XML too
    assert (src.tag, src.attrib) == ("srcset", {"setid": "newstest2014", "srclang": "any"})
    assert (ref.tag, ref.attrib) == ("refset", {"setid": "newstest2014", "srclang": "any", "trglang": "de"})
    for root, plain in ((src, "newstest2014.en"), (ref, "newstest2014.de")):
        docs = root.findall("doc")
        assert docs and all(d.get("sysid") == "ref" and d.get("origlang") == "en" and d.get("docid") for d in docs)
        for doc in docs:
            assert [int(s.get("id")) for s in doc.iter("seg")] == list(range(1, len(list(doc.iter("seg"))) + 1))
        assert [s.text for s in root.iter("seg")] == lines(built / plain)
    assert [d.get("docid") for d in src.findall("doc")] == [d.get("docid") for d in ref.findall("doc")]
    # WMT's own readers (sacreBLEU's, for one) take one <seg> per line by a regular expression, not an XML parser.
    for path, plain in ((src_path, "newstest2014.en"), (ref_path, "newstest2014.de")):
        segs = [re.sub(r"<seg.*?>(.*)</seg>.*?", r"\1", line) for line in lines(path) if line.startswith("<seg ")]
        assert segs == lines(built / plain)


def test_counts_per_split_and_source(built):
    record = json.loads((built / "sources.json").read_text(encoding="utf-8"))
    train, dev, test = (len(lines(built / name)) for name in ("train.en", "newstest2013.en", "newstest2014.en"))
    assert record["pairs"] == {"train": train, "dev": dev, "test": test}
    assert 20_000 <= train <= 40_000
    assert (
        (dev, test)
        == (sum(d for _, d in mini_corpus.HELD_OUT.values()), sum(t for t, _ in mini_corpus.HELD_OUT.values()))
        == (300, 500)
    )
    pairs = {s["key"]: s["pairs"] for s in record["sources"]}
    assert pairs["cldr"]["train"] >= 15_000
    assert pairs["django"]["train"] >= 500 and pairs["jupyterlab"]["train"] >= 800
    assert sum(p["train"] for p in pairs.values()) == train
    for family, (n_test, n_dev) in mini_corpus.HELD_OUT.items():
        assert record["families"][family]["test"] == n_test and record["families"][family]["dev"] == n_dev


def test_every_source_is_permissively_licensed_and_recorded(built):
    record = json.loads((built / "sources.json").read_text(encoding="utf-8"))
    assert [s["package"] for s in record["sources"]] == [s.distribution for s in mini_corpus.SOURCES]
    for entry in record["sources"]:
        assert entry["licences"] and set(entry["licences"]) <= mini_corpus.ALLOWED_LICENCES, entry
    cldr = next(s for s in record["sources"] if s["key"] == "cldr")
    assert cldr["licences"] == ["BSD-3-Clause", "Unicode-3.0"]  # Babel's code, CLDR's data


def test_a_copyleft_source_stops_the_build(monkeypatch, tmp_path):
    monkeypatch.setattr(mini_corpus, "package_licence", lambda name: "LGPL-2.1-only")
    with pytest.raises(DataError, match="LGPL-2.1-only"):
        mini_corpus.build(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_clean_normalises_cldr_spaces_and_drops_control_characters():
    assert mini_corpus.clean("3:04\u202fPM\n") == "3:04 PM"
    assert mini_corpus.clean("1\xa0Gigabyte") == "1 Gigabyte"
    assert mini_corpus.clean(" \n ") is None
    assert mini_corpus.clean("a\u200eb") is None


def test_catalogue_pairs_keep_placeholders_alike_on_both_sides():
    pairs = mini_corpus.catalogue_pairs(next(s for s in mini_corpus.SOURCES if s.key == "django"))
    assert ("This field cannot be blank.", "Dieses Feld darf nicht leer sein.") in {(p.en, p.de) for p in pairs}
    for pair in pairs:
        assert sorted(mini_corpus._PLACEHOLDER.findall(pair.en)) == sorted(mini_corpus._PLACEHOLDER.findall(pair.de))
        assert not re.search(r"<[^>]*>", pair.en + pair.de)
    assert not mini_corpus._same_placeholders("%(count)s items", "Elemente")


def test_german_inflection_is_cldrs():
    pairs = {(p.en, p.de) for p in mini_corpus.relative_times()}
    assert {("in 3 days", "in 3 Tagen"), ("1 year ago", "vor 1 Jahr"), ("5 hours", "5 Stunden")} <= pairs


def test_every_flag_says_its_default():
    for action in mini_corpus.get_args_parser(add_help=False)._actions:
        assert "(default: " in action.help, action.dest
