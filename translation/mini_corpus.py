"""The embedded mini English-German corpus: real human translations read from installed packages, written in the
raw on-disk layout of the WMT English-German data.

No package ships WMT text, but several ship English strings with their German translations, made by people:

- CLDR, the Unicode Common Locale Data Repository, through Babel (data under the Unicode License v3, Babel's code
  BSD-3-Clause). Its names (territories, languages, scripts, currencies, units, time zones, months, days, relative
  days such as "next Monday") are taken as they are. Its patterns are filled in by Babel's own formatters
  (``format_timedelta``, ``format_unit``, ``format_date``, ``format_list``, ``format_currency``...) on the same
  values in both languages, so the German side's word order, plural and case ("in 3 Tagen", "vor 1 Jahr",
  "Frankreich, Deutschland und Italien") are CLDR's, never ours.
- Django's German gettext catalogues (BSD-3-Clause): the messages of Django and its contrib apps.
- JupyterLab's German language pack, ``jupyterlab-language-pack-de-DE`` (BSD-3-Clause): JupyterLab's messages.

Every source's licence is read from its installed metadata at build time, must be in :data:`ALLOWED_LICENCES`,
and is recorded with its version and pair counts in ``sources.json``. The text itself is never in this repository:
each build reads it from the packages.

Layout (what the WMT download writes, raw and untokenised, UTF-8, one sentence a line):
``train.en`` / ``train.de``; the dev set ``newstest2013.en`` / ``.de``; the test set as WMT's SGM files
``newstest2014-deen-src.en.sgm`` / ``newstest2014-deen-ref.de.sgm`` and as plain ``newstest2014.en`` / ``.de``;
``sources.json``; ``manifest.json`` (written last: a build is finished when it is there).

Dev and test are instances of CLDR's patterns only (dates, durations, amounts of units and currencies, lists of
countries and languages, locale names), drawn at random from pattern instances whose English side occurs once in
the whole corpus: no dev or test source is a line of train, and dev and test are disjoint. Their parts (every
country, unit, month, number shape) occur many times in train in other combinations, so a small model can learn
them; the catalogue messages are train only, as a rare UI string could not be. This is a test of learning
patterns, not of news translation.

    python -m translation.mini_corpus --output build/translation/mini-raw
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import random
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

from loadgen.data import Manifest, atomic_folder, build_command, ensure_built
from loadgen.data.errors import DataError

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "build" / "translation" / "mini-raw"

# SPDX identifiers a source may carry: permissive licences only, so the built corpus may be shipped in an image.
ALLOWED_LICENCES = frozenset(
    {"Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "MIT", "Unicode-3.0", "Unicode-DFS-2016"}
)

TRAIN = ("train.en", "train.de")
DEV = ("newstest2013.en", "newstest2013.de")
TEST = ("newstest2014.en", "newstest2014.de")
TEST_SGM = ("newstest2014-deen-src.en.sgm", "newstest2014-deen-ref.de.sgm")
FILES = (*TRAIN, *DEV, *TEST, *TEST_SGM, "sources.json")

# Pattern families that dev and test are drawn from, with (test, dev) sizes: roughly each family's share of the
# pool, a little more for the small families, so that every kind of pattern train holds is tested.
HELD_OUT = {
    "cldr-relative": (60, 36),
    "cldr-units": (100, 60),
    "cldr-per-units": (20, 12),
    "cldr-dates": (110, 66),
    "cldr-times": (20, 12),
    "cldr-lists": (110, 66),
    "cldr-currency": (50, 30),
    "cldr-locales": (30, 18),
}

# Catalogue messages longer than this (in words, either side) are paragraphs of help text: dropped, to keep the
# corpus quick to train on.
MAX_WORDS = 40
# Markup and entities in a message make it a template, not a sentence.
_MARKUP = re.compile(r"<[^>]*>|&#?\w+;")
# Placeholders kept verbatim on both sides; a pair whose two sides do not hold the same ones is dropped.
_PLACEHOLDER = re.compile(r"%\(\w+\)[a-z]|%[sdif]|%\d+|\{[\w.]*\}")


@dataclasses.dataclass(frozen=True, order=True)
class Pair:
    """One English sentence and its German translation, with where it came from."""

    en: str
    de: str
    source: str  # a key of SOURCES
    family: str  # the kind of text, e.g. "cldr-dates" or "django"


@dataclasses.dataclass(frozen=True)
class Source:
    """An installed package that text is read from."""

    key: str
    distribution: str  # the package's distribution name
    what: str  # what is taken from it, for sources.json
    catalogues: str | None = None  # folder of its German gettext catalogues (.mo), for a catalogue source


SOURCES = (
    Source("cldr", "babel", "CLDR display names and patterns (filled in by Babel's formatters), English and German"),
    Source("django", "Django", "German gettext catalogues of Django and its contrib apps", "/locale/de/LC_MESSAGES/"),
    Source(
        "jupyterlab",
        "jupyterlab-language-pack-de-DE",
        "JupyterLab's German gettext catalogues",
        "/locale/de_DE/LC_MESSAGES/",
    ),
)


def clean(text: str) -> str | None:
    """``text`` with all whitespace (line breaks, CLDR's no-break and narrow spaces included) as single spaces, or
    None when nothing is left or it holds control or format characters (which no tokenizer treats alike)."""
    text = " ".join(text.split())
    if not text or any(unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs", "Cn") for c in text):
        return None
    return text


def _pairs(items: Iterable[tuple[str, str]], source: str, family: str) -> list[Pair]:
    """Clean both sides of each item; keep those with both sides non-empty."""
    found = []
    for en, de in items:
        en, de = clean(en or ""), clean(de or "")
        if en and de:
            found.append(Pair(en, de, source, family))
    return found


def _distribution(name: str) -> importlib.metadata.Distribution:
    """The installed package ``name``, or a DataError saying how to install it."""
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise DataError(
            f"the translation mini corpus reads the package {name}, which is not installed: run "
            "`make setup` (or pip install -c constraints.txt -e '.[tasks]')"
        ) from exc


def package_licence(distribution: str) -> str:
    """The SPDX identifier of an installed package's licence, from its metadata: ``License-Expression`` where
    given; a BSD classifier whose licence text has the three clauses counts as BSD-3-Clause. Anything else is
    returned as the metadata says it, so that it fails the allow-list rather than pass on a guess."""
    meta = _distribution(distribution).metadata
    if meta.get("License-Expression"):
        return meta["License-Expression"].strip()
    classifiers = sorted(c.rsplit(" :: ", 1)[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License"))
    text = " ".join((meta.get("License") or "").split())
    if (
        classifiers == ["BSD License"]
        and "Redistribution and use in source and binary forms" in text
        and "Neither the name of" in text
    ):
        return "BSD-3-Clause"
    return "; ".join(classifiers) or text[:80] or "unknown"


def cldr_licence() -> str:
    """The SPDX identifier of the CLDR data's licence, from the licence file Babel ships beside the data."""
    import babel

    path = Path(babel.__file__).parent / "locale-data" / "LICENSE.unicode"
    try:
        first = path.read_text(encoding="utf-8").lstrip().splitlines()[0].strip()
    except (OSError, IndexError):
        return "unknown"
    return {"UNICODE LICENSE V3": "Unicode-3.0"}.get(first, first)


def data_version(source: Source) -> str:
    """The version of the text read from ``source``: the CLDR release Babel ships, else the package's version."""
    if source.key == "cldr":
        from babel.core import get_cldr_version

        return f"CLDR {get_cldr_version()}"
    return importlib.metadata.version(source.distribution)


def licences(source: Source) -> list[str]:
    """Every licence that applies to the text read from ``source``: the package's, and for CLDR the data's."""
    found = [package_licence(source.distribution)]
    if source.key == "cldr":
        found.append(cldr_licence())
    return found


# -- CLDR names ----------------------------------------------------------------------------------------------------


def cldr_names() -> list[Pair]:
    """CLDR's display names in English and German (CLDR data, Unicode-3.0, read through Babel, BSD-3-Clause):
    territories, languages, scripts, variants, measurement systems, currencies (singular and plural), units,
    metazones ("Central European Summer Time"), months, days, quarters, eras, day periods and relative days and
    periods ("next Monday", "last year"). Only keys both locales name; train only."""
    from babel import Locale, dates, numbers, units

    en, de = Locale("en"), Locale("de")
    items: list[tuple[str, str]] = []

    def table(a, b) -> None:
        """The names of the keys both locales' tables hold, in key order."""
        items.extend((a[k], b[k]) for k in sorted(set(a) & set(b), key=str))

    for name in ("territories", "languages", "scripts", "variants", "measurement_systems"):
        table(getattr(en, name), getattr(de, name))
    for code in sorted(set(en.currencies) & set(de.currencies)):
        items.append((en.currencies[code], de.currencies[code]))
        items.append((numbers.get_currency_name(code, 2, en), numbers.get_currency_name(code, 2, de)))
    for unit in _units():
        items.append((units.get_unit_name(unit, "long", en), units.get_unit_name(unit, "long", de)))
    for zone in sorted(set(en.meta_zones) & set(de.meta_zones)):
        table(en.meta_zones[zone].get("long", {}), de.meta_zones[zone].get("long", {}))
    for width, context in (("wide", "format"), ("wide", "stand-alone"), ("abbreviated", "format")):
        table(dates.get_month_names(width, context, en), dates.get_month_names(width, context, de))
        table(dates.get_day_names(width, context, en), dates.get_day_names(width, context, de))
    table(dates.get_quarter_names("wide", "format", en), dates.get_quarter_names("wide", "format", de))
    for width in ("wide", "abbreviated"):
        table(dates.get_era_names(width, en), dates.get_era_names(width, de))
        table(dates.get_period_names(width, "format", en), dates.get_period_names(width, "format", de))
    fields_en, fields_de = en._data["date_fields"], de._data["date_fields"]  # no public accessor in Babel
    for field in sorted(k for k in set(fields_en) & set(fields_de) if "-" not in k):
        table(fields_en[field].get("relative", {}), fields_de[field].get("relative", {}))
    return _pairs(items, "cldr", "cldr-names")


def _units() -> list[str]:
    """Every unit CLDR names in both locales, but those it leaves untranslated in German with a bracketed note in
    English ("rin [JP]", the Japanese traditional units)."""
    from babel import Locale, units

    en, de = Locale("en"), Locale("de")
    found = []
    for unit in sorted(set(en._data["unit_display_names"]) & set(de._data["unit_display_names"])):
        names = units.get_unit_name(unit, "long", en) or "", units.get_unit_name(unit, "long", de) or ""
        if "[" not in names[0] + names[1]:
            found.append(unit)
    return found


# -- CLDR patterns, filled in by Babel ----------------------------------------------------------------------------

# Counts for the duration patterns: every small count, then the round ones people write.
COUNTS = (*range(1, 61), 72, 90, 100, 120, 150, 200, 365, 500, 1000)
RELATIVE_UNITS = ("second", "minute", "hour", "day", "week", "month", "year")


def relative_times() -> list[Pair]:
    """Durations with and without direction, each unit and count of :data:`COUNTS`: "in 3 days" / "in 3 Tagen",
    "1 year ago" / "vor 1 Jahr", "5 hours" / "5 Stunden" (Babel's ``format_timedelta``)."""
    from babel import dates

    items = []
    for unit, seconds in dates.TIMEDELTA_UNITS:
        if unit not in RELATIVE_UNITS:
            continue
        for count in COUNTS:
            delta = datetime.timedelta(seconds=count * seconds)
            for sign, direction in ((1, True), (-1, True), (1, False)):
                # An infinite threshold keeps the unit asked for: 40 days stay "40 days", not "1 month".
                both = [
                    dates.format_timedelta(
                        sign * delta, granularity=unit, threshold=float("inf"), add_direction=direction, locale=lang
                    )
                    for lang in ("en", "de")
                ]
                items.append((both[0], both[1]))
    return _pairs(items, "cldr", "cldr-relative")


def _amount(rng: random.Random) -> Decimal:
    """A quantity as people write them: mostly small whole numbers, some large ones, some with one decimal."""
    kind = rng.random()
    if kind < 0.45:
        return Decimal(rng.randint(1, 20))
    if kind < 0.75:
        return Decimal(rng.randint(21, 999))
    if kind < 0.85:
        return Decimal(rng.randint(1000, 99999))
    return Decimal(rng.randint(1, 999)) / 10


def unit_amounts(rng: random.Random, per_unit: int = 22) -> list[Pair]:
    """Amounts of every CLDR unit, long form: "3.5 kilometers" / "3,5 Kilometer" (Babel's ``format_unit``)."""
    from babel import units

    items = []
    for unit in _units():
        for _ in range(per_unit):
            value = _amount(rng)
            items.append(tuple(units.format_unit(value, unit, length="long", locale=lang) for lang in ("en", "de")))
    return _pairs(items, "cldr", "cldr-units")


PER_NUMERATORS = (
    "digital-gigabyte",
    "digital-megabit",
    "digital-megabyte",
    "energy-kilowatt-hour",
    "length-centimeter",
    "length-foot",
    "length-kilometer",
    "length-meter",
    "length-mile",
    "mass-gram",
    "mass-kilogram",
    "mass-pound",
    "mass-tonne",
    "volume-cubic-meter",
    "volume-gallon",
    "volume-liter",
    "volume-milliliter",
)
PER_DENOMINATORS = (
    "area-square-meter",
    "duration-day",
    "duration-hour",
    "duration-minute",
    "duration-month",
    "duration-second",
    "duration-week",
    "duration-year",
    "length-kilometer",
    "length-meter",
    "volume-liter",
)


def per_units(rng: random.Random, count: int = 900) -> list[Pair]:
    """Rates: "12 liters per hour" / "12 Liter pro Stunde" (Babel's ``format_compound_unit``)."""
    from babel import units

    items = []
    for _ in range(count):
        value, top, bottom = _amount(rng), rng.choice(PER_NUMERATORS), rng.choice(PER_DENOMINATORS)
        items.append(
            tuple(
                units.format_compound_unit(value, top, denominator_unit=bottom, length="long", locale=lang)
                for lang in ("en", "de")
            )
        )
    return _pairs(items, "cldr", "cldr-per-units")


# Date styles: Babel's named formats, CLDR skeletons, a date and time in UTC, a range of days in one month.
DATE_STYLES = ("full", "long", "medium", "yMMMM", "MMMMd", "yMMMMEEEEd", "yQQQQ", "datetime", "interval")
FIRST_DAY, LAST_DAY = datetime.date(1900, 1, 1).toordinal(), datetime.date(2099, 12, 31).toordinal()


def _date(value: datetime.datetime, style: str, lang: str, rng_days: int) -> str:
    """``value`` in one of :data:`DATE_STYLES`; an interval runs ``rng_days`` days from it."""
    from babel import dates

    if style in ("full", "long", "medium"):
        return dates.format_date(value.date(), style, locale=lang)
    if style == "datetime":
        return dates.format_datetime(value, "long", tzinfo=datetime.UTC, locale=lang)
    if style == "interval":
        end = value.date() + datetime.timedelta(days=rng_days)
        return dates.format_interval(value.date(), end, "yMMMd", locale=lang)
    return dates.format_skeleton(style, value.date(), locale=lang)


def calendar_dates(rng: random.Random, count: int = 6000) -> list[Pair]:
    """Dates of 1900-2099 in CLDR's date formats: "Monday, January 5, 2015" / "Montag, 5. Januar 2015",
    "1st quarter 2015" / "1. Quartal 2015", "Jan 5 – 10, 2015" / "5.–10. Jan. 2015" (Babel's ``format_date``,
    ``format_skeleton``, ``format_datetime``, ``format_interval``)."""
    items = []
    for _ in range(count):
        day = datetime.date.fromordinal(rng.randint(FIRST_DAY, LAST_DAY))
        value = datetime.datetime(
            day.year,
            day.month,
            day.day,
            rng.randint(0, 23),
            rng.randint(0, 59),
            rng.randint(0, 59),
            tzinfo=datetime.UTC,
        )
        style = rng.choice(DATE_STYLES)
        # An interval stays inside its month, so that both languages print it as one range of days.
        span = rng.randint(1, 27)
        if style == "interval" and day.day + span > 28:
            style = "long"
        items.append(tuple(_date(value, style, lang, span) for lang in ("en", "de")))
    return _pairs(items, "cldr", "cldr-dates")


def clock_times(rng: random.Random, extra: int = 500) -> list[Pair]:
    """Times of day: "3:05 PM" / "15:05" (Babel's ``format_time``), every five minutes and some minutes between."""
    from babel import dates

    minutes = list(range(0, 24 * 60, 5))
    others = sorted(set(range(24 * 60)) - set(minutes))
    minutes += rng.sample(others, extra)
    items = []
    for minute in sorted(minutes):
        value = datetime.time(minute // 60, minute % 60)
        items.append(tuple(dates.format_time(value, "short", locale=lang) for lang in ("en", "de")))
    return _pairs(items, "cldr", "cldr-times")


# CLDR's codes for test locales and the unknown region: names no one lists.
PSEUDO = frozenset({"XA", "XB", "ZZ", "mul", "und", "zxx"})


def _listable(a, b) -> list[tuple[str, str]]:
    """Names both locales give, without the commas or brackets that would blur a list's structure."""
    return [
        (a[k], b[k])
        for k in sorted(set(a) & set(b), key=str)
        if k not in PSEUDO and not re.search(r"[,()&]", a[k] + b[k])
    ]


def name_lists(rng: random.Random, count: int = 6500) -> list[Pair]:
    """Lists of two to four countries or languages, "and" or "or": "France, Germany, and Italy" / "Frankreich,
    Deutschland und Italien" (CLDR names joined by Babel's ``format_list``)."""
    from babel import Locale, lists

    en, de = Locale("en"), Locale("de")
    countries, languages = _listable(en.territories, de.territories), _listable(en.languages, de.languages)
    items = []
    for _ in range(count):
        names = countries if rng.random() < 0.75 else languages
        chosen = rng.sample(names, rng.choices((2, 3, 4), (0.5, 0.35, 0.15))[0])
        style = "standard" if rng.random() < 0.7 else "or"
        items.append(
            (
                lists.format_list([n[0] for n in chosen], style, locale=en),
                lists.format_list([n[1] for n in chosen], style, locale=de),
            )
        )
    return _pairs(items, "cldr", "cldr-lists")


# Currencies also written with their symbol: the common ones, whose symbols people know.
SYMBOL_CURRENCIES = ("CHF", "CNY", "EUR", "GBP", "INR", "JPY", "USD")


def currency_amounts(rng: random.Random, per_currency: int = 8, per_symbol: int = 60) -> list[Pair]:
    """Sums of money: "1,234.50 euros" / "1.234,50 Euro" for every current currency both locales name, and
    "€1,234.50" / "1.234,50 €" for the common ones (Babel's ``format_currency``)."""
    from babel import Locale, numbers

    en, de = Locale("en"), Locale("de")
    # A name with a date or a bracket is a withdrawn currency ("Bolivian Boliviano (1863–1963)").
    codes = [c for c in sorted(set(en.currencies) & set(de.currencies)) if not re.search(r"[\d()]", en.currencies[c])]

    def money(rng: random.Random) -> Decimal:
        """A sum: whole units more often than not, otherwise with cents."""
        whole = rng.random() < 0.6
        return Decimal(rng.randint(1, 9999)) if whole else Decimal(rng.randint(1, 999999)) / 100

    items = []
    for code in codes:
        for _ in range(per_currency):
            value = money(rng)
            items.append(
                tuple(numbers.format_currency(value, code, format_type="name", locale=lang) for lang in (en, de))
            )
    for code in SYMBOL_CURRENCIES:
        for _ in range(per_symbol):
            value = money(rng)
            items.append(tuple(numbers.format_currency(value, code, locale=lang) for lang in (en, de)))
    return _pairs(items, "cldr", "cldr-currency")


def locale_names() -> list[Pair]:
    """Names of every locale Babel knows with a region, script or variant: "German (Austria)" / "Deutsch
    (Österreich)" (CLDR's locale display pattern, through Babel's ``Locale.get_display_name``)."""
    from babel import Locale
    from babel.localedata import locale_identifiers

    items = []
    for identifier in sorted(locale_identifiers()):
        locale = Locale.parse(identifier)
        names = (locale.get_display_name("en"), locale.get_display_name("de"))
        if names[0] and "(" in names[0]:
            items.append(names)
    return _pairs(items, "cldr", "cldr-locales")


def cldr_patterns(seed: int = 0) -> list[Pair]:
    """Every pattern family, each with its own random stream so that changing one leaves the others as they
    were."""

    def rng(family: str) -> random.Random:
        """The family's own stream, seeded by a string (stable across runs, unlike hash())."""
        return random.Random(f"translation.mini_corpus:{seed}:{family}")

    return [
        *relative_times(),
        *unit_amounts(rng("units")),
        *per_units(rng("per-units")),
        *calendar_dates(rng("dates")),
        *clock_times(rng("times")),
        *name_lists(rng("lists")),
        *currency_amounts(rng("currency")),
        *locale_names(),
    ]


# -- gettext catalogues ---------------------------------------------------------------------------------------------


def _same_placeholders(en: str, de: str) -> bool:
    """Whether both sides hold the same placeholders, in any order (German may reorder them)."""
    return sorted(_PLACEHOLDER.findall(en)) == sorted(_PLACEHOLDER.findall(de))


def catalogue_pairs(source: Source) -> list[Pair]:
    """The translated messages of ``source``'s German gettext catalogues (.mo files, in path order).

    A plural message gives its singular and its plural form. Fuzzy and untranslated messages are skipped, and so
    are messages with markup, with placeholders that differ between the two sides, without a letter, or longer than
    :data:`MAX_WORDS` words. Placeholders (``%(name)s``, ``%1``, ``{0}``) are kept as they are on both sides."""
    from babel.messages.mofile import read_mo

    dist = _distribution(source.distribution)
    paths = sorted(str(f) for f in dist.files or () if source.catalogues in f"/{f}" and str(f).endswith(".mo"))
    if not paths:
        raise DataError(
            f"{source.distribution} {dist.version} has no German catalogues under "
            f"*{source.catalogues}: the translation mini corpus needs the pinned version"
        )
    items = []
    for path in paths:
        with open(dist.locate_file(path), "rb") as fh:
            catalog = read_mo(fh)
        for message in catalog:
            if not message.id or message.fuzzy:
                continue
            ids = tuple(message.id) if isinstance(message.id, (list, tuple)) else (message.id,)
            strings = tuple(message.string) if isinstance(message.string, (list, tuple)) else (message.string,)
            items.extend(zip(ids, strings[: len(ids)], strict=False))
    kept = []
    for pair in _pairs(items, source.key, source.key):
        if _MARKUP.search(pair.en + " " + pair.de) or not _same_placeholders(pair.en, pair.de):
            continue
        if not re.search(r"[^\W\d_]", pair.en) or max(len(pair.en.split()), len(pair.de.split())) > MAX_WORDS:
            continue
        kept.append(pair)
    return kept


# -- the corpus -----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Corpus:
    """The three splits (train in its shuffled order; dev and test grouped by family) and the sources' records."""

    train: list[Pair]
    dev: list[Pair]
    test: list[Pair]
    sources: dict


def all_pairs(seed: int = 0) -> list[Pair]:
    """Every pair of every source, exact duplicates removed (the first source that gives a pair keeps it)."""
    found = cldr_names() + cldr_patterns(seed)
    for source in SOURCES:
        if source.catalogues:
            found += catalogue_pairs(source)
    seen, unique = set(), []
    for pair in found:
        if (pair.en, pair.de) not in seen:
            seen.add((pair.en, pair.de))
            unique.append(pair)
    return unique


def split(pairs: Sequence[Pair], seed: int = 0) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """(train, dev, test): dev and test drawn per :data:`HELD_OUT` family from the pairs whose English side occurs
    once in ``pairs`` and which hold no character SGM would need escaped; everything else is train, shuffled."""
    translations = Counter(p.en for p in pairs)
    dev, test = [], []
    for family, (n_test, n_dev) in HELD_OUT.items():
        candidates = sorted(
            p for p in pairs if p.family == family and translations[p.en] == 1 and not re.search(r"[&<>]", p.en + p.de)
        )
        if len(candidates) < 2 * (n_test + n_dev):
            raise DataError(f"only {len(candidates)} held-out candidates for {family}, {n_test + n_dev} wanted")
        drawn = random.Random(f"translation.mini_corpus:{seed}:held-out:{family}").sample(candidates, n_test + n_dev)
        test += drawn[:n_test]
        dev += drawn[n_test:]
    held = {p.en for p in dev + test}
    train = sorted(p for p in pairs if p.en not in held)
    random.Random(f"translation.mini_corpus:{seed}:train-order").shuffle(train)
    return train, dev, test


def corpus(seed: int = 0) -> Corpus:
    """Read every source, check its licence, split, and count."""
    records = []
    for source in SOURCES:
        found = licences(source)
        bad = [lic for lic in found if lic not in ALLOWED_LICENCES]
        if bad:
            raise DataError(
                f"{source.distribution}: licence {', '.join(bad)} is not in the allow-list "
                f"({', '.join(sorted(ALLOWED_LICENCES))}); its text may not go into the corpus"
            )
        records.append((source, found))
    train, dev, test = split(all_pairs(seed), seed)
    splits = {"train": train, "dev": dev, "test": test}
    sources = {
        "seed": seed,
        "sources": [
            {
                "key": source.key,
                "package": source.distribution,
                "version": importlib.metadata.version(source.distribution),
                "licences": found,
                "data": data_version(source),
                "what": source.what,
                "pairs": {name: sum(p.source == source.key for p in rows) for name, rows in splits.items()},
            }
            for source, found in records
        ],
        "families": {
            family: {name: sum(p.family == family for p in rows) for name, rows in splits.items()}
            for family in sorted({p.family for rows in splits.values() for p in rows})
        },
        "pairs": {name: len(rows) for name, rows in splits.items()},
        "dev_set": "newstest2013",
        "test_set": "newstest2014",
    }
    return Corpus(train, dev, test, sources)


def sgm(pairs: Sequence[Pair], side: str) -> str:
    """WMT's SGM file of ``pairs``' English source (``side="src"``) or German reference (``"ref"``): one document
    per family, segments numbered from 1 in each, as in WMT's newstest files."""
    head = (
        '<srcset setid="newstest2014" srclang="any">'
        if side == "src"
        else '<refset setid="newstest2014" srclang="any" trglang="de">'
    )
    lines = [head]
    families = sorted({p.family for p in pairs}, key=[p.family for p in pairs].index)
    for family in families:
        lines += [f'<doc sysid="ref" docid="{family}" genre="cldr" origlang="en">', "<p>"]
        rows = [p for p in pairs if p.family == family]
        lines += [f'<seg id="{i}">{p.en if side == "src" else p.de}</seg>' for i, p in enumerate(rows, 1)]
        lines += ["</p>", "</doc>"]
    lines.append("</srcset>" if side == "src" else "</refset>")
    return "\n".join(lines) + "\n"


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    """One line each, UTF-8, each ended by a newline (so ``wc -l`` counts them)."""
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def build(out: Path, seed: int = 0) -> Path:
    """Write the corpus at ``out`` in the raw WMT layout (all of it or nothing); the same seed and the same
    installed packages give byte-identical files."""
    data = corpus(seed)
    with atomic_folder(out) as tmp:
        for rows, (en_file, de_file) in ((data.train, TRAIN), (data.dev, DEV), (data.test, TEST)):
            _write_lines(tmp / en_file, (p.en for p in rows))
            _write_lines(tmp / de_file, (p.de for p in rows))
        (tmp / TEST_SGM[0]).write_text(sgm(data.test, "src"), encoding="utf-8")
        (tmp / TEST_SGM[1]).write_text(sgm(data.test, "ref"), encoding="utf-8")
        (tmp / "sources.json").write_text(
            json.dumps(data.sources, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        Manifest.of_folder(tmp, FILES).dump(tmp / "manifest.json")
    return Path(out)


def ensure(out: str | Path = DEFAULT_OUT) -> Path:
    """The corpus at ``out``, built first if it is not there yet."""
    return ensure_built(out, build)


def describe(out: Path) -> str:
    """One line on what ``out`` holds, from its sources.json."""
    record = json.loads((Path(out) / "sources.json").read_text(encoding="utf-8"))
    counts = record["pairs"]
    names = ", ".join(f"{s['package']} {s['version']} ({'/'.join(s['licences'])})" for s in record["sources"])
    return (
        f"{out}: {counts['train']} train, {counts['dev']} dev (newstest2013) and {counts['test']} test "
        f"(newstest2014) English-German pairs from {names}"
    )


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """The flags of ``python -m translation.mini_corpus``."""
    from loadgen.cli import ArgumentParser

    parser = ArgumentParser(
        prog="python -m translation.mini_corpus",
        description=__doc__,
        add_help=add_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", default=str(DEFAULT_OUT), help=f"folder to create (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pattern values and the split (default: 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the corpus exists (default: False)")
    return parser


def main(args: argparse.Namespace) -> int:
    """Build the corpus (unless it is there) and print what it holds."""
    return build_command(
        "python -m translation.mini_corpus", args.output, args.force, lambda out: build(out, args.seed), describe
    )


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
