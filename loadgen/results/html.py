"""The results store as one self-contained HTML page: nothing is fetched when it opens (styles inline, charts as
inline SVG, latency histograms as embedded PNG), so it can be mailed or archived as it is.

Per benchmark: training runs (time to train, metrics, target reached) with each run's curve and the olympic scores
of ``--runs`` sets; inference runs per scenario and backend (QPS, latency percentiles, accuracy, validity) with
their latency histograms; Server QPS searches; and, for every run that repeats an earlier one (same benchmark,
kind, scenario, mode and backend), how its headline figure changed and between which revisions.
"""

from __future__ import annotations

import base64
import html
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadgen.results import headline

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.valid { color: #1b7f3b; } .invalid { color: #b00020; }
svg { background: #fafafa; border: 1px solid #ddd; }
img { max-width: 480px; border: 1px solid #ddd; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _number(value: Any, spec: str = ".4g") -> str:
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else _e(value)


def svg_lines(series: Mapping[str, Sequence[float]], xs: Sequence[float], title: str, width: int = 420,
              height: int = 220) -> str:
    """A small line chart as inline SVG: one polyline a series, axes labelled with their ranges."""
    points = [(x, y) for ys in series.values() for x, y in zip(xs, ys, strict=False)
              if isinstance(y, (int, float)) and math.isfinite(y)]
    if not points:
        return ""
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    pad = 30
    colours = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f"<title>{_e(title)}</title>"]
    for n, (name, ys) in enumerate(series.items()):
        coords = [(pad + (x - x0) / (x1 - x0) * (width - 2 * pad), height - pad - (y - y0) / (y1 - y0) *
                   (height - 2 * pad)) for x, y in zip(xs, ys, strict=False)
                  if isinstance(y, (int, float)) and math.isfinite(y)]
        if coords:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
            colour = colours[n % len(colours)]
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
            parts.append(f'<text x="{pad + 5}" y="{14 + 13 * n}" font-size="11" fill="{colour}">{_e(name)}</text>')
    parts.append(f'<text x="{pad}" y="{height - 8}" font-size="10">{x0:g}</text>')
    parts.append(f'<text x="{width - pad}" y="{height - 8}" font-size="10" text-anchor="end">{x1:g}</text>')
    parts.append(f'<text x="2" y="{height - pad}" font-size="10">{y0:.3g}</text>')
    parts.append(f'<text x="2" y="{pad}" font-size="10">{y1:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _embedded_png(path: str | None) -> str:
    if not path or not Path(path).is_file():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="latency histogram" src="data:image/png;base64,{data}">'


def _validity(value: Any) -> str:
    good = value in ("VALID", "reached")
    return f'<span class="{"valid" if good else "invalid"}">{_e(value or "-")}</span>'


def _training(rows: list[dict]) -> list[str]:
    out = ["<h3>Training</h3>", "<table><tr><th>run</th><th>when</th><th>config</th><th>seed</th>"
           "<th>time to train</th><th>metrics</th><th>target</th><th>revision</th></tr>"]
    for row in rows:
        f = row["figures"] or {}
        metrics = ", ".join(f"{k} {_number(v)}" for k, v in (f.get("metrics") or {}).items())
        targets = ", ".join(f"{k} {_number(v)}" for k, v in (f.get("targets") or {}).items())
        seconds = f.get("time_to_train_s")
        out.append(f"<tr><td>{row['id']}</td><td>{_e(row['created'])}</td><td>{_e(row['mode'])}</td>"
                   f"<td>{_e((row['settings'] or {}).get('seed'))}</td>"
                   f"<td>{_number(seconds, '.1f')} s</td><td>{metrics}</td><td>{_validity(row['validity'])} "
                   f"({targets})</td><td>{_e(row['git_revision'])}</td></tr>")
    out.append("</table>")
    for row in rows:
        history = (row["figures"] or {}).get("history") or {}
        xs = history.get("epoch") or []
        series = {k: v for k, v in history.items() if k != "epoch"}
        chart = svg_lines(series, xs, f"run {row['id']}: training curve")
        if chart:
            out.append(f"<figure>{chart}<figcaption>run {row['id']}: per evaluation, over epochs</figcaption>"
                       "</figure>")
    return out


def _olympic(rows: list[dict]) -> list[str]:
    out = ["<h3>Olympic scores</h3>", "<table><tr><th>run</th><th>when</th><th>config</th><th>score</th>"
           "<th>runs (s)</th><th>how</th></tr>"]
    for row in rows:
        f = row["figures"] or {}
        times = ", ".join("-" if r.get("seconds") is None else f"{r['seconds']:.1f}" + ("" if r.get("converged")
                                                                                         else " (not converged)")
                          for r in f.get("runs") or [])
        score = f.get("score_s")
        out.append(f"<tr><td>{row['id']}</td><td>{_e(row['created'])}</td><td>{_e(row['mode'])}</td>"
                   f"<td>{'none' if score is None else f'{score:.1f} s'}</td><td>{times}</td>"
                   f"<td>{_e(f.get('how'))}</td></tr>")
    return out + ["</table>"]


def _inference(rows: list[dict]) -> list[str]:
    out = ["<h3>Inference</h3>", "<table><tr><th>run</th><th>when</th><th>scenario</th><th>mode</th><th>backend</th>"
           "<th>validity</th><th>samples/s</th><th>p50</th><th>p90</th><th>p99</th><th>accuracy</th></tr>"]
    for row in rows:
        f = row["figures"] or {}
        tiles = f.get("tiles_s") or {}
        ms = {p: ("" if tiles.get(p) is None else f"{1e3 * tiles[p]:.3f} ms") for p in ("50.0", "90.0", "99.0")}
        accuracy = ", ".join(f"{m['name']}={m['text']}" for m in f.get("metrics") or [])
        status = row["validity"] if row["status"] == "ok" else f"failed: {(f.get('error') or '')[:60]}"
        out.append(f"<tr><td>{row['id']}</td><td>{_e(row['created'])}</td><td>{_e(row['scenario'])}</td>"
                   f"<td>{_e(row['mode'])}</td><td>{_e(row['backend'])}</td><td>{_validity(status)}</td>"
                   f"<td>{_number(f.get('qps'), '.2f')}</td><td>{ms['50.0']}</td><td>{ms['90.0']}</td>"
                   f"<td>{ms['99.0']}</td><td>{_e(accuracy)}</td></tr>")
    out.append("</table>")
    for row in rows:
        image = _embedded_png((row["paths"] or {}).get("latency_histogram"))
        if image:
            out.append(f"<figure>{image}<figcaption>run {row['id']}: {_e(row['scenario'])} {_e(row['mode'])}, "
                       "latency histogram from LoadGen's trace</figcaption></figure>")
    return out


def _searches(rows: list[dict]) -> list[str]:
    out = ["<h3>Server QPS searches</h3>"]
    for row in rows:
        f = row["figures"] or {}
        server = f.get("server_qps")
        out.append(f"<p>run {row['id']} ({_e(row['backend'])}): Server {_number(server, '.1f')} QPS confirmed, "
                   f"Offline {_number(f.get('offline_qps'), '.1f')} samples/s, Server/Offline "
                   f"{_number(f.get('server_over_offline'), '.3f')}</p>")
        out.append("<table><tr><th>phase</th><th>target QPS</th><th>achieved</th><th>latency at the bound's "
                   "percentile</th><th>verdict</th></tr>")
        for step in f.get("steps") or []:
            latency = step.get("percentile_latency_s")
            verdict = "VALID" if step.get("valid") else ("within the bound" if step.get("within_bound")
                                                           else "INVALID")
            out.append(f"<tr><td>{_e(step.get('phase'))}</td><td>{_number(step.get('target_qps'), '.1f')}</td>"
                       f"<td>{_number(step.get('qps'), '.1f')}</td><td>"
                       f"{'' if latency is None else f'{1e3 * latency:.2f} ms'}</td><td>{_e(verdict)}</td></tr>")
        out.append("</table>")
    return out


def _changes(rows: list[dict]) -> list[str]:
    """Each run against the previous run of the same kind, benchmark, scenario, mode and backend."""
    out, previous = [], {}
    for row in rows:
        key = (row["kind"], row["benchmark"], row["scenario"], row["mode"], row["backend"])
        if key in previous:
            before = previous[key]
            out.append(f"<tr><td>{row['id']} after {before['id']}</td><td>{_e(' '.join(str(k) for k in key if k))}"
                       f"</td><td>{_e(headline(before))}</td><td>{_e(headline(row))}</td><td>{_change(before, row)}"
                       f"</td><td>{_e(before['git_revision'])} &rarr; {_e(row['git_revision'])}</td></tr>")
        previous[key] = row
    if not out:
        return []
    return ["<h2>Changes between runs</h2>", "<table><tr><th>runs</th><th>what</th><th>before</th><th>after</th>"
            "<th>ratio</th><th>revisions</th></tr>", *out, "</table>"]


def _change(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    key = "time_to_train_s" if after["kind"] == "training" else "qps"
    x, y = (before["figures"] or {}).get(key), (after["figures"] or {}).get(key)
    if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x:
        return f"{key} &times;{y / x:.3f}"
    return ""


def page(rows: list[dict], title: str = "MLPerf suite results") -> str:
    """The whole HTML document for ``rows`` (records of :func:`loadgen.results.rows`)."""
    by_benchmark: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_benchmark[row["benchmark"] or "(unnamed)"][row["kind"]].append(row)
    body = [f"<h1>{_e(title)}</h1>", f"<p>{len(rows)} runs in the store.</p>"]
    for benchmark in sorted(by_benchmark):
        kinds = by_benchmark[benchmark]
        body.append(f"<h2>{_e(benchmark)}</h2>")
        if kinds.get("training"):
            body += _training(kinds["training"])
        if kinds.get("olympic"):
            body += _olympic(kinds["olympic"])
        if kinds.get("inference"):
            body += _inference(kinds["inference"])
        if kinds.get("qps-search"):
            body += _searches(kinds["qps-search"])
    body += _changes(rows)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n" + "\n".join(body)
            + "\n</body>\n</html>\n")
