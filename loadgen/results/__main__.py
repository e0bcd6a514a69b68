"""``python -m loadgen.results``: the results store's runs.

    python -m loadgen.results list [--kind training|inference] [--benchmark NAME] [--last N]
    python -m loadgen.results show ID
    python -m loadgen.results compare ID ID       figures side by side, and what differs in settings and environment
    python -m loadgen.results export [--format json|csv] [--output FILE]
    python -m loadgen.results report [--output report.html]   one self-contained HTML page of every run
    python -m loadgen.results reproduce ID [--anyway]   the run's command again, if the environment matches
    python -m loadgen.results cache show                what build/ and results/ hold, with sizes
    python -m loadgen.results cache clean [--datasets] [--caches] [--models] [--results] [--path P] [--dry-run]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from loadgen import results
from loadgen.cli import ArgumentParser, die, positive

PROG = "python -m loadgen.results"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__, add_help=add_help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=None,
                        help=f"the store (default: ${results.ENV}, else {results.DEFAULT})")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    listing = sub.add_parser("list", help="one line a run (default: every run)")
    listing.add_argument("--kind", choices=list(results.KINDS), default=None, help="only these (default: both)")
    listing.add_argument("--benchmark", default=None, help="only this benchmark or model (default: all)")
    listing.add_argument("--last", type=positive(int), default=None, help="the newest N (default: all)")
    show = sub.add_parser("show", help="one run's whole record (default: required ID)")
    show.add_argument("id", type=positive(int), help="the run's id, as list prints it (default: required)")
    compare = sub.add_parser("compare", help="two runs side by side (default: required IDs)")
    compare.add_argument("ids", type=positive(int), nargs=2, help="two runs' ids (default: required)")
    export = sub.add_parser("export", help="every run, as JSON or CSV (default: JSON on stdout)")
    export.add_argument("--format", choices=["json", "csv"], default="json", help="(default: json)")
    export.add_argument("--output", default=None, help="file to write (default: stdout)")
    report = sub.add_parser("report", help="one self-contained HTML page (default: report.html)")
    report.add_argument("--output", default="report.html", help="the page (default: report.html)")
    again = sub.add_parser("reproduce", help="run a stored run's command again and compare (default: required ID)")
    again.add_argument("id", type=positive(int), help="the run's id (default: required)")
    again.add_argument("--anyway", action="store_true",
                       help="run it even where the packages or the git revision differ (default: False)")
    cache = sub.add_parser("cache", help="what the suite stores (default: required show or clean)")
    cache.add_argument("--root", default=".", help="the folder holding build/ and results/ (default: .)")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True, parser_class=ArgumentParser)
    cache_sub.add_parser("show", help="every item, its size and benchmark (default: all)")
    clean = cache_sub.add_parser("clean", help="remove items by kind or path (default: nothing unless told)")
    from loadgen.results.cache import CATEGORIES

    for category in CATEGORIES:
        clean.add_argument(f"--{category}", action="store_true", help=f"remove the {category} (default: False)")
    clean.add_argument("--path", action="append", default=None,
                       help="remove this item; only inside build/ or results/, never a link (default: None)")
    clean.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing (default: False)")
    return parser


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> dict[str, Any]:
    """Nested dicts as ``a.b.c`` keys, lists of numbers kept as they are (a training curve)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = value
    return out


def compare_lines(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Each figure of two runs with their ratio, then the settings and environment entries that differ."""
    lines = [f"run {a['id']} ({a['kind']} {a['benchmark']} {a['scenario'] or ''} {a['mode'] or ''}) against run "
             f"{b['id']} ({b['kind']} {b['benchmark']} {b['scenario'] or ''} {b['mode'] or ''})".replace("  ", " ")]
    fa, fb = _flat("", a["figures"] or {}, {}), _flat("", b["figures"] or {}, {})
    for key in sorted(set(fa) | set(fb)):
        x, y = fa.get(key), fb.get(key)
        if isinstance(x, list) or isinstance(y, list):
            continue
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
            ratio = f"  ({y / x:.3f}x)" if x else ""
            lines.append(f"  {key}: {x:g} -> {y:g}{ratio}")
        elif x != y:
            lines.append(f"  {key}: {x} -> {y}")
    for column in ("validity", "git_revision", "command"):
        if a[column] != b[column]:
            lines.append(f"  {column}: {a[column]} -> {b[column]}")
    for column in ("settings", "environment"):
        sa, sb = _flat("", a[column] or {}, {}), _flat("", b[column] or {}, {})
        for key in sorted(set(sa) | set(sb)):
            if sa.get(key) != sb.get(key):
                lines.append(f"  {column}.{key}: {sa.get(key)} -> {sb.get(key)}")
    return lines


def environment_differences(stored: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """Package versions and git revision that differ between a stored run's environment and this one."""
    lines = []
    before, after = stored.get("packages") or {}, now.get("packages") or {}
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            lines.append(f"{name} {before.get(name, 'absent')} (stored) != {after.get(name, 'absent')} (now)")
    if stored.get("git_revision") != now.get("git_revision"):
        lines.append(f"git revision {stored.get('git_revision')} (stored) != {now.get('git_revision')} (now)")
    return lines


def reproduce_command(command: list[str]) -> list[str]:
    """The stored argv as a command to run now: a module's file (how ``python -m pkg.mod`` records itself) is run
    as ``python -m pkg.mod`` again, from the checkout this package is in."""
    from pathlib import Path

    if not command:
        raise ValueError("the run recorded no command")
    head, rest = Path(command[0]), list(command[1:])
    repo = Path(__file__).resolve().parents[2]
    if head.suffix == ".py" and head.is_absolute() and head.is_relative_to(repo):
        parts = list(head.relative_to(repo).with_suffix("").parts)
        if parts[-1] == "__main__":
            parts = parts[:-1]
        return [sys.executable, "-m", ".".join(parts), *rest]
    return [sys.executable, str(head), *rest]


def reproduce(args: argparse.Namespace) -> int:
    import subprocess

    from loadgen.environment import environment

    found = results.rows(args.db, ids=[args.id])
    if not found:
        die(PROG, f"no run with id {args.id} in {args.db or results.path()}")
    old = found[0]
    if old["kind"] not in ("training", "inference"):
        die(PROG, f"run {args.id} is a {old['kind']} record; reproduce a training or inference run")
    differences = environment_differences(old["environment"] or {}, environment())
    for line in differences:
        print(f"  differs: {line}")
    if differences and not args.anyway:
        print(f"{PROG}: error: the environment differs from run {args.id}'s ({len(differences)} above); "
              "--anyway runs it all the same", file=sys.stderr)
        return 1
    try:
        command = reproduce_command(old["command"] or [])
    except ValueError as exc:
        die(PROG, f"run {args.id}: {exc}", 1)
    print("running:", " ".join(command), flush=True)
    newest = max((row["id"] for row in results.rows(args.db)), default=0)
    env = dict(os.environ)
    if args.db:
        env[results.ENV] = str(args.db)
    status = subprocess.call(command, cwd=(old["environment"] or {}).get("cwd") or None, env=env)
    again = [row for row in results.rows(args.db) if row["id"] > newest and row["kind"] == old["kind"]
             and (row["benchmark"], row["scenario"], row["mode"]) == (old["benchmark"], old["scenario"], old["mode"])]
    if not again:
        print(f"{PROG}: error: the command exited {status} and added no comparable run to the store", file=sys.stderr)
        return status or 1
    print("\n".join(compare_lines(old, again[-1])))
    return status


def cache(args: argparse.Namespace) -> int:
    from pathlib import Path

    from loadgen.results import cache as store

    found = store.entries(args.root)
    if args.cache_command == "show":
        for entry in found:
            print(f"{store.human(entry.size):>10}  {entry.category:<8}  {entry.owner:<22}  {entry.path}")
        print(f"{store.human(sum(e.size for e in found)):>10}  in all ({len(found)} items under "
              f"{Path(args.root) / 'build'} and {Path(args.root) / 'results'})")
        return 0
    chosen = [e.path for e in found if getattr(args, e.category)] + [Path(p) for p in args.path or []]
    if not chosen:
        die(PROG, "cache clean: say what to remove: --datasets, --caches, --models, --results or --path")
    try:
        removed = store.remove(chosen, args.root, dry_run=args.dry_run)
    except store.UnsafePath as exc:
        die(PROG, f"cache clean: {exc}; nothing was removed")
    verb = "would remove" if args.dry_run else "removed"
    for path, size in removed:
        print(f"{verb} {path} ({store.human(size)})")
    print(f"{verb} {store.human(sum(size for _, size in removed))} in {len(removed)} items")
    return 0


def main(args: argparse.Namespace) -> int:
    import sqlite3

    if args.command == "cache":
        return cache(args)
    try:
        if args.command == "reproduce":
            return reproduce(args)
        if args.command == "report":
            from loadgen.data import write_atomic
            from loadgen.results.html import page

            found = results.rows(args.db)
            write_atomic(args.output, page(found))
            print(f"{len(found)} runs in {args.output}")
            return 0
        if args.command == "list":
            found = results.rows(args.db, kind=args.kind, benchmark=args.benchmark)
            for row in found[-args.last:] if args.last else found:
                what = " ".join(str(v) for v in (row["benchmark"], row["scenario"], row["mode"], row["backend"]) if v)
                print(f"{row['id']:>5}  {row['created']}  {row['kind']:<9}  {what:<40}  {row['validity'] or '-':<11}"
                      f"  {results.headline(row)}")
            return 0
        if args.command in ("show", "compare"):
            wanted = [args.id] if args.command == "show" else list(args.ids)
            found = {row["id"]: row for row in results.rows(args.db, ids=wanted)}
            missing = [str(i) for i in wanted if i not in found]
            if missing:
                die(PROG, f"no run with id {', '.join(missing)} in {args.db or results.path()}")
            if args.command == "show":
                print(json.dumps(found[args.id], indent=2, default=str))
            else:
                print("\n".join(compare_lines(found[wanted[0]], found[wanted[1]])))
            return 0
        found = results.rows(args.db)
        if args.format == "json":
            text = json.dumps(found, indent=2, default=str) + "\n"
        else:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(results.COLUMNS)
            for row in found:
                writer.writerow([json.dumps(row[c], default=str) if isinstance(row[c], (dict, list)) else row[c]
                                 for c in results.COLUMNS])
            text = buffer.getvalue()
        if args.output:
            from loadgen.data import write_atomic

            write_atomic(args.output, text)
        else:
            sys.stdout.write(text)
        return 0
    except sqlite3.Error as exc:
        die(PROG, f"{args.db or results.path()}: {exc}", 1)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
