"""The files of `python main.py eval --out DIR`: eval.json, eval.csv and report.html.

The numbers come from `core.evaluation`; this module only writes them down. Each file is
written to a temp file beside it and renamed into place, so a reader (or a second run)
sees the old report or the new one, never half of one.

`report.html` is one self-contained page: inline CSS, an inline SVG chart, no script,
nothing loaded from elsewhere (its Content-Security-Policy forbids it too), so it can be
mailed or attached to a ticket as it is. Every text that comes from a conversation, the
model or the judge is HTML-escaped: customer text never becomes markup.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from ..core.evaluation import Bucket, PairResult, Summary
from .files import write_text_atomically

TITLE = "intercom-responder: answer quality before going live"
CSV_FIELDS = (
    "index",
    "conversation_id",
    "question",
    "expected",
    "draft",
    "confidence",
    "action",
    "rule",
    "agreement",
    "similarity",
    "error",
)
ACTION_LABELS = {"reply": "sent alone", "review": "review", "handoff": "handed off"}

# the chart's drawing area inside its viewBox
_CHART_W, _CHART_H = 720, 390
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 18, 18, 50
_PLOT_W = _CHART_W - _LEFT - _RIGHT
_PLOT_H = _CHART_H - _TOP - _BOTTOM


# --------------------------------------------------------------------------- files


def write_report(
    out_dir: Path,
    summary: Summary,
    calibration: Sequence[Bucket],
    results: Sequence[PairResult],
    worst: Sequence[PairResult],
) -> list[Path]:
    """Write eval.json, eval.csv and report.html into `out_dir` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "summary": summary.to_json(),
        "calibration": [bucket_json(bucket) for bucket in calibration],
        "pairs": [result.to_json() for result in results],
    }
    written = [
        (out_dir / "eval.json", json.dumps(document, indent=2, ensure_ascii=False) + "\n"),
        (out_dir / "eval.csv", render_csv(results)),
        (out_dir / "report.html", render_html(summary, calibration, results, worst)),
    ]
    for path, text in written:
        write_text_atomically(path, text)
    return [path for path, _ in written]


def bucket_json(bucket: Bucket) -> dict[str, Any]:
    return {
        "low": bucket.low,
        "high": bucket.high,
        "count": bucket.count,
        "mean_agreement": bucket.mean_agreement,
    }


def render_csv(results: Sequence[PairResult]) -> str:
    """One row per pair; texts with newlines or commas are quoted by the csv module."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_FIELDS)
    for result in results:
        writer.writerow("" if value is None else value for value in _csv_row(result))
    return buffer.getvalue()


def _csv_row(result: PairResult) -> tuple[object, ...]:
    return (
        result.index,
        result.conversation_id,
        result.question,
        result.expected,
        result.draft,
        result.confidence,
        result.action,
        result.rule,
        result.agreement,
        result.similarity,
        result.error,
    )


# --------------------------------------------------------------------------- the page


def render_html(
    summary: Summary,
    calibration: Sequence[Bucket],
    results: Sequence[PairResult],
    worst: Sequence[PairResult],
) -> str:
    """The report as one self-contained HTML page."""
    judged = sum(1 for result in results if result.judged)
    parts = [
        _HEAD.format(title=_e(TITLE), style=_STYLE),
        "<main>",
        '<header class="top">',
        f"<h1>{_e(TITLE)}</h1>",
        f'<p class="lede">{summary.pairs} past customer questions were drafted as the daemon '
        "would answer them, and a judge rated each draft against the answer the teammate "
        "really gave: agreement 1.00 is the same answer, 0.00 a different or wrong one.</p>",
        "</header>",
        _figures(summary),
        '<section class="panel calibration">',
        '<div class="chart-box">',
        "<h2>Does confidence predict quality?</h2>",
        f'<p class="note">One dot per judged pair ({judged}), coloured by what the daemon '
        "would do with it; the bars are the mean agreement of each confidence band. Only "
        "the confidence rules move with the threshold: a hand-off stays one at any.</p>",
        _chart(summary, calibration, results),
        "</div>",
        _side(summary, calibration),
        "</section>",
        _worst_table(summary, worst),
        _pairs_table(results),
        '<footer class="note">eval.json and eval.csv beside this page hold the same '
        "figures for other tools.</footer>",
        "</main>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def _figures(summary: Summary) -> str:
    threshold, target = _num(summary.threshold), _num(summary.target)
    done = summary.pairs - summary.failed
    if summary.lowest_threshold is None:
        lowest, lowest_note = "none", "no threshold gets there"
    else:
        at_lowest = summary.sent_at_lowest or 0
        lowest = _num(summary.lowest_threshold)
        lowest_note = (
            f"{_count(at_lowest, 'answer')} ({_pct(at_lowest / done if done else None)}) "
            "would then be sent alone"
        )
    agreement = summary.mean_agreement_sent
    grade = "" if agreement is None else "good" if agreement >= summary.target else "poor"
    cards = [
        ("pairs", "Pairs", str(summary.pairs), f"{summary.failed} failed", ""),
        (
            "sent",
            f"Sent alone at {threshold}",
            _pct(summary.sent_share),
            _count(summary.sent, "answer"),
            "",
        ),
        ("reviewed", "Reviewed first", _pct(summary.reviewed_share), _count(summary.reviewed), ""),
        (
            "handed-off",
            "Handed off",
            _pct(summary.handed_off_share),
            _count(summary.handed_off),
            "",
        ),
        (
            "agreement",
            "Mean agreement, sent alone",
            _num(agreement),
            f"target {target} · text similarity {_num(summary.mean_similarity_sent)}",
            grade,
        ),
        ("lowest", f"Lowest threshold reaching {target}", lowest, lowest_note, ""),
    ]
    items = "".join(
        f'<div class="figure" data-test="figure-{name}"><div class="label">{_e(label)}</div>'
        f'<div class="value {grade}">{_e(value)}</div><div class="sub">{_e(sub)}</div></div>'
        for name, label, value, sub, grade in cards
    )
    return f'<section class="figures" data-test="summary">{items}</section>'


def _side(summary: Summary, calibration: Sequence[Bucket]) -> str:
    done = summary.pairs - summary.failed
    rules = sorted(summary.by_rule.items(), key=lambda item: (-item[1], item[0]))
    rule_rows = "".join(
        f"<tr><td><code>{_e(rule)}</code></td><td class=num>{count}</td>"
        f"<td class=num>{_pct(count / done if done else None)}</td></tr>"
        for rule, count in rules
    )
    band_rows = "".join(
        f"<tr><td>{_num(bucket.low)}–{_num(bucket.high)}</td><td class=num>{bucket.count}</td>"
        f"<td class=num>{_num(bucket.mean_agreement)}</td></tr>"
        for bucket in calibration
    )
    legend = "".join(
        f'<li><span class="swatch {action}"></span>{_e(label)}</li>'
        for action, label in ACTION_LABELS.items()
    )
    return (
        '<aside class="side">'
        f'<ul class="legend">{legend}<li><span class="swatch bar"></span>band mean</li></ul>'
        "<h3>Not sent alone, by rule</h3>"
        '<table class="small" data-test="by-rule"><tbody>'
        f"{rule_rows or '<tr><td>none</td></tr>'}</tbody></table>"
        "<h3>By confidence band</h3>"
        '<table class="small" data-test="bands"><thead><tr><th>confidence</th>'
        "<th class=num>pairs</th><th class=num>agreement</th></tr></thead>"
        f"<tbody>{band_rows}</tbody></table>"
        "</aside>"
    )


def _chart(summary: Summary, calibration: Sequence[Bucket], results: Sequence[PairResult]) -> str:
    out = [
        f'<svg class="chart" data-test="chart" viewBox="0 0 {_CHART_W} {_CHART_H}" '
        'role="img" aria-label="confidence against agreement, one dot per pair">'
    ]
    out.append(f'<rect class="plot" x="{_LEFT}" y="{_TOP}" width="{_PLOT_W}" height="{_PLOT_H}"/>')
    for step in range(6):  # the grid and the tick labels, every 0.2
        value = step / 5
        x, y = _x(value), _y(value)
        out.append(f'<line class="grid" x1="{x}" y1="{_TOP}" x2="{x}" y2="{_TOP + _PLOT_H}"/>')
        out.append(f'<line class="grid" x1="{_LEFT}" y1="{y}" x2="{_LEFT + _PLOT_W}" y2="{y}"/>')
        out.append(
            f'<text class="tick" x="{x}" y="{_TOP + _PLOT_H + 16}" '
            f'text-anchor="middle">{value:.1f}</text>'
        )
        out.append(
            f'<text class="tick" x="{_LEFT - 8}" y="{y + 4}" text-anchor="end">{value:.1f}</text>'
        )
    out.append(
        f'<text class="axis" x="{_LEFT + _PLOT_W / 2}" y="{_CHART_H - 8}" '
        'text-anchor="middle">confidence of the draft</text>'
    )
    out.append(
        f'<text class="axis" transform="translate(14 {_TOP + _PLOT_H / 2}) rotate(-90)" '
        'text-anchor="middle">agreement with the teammate\'s answer</text>'
    )
    for bucket in calibration:  # the band means, behind the dots
        if not bucket.count or bucket.mean_agreement is None:
            continue
        x0, x1 = _x(bucket.low), _x(bucket.high)
        top = _y(bucket.mean_agreement)
        width = max(x1 - x0 - 2, 1.0)
        out.append(
            f'<rect class="band" data-test="band" x="{x0 + 1:.1f}" y="{top:.1f}" '
            f'width="{width:.1f}" height="{_TOP + _PLOT_H - top:.1f}">'
            f"<title>confidence {_num(bucket.low)}–{_num(bucket.high)}: {bucket.count} "
            f"pairs, mean agreement {_num(bucket.mean_agreement)}</title></rect>"
        )
        out.append(
            f'<line class="band-mean" x1="{x0 + 1:.1f}" y1="{top:.1f}" '
            f'x2="{x0 + 1 + width:.1f}" y2="{top:.1f}"/>'
        )
    y_target = _y(summary.target)
    out.append(
        f'<line class="target" data-test="target-line" x1="{_LEFT}" y1="{y_target:.1f}" '
        f'x2="{_LEFT + _PLOT_W}" y2="{y_target:.1f}"/>'
    )
    out.append(
        f'<text class="target-label" x="{_LEFT + 6}" y="{y_target - 6:.1f}">'
        f"target {_num(summary.target)}</text>"
    )
    for result in results:  # one dot per judged pair
        if not result.judged or result.agreement is None:
            continue
        label = (
            f"#{result.index} · confidence {_num(result.confidence)} · agreement "
            f"{_num(result.agreement)} · {ACTION_LABELS.get(result.action, result.action)}\n"
            f"{_short(result.question, 160)}"
        )
        out.append(
            f'<a href="#pair-{_e(str(result.index))}"><circle class="dot {_e(result.action)}" '
            f'cx="{_x(result.confidence):.1f}" cy="{_y(result.agreement):.1f}" r="4.5">'
            f"<title>{_e(label)}</title></circle></a>"
        )
    x_threshold = _x(summary.threshold)
    anchor, shift = ("end", -6) if summary.threshold > 0.5 else ("start", 6)
    out.append(
        f'<line class="threshold" data-test="threshold-line" x1="{x_threshold:.1f}" '
        f'y1="{_TOP}" x2="{x_threshold:.1f}" y2="{_TOP + _PLOT_H}"/>'
    )
    out.append(
        f'<text class="threshold-label" data-test="threshold-label" '
        f'x="{x_threshold + shift:.1f}" y="{_TOP + 14}" text-anchor="{anchor}">'
        f"CONFIDENCE_THRESHOLD {_num(summary.threshold)}</text>"
    )
    out.append("</svg>")
    return "".join(out)


def _worst_table(summary: Summary, worst: Sequence[PairResult]) -> str:
    head = (
        '<section class="panel"><h2>The worst answers that would be sent alone</h2>'
        f'<p class="note">Judged answers the daemon would send at {_num(summary.threshold)} '
        "without anyone looking, lowest agreement first: the ones to read before going "
        "live.</p>"
    )
    if not worst:
        return head + '<p data-test="worst-empty">No answer would be sent alone.</p></section>'
    rows = "".join(
        f'<tr><td class="num"><a href="#pair-{_e(str(r.index))}">{_e(str(r.index))}</a></td>'
        f"<td>{_text(r.question)}</td><td>{_text(r.draft)}</td><td>{_text(r.expected)}</td>"
        f'<td class="num">{_agreement(r.agreement)}'
        f'<div class="why">{_text(r.judge_reason)}</div></td></tr>'
        for r in worst
    )
    return (
        head + '<table class="pairs" data-test="worst"><colgroup><col class="c-index">'
        '<col class="c-text"><col class="c-text"><col class="c-text"><col class="c-judge">'
        "</colgroup><thead><tr><th>#</th><th>Question</th><th>Draft (would be sent)</th>"
        "<th>Teammate's answer</th><th>Agreement</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _pairs_table(results: Sequence[PairResult]) -> str:
    rows = "".join(_pair_row(result) for result in results)
    return (
        '<section class="panel"><h2>All pairs</h2>'
        '<table class="pairs" data-test="pairs"><colgroup><col class="c-index">'
        '<col class="c-text"><col class="c-text"><col class="c-text"><col class="c-num">'
        '<col class="c-decision"><col class="c-num"><col class="c-num"><col class="c-judge">'
        "</colgroup><thead><tr><th>#</th><th>Question</th><th>Draft</th>"
        "<th>Teammate's answer</th><th>Confi&shy;dence</th><th>Decision</th>"
        "<th>Agree&shy;ment</th><th>Simi&shy;larity</th><th>Judge</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _pair_row(r: PairResult) -> str:
    meta = [f"conversation {r.conversation_id}" if r.conversation_id else ""]
    if r.asked_at is not None:
        meta.append(datetime.fromtimestamp(r.asked_at, tz=UTC).strftime("%Y-%m-%d"))
    meta_html = "".join(f'<div class="meta">{_e(m)}</div>' for m in meta if m)
    judge = f'<span class="error">{_text(r.error)}</span>' if r.error else _text(r.judge_reason)
    return (
        f'<tr id="pair-{_e(str(r.index))}" class="{_e(r.action)}">'
        f'<td class="num">{_e(str(r.index))}</td>'
        f"<td>{_text(r.question)}{meta_html}</td><td>{_text(r.draft)}</td>"
        f"<td>{_text(r.expected)}</td>"
        f'<td class="num">{_num(r.confidence)}</td>'
        f'<td><span class="badge {_e(r.action)}">{_e(ACTION_LABELS.get(r.action, r.action))}'
        f'</span><div class="meta"><code>{_e(r.rule)}</code></div>'
        f"{'' if r.confidence_decides else _reason(r.reason)}</td>"
        f'<td class="num">{_agreement(r.agreement)}</td>'
        f'<td class="num">{_num(r.similarity)}</td><td class="why">{judge}</td></tr>'
    )


# --------------------------------------------------------------------------- formatting


def _e(text: str | None) -> str:
    return escape(text or "", quote=True)


def _text(text: str | None) -> str:
    """A text from a conversation, the model or the judge: escaped, line breaks kept."""
    return f'<div class="text">{_e(text)}</div>' if text else '<span class="none">–</span>'


def _reason(text: str) -> str:
    """Why the daemon decided so; the confidence rules need none (the numbers say it)."""
    return f'<div class="why">{_e(text)}</div>' if text else ""


def _short(text: str | None, limit: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f} %"


def _count(count: int, noun: str = "pair") -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _agreement(value: float | None) -> str:
    if value is None:
        return '<span class="none">–</span>'
    grade = "good" if value >= 0.75 else "fair" if value >= 0.5 else "poor"
    return f'<span class="agreement {grade}">{value:.2f}</span>'


def _x(confidence: float) -> float:
    return _LEFT + _clamp(confidence) * _PLOT_W


def _y(agreement: float) -> float:
    return _TOP + (1 - _clamp(agreement)) * _PLOT_H


def _clamp(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; \
style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>{style}</style>
</head>
<body>"""

_STYLE = """
  :root {
    --bg: #f5f6f8; --panel: #fff; --border: #e2e5ea; --text: #1d2330; --muted: #646d7c;
    --sent: #1f5fd1; --review: #c98a12; --handoff: #8a93a3; --threshold: #b42318;
    --good: #0b6b3a; --fair: #9a5b06; --poor: #b42318; --band: #dfe7f6;
    --font: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial,
      "Noto Sans", "Liberation Sans", sans-serif;
    --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 var(--font); }
  main { max-width: 1240px; margin: 0 auto; padding: 20px 20px 40px; }
  h1 { margin: 0 0 4px; font-size: 21px; font-weight: 650; letter-spacing: -0.01em; }
  h2 { margin: 0 0 4px; font-size: 16px; font-weight: 650; }
  h3 { margin: 16px 0 6px; font-size: 13px; font-weight: 650; color: var(--muted);
       text-transform: uppercase; letter-spacing: 0.04em; }
  code { font: 12px var(--mono); }
  a { color: inherit; }
  .lede { margin: 0 0 16px; color: var(--muted); max-width: 900px; }
  .note { margin: 0 0 10px; color: var(--muted); font-size: 13px; }
  footer.note { margin-top: 16px; }
  .panel { background: var(--panel); border: 1px solid var(--border); border-radius: 10px;
           padding: 16px 18px; margin-bottom: 16px; }
  .figures { display: grid; grid-template-columns: repeat(6, 1fr); gap: 10px;
             margin-bottom: 16px; }
  .figure { background: var(--panel); border: 1px solid var(--border); border-radius: 10px;
            padding: 10px 14px; }
  .figure .label { color: var(--muted); font-size: 12px; }
  .figure .value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
  .figure .sub { color: var(--muted); font-size: 12px; }
  [data-test="figure-sent"] .value { color: var(--sent); }
  .figure .value.good { color: var(--good); }
  .figure .value.poor { color: var(--poor); }
  .calibration { display: grid; grid-template-columns: minmax(0, 1fr) 280px; gap: 24px; }
  .chart { display: block; width: 100%; height: auto; max-height: 460px; }
  .chart .plot { fill: #fbfcfd; stroke: var(--border); }
  .chart .grid { stroke: #edf0f3; }
  .chart .tick { fill: var(--muted); font-size: 11px; }
  .chart .axis { fill: var(--text); font-size: 12px; }
  .chart .band { fill: var(--band); }
  .chart .band-mean { stroke: #7d97c9; stroke-width: 2; }
  .chart .target { stroke: var(--good); stroke-width: 1.5; stroke-dasharray: 6 4; }
  .chart .target-label { fill: var(--good); font-size: 12px; font-weight: 600;
                         paint-order: stroke; stroke: #fff; stroke-width: 3px; }
  .chart .threshold { stroke: var(--threshold); stroke-width: 1.5; }
  .chart .threshold-label { fill: var(--threshold); font-size: 12px; font-weight: 600;
                            paint-order: stroke; stroke: #fff; stroke-width: 3px; }
  .chart .dot { stroke: #fff; stroke-width: 1; fill-opacity: 0.85; }
  .chart .dot.reply { fill: var(--sent); }
  .chart .dot.review { fill: var(--review); }
  .chart .dot.handoff { fill: var(--handoff); }
  .chart a:hover .dot { stroke: var(--text); stroke-width: 2; }
  .legend { list-style: none; margin: 34px 0 0; padding: 0; display: grid; gap: 4px;
            font-size: 13px; }
  .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
            margin-right: 8px; vertical-align: -1px; }
  .swatch.reply { background: var(--sent); }
  .swatch.review { background: var(--review); }
  .swatch.handoff { background: var(--handoff); }
  .swatch.bar { background: var(--band); border-top: 2px solid #7d97c9; border-radius: 0; }
  table { border-collapse: collapse; width: 100%; }
  th { text-align: left; font-size: 12px; font-weight: 600; color: var(--muted);
       border-bottom: 1px solid var(--border); padding: 6px 8px; }
  td { padding: 7px 8px; border-bottom: 1px solid var(--border); vertical-align: top; }
  table.small td, table.small th { padding: 3px 6px; font-size: 13px; }
  .num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  th.num { text-align: right; }
  .pairs { table-layout: fixed; font-size: 13px; }
  .pairs .c-index { width: 44px; }
  .pairs .c-num { width: 62px; }
  .pairs .c-decision { width: 150px; }
  .pairs .c-judge { width: 190px; }
  .pairs tbody tr:hover { background: #fafbfc; }
  .pairs tr:target { background: #fff7e8; }
  .text { white-space: pre-wrap; overflow-wrap: anywhere; }
  .why { color: var(--muted); font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere;
         text-align: left; }
  .meta { color: var(--muted); font-size: 12px; margin-top: 2px; }
  .none { color: var(--muted); }
  .error { color: var(--poor); }
  .badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px;
           font-weight: 600; color: #fff; }
  .badge.reply { background: var(--sent); }
  .badge.review { background: var(--review); }
  .badge.handoff { background: var(--handoff); }
  .agreement { font-weight: 650; }
  .agreement.good { color: var(--good); }
  .agreement.fair { color: var(--fair); }
  .agreement.poor { color: var(--poor); }
  @media (max-width: 1000px) {
    .figures { grid-template-columns: repeat(3, 1fr); }
    .calibration { grid-template-columns: 1fr; }
  }
"""
