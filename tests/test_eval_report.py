"""The files of `main.py eval --out DIR`: eval.json, eval.csv and report.html.

The numbers are the real `core.evaluation` ones over eleven pairs worked out by hand:
one failed, and of the ten others five sent alone, three reviewed and two handed off.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from pathlib import Path

from intercom_responder.adapters.eval_report import CSV_FIELDS, TITLE, render_html, write_report
from intercom_responder.core.evaluation import (
    Bucket,
    PairResult,
    Summary,
    calibration,
    summarize,
    worst_sent,
)

PAYLOAD = "<script>alert(1)</script>"
QUOTED = 'Is "Pro" the <b>plan</b> with the API & webhooks?'
MULTI_LINE = 'Open Settings > Billing.\nThen click "Cancel plan", and confirm.\n\nThat is all.'
SENT = (  # confidence, agreement: the five answers sent alone
    (0.95, 1.0),
    (0.92, 0.93),
    (0.9, 0.9),
    (0.85, 0.8),
    (0.82, 0.62),
)
REVIEWED = ((0.7, 0.5), (0.6, 0.3), (0.4, 0.1))


def pair(index: int, **fields: object) -> PairResult:
    base = PairResult(
        index=index,
        conversation_id=f"c{index}",
        question=f"Question {index}?",
        expected=f"The teammate's answer {index}.",
        asked_at=1_709_542_800 + 60 * index,
        draft=f"The draft {index}.",
        similarity=0.5,
        judge_reason=f"judged {index}",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def results() -> list[PairResult]:
    out = [
        pair(
            index,
            confidence=confidence,
            agreement=agreement,
            action="reply",
            rule="confident",
            reason="at or above the threshold",
        )
        for index, (confidence, agreement) in enumerate(SENT)
    ]
    out[0] = replace(out[0], question=PAYLOAD, judge_reason=f"the customer wrote {PAYLOAD}")
    out[1] = replace(out[1], question=QUOTED, draft=MULTI_LINE)
    for confidence, agreement in REVIEWED:
        out.append(
            pair(
                len(out),
                confidence=confidence,
                agreement=agreement,
                action="review",
                rule="low_confidence",
                reason="below the threshold",
            )
        )
    out.append(
        pair(
            len(out),
            confidence=0.9,
            agreement=0.2,
            action="handoff",
            rule="escalation_keyword",
            reason="the customer's message mentions 'lawyer'",
        )
    )
    out.append(
        pair(
            len(out),
            conversation_id=None,
            asked_at=None,
            draft="",
            action="handoff",
            rule="human_requested",
            reason="the customer asked for a human",
            judge_reason="",
        )
    )
    out.append(pair(len(out), action="review", rule="unusable_reply", error="judge timed out"))
    return out


def report(
    pairs: list[PairResult] | None = None,
) -> tuple[Summary, list[Bucket], list[PairResult], list[PairResult]]:
    pairs = results() if pairs is None else pairs
    summary = summarize(pairs, threshold=0.8, target=0.9)
    return summary, calibration(pairs), pairs, worst_sent(pairs)


def test_the_numbers_of_the_sample_are_the_ones_worked_out_by_hand() -> None:
    summary, _, pairs, worst = report()
    assert (summary.pairs, summary.failed) == (11, 1)
    assert (summary.sent, summary.reviewed, summary.handed_off) == (5, 3, 2)
    assert round(summary.mean_agreement_sent or 0, 4) == 0.85
    assert (summary.lowest_threshold, summary.sent_at_lowest) == (0.85, 4)
    assert [r.agreement for r in worst] == [0.62, 0.8, 0.9, 0.93, 1.0]
    assert sum(r.judged for r in pairs) == 9


def test_the_three_files_are_written_into_a_new_directory(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "first"
    paths = write_report(out, *report())
    assert paths == [out / "eval.json", out / "eval.csv", out / "report.html"]
    assert sorted(p.name for p in out.iterdir()) == ["eval.csv", "eval.json", "report.html"]


def test_eval_json_holds_the_summary_the_buckets_and_every_pair(tmp_path: Path) -> None:
    summary, buckets, pairs, worst = report()
    write_report(tmp_path, summary, buckets, pairs, worst)
    document = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))

    assert set(document) == {"summary", "calibration", "pairs"}
    assert document["summary"] == summary.to_json()
    assert document["summary"]["by_rule"] == {
        "low_confidence": 3,
        "escalation_keyword": 1,
        "human_requested": 1,
    }
    assert len(document["calibration"]) == 10
    assert document["calibration"][9] == {
        "low": 0.9,
        "high": 1.0,
        "count": 4,
        "mean_agreement": (1.0 + 0.93 + 0.9 + 0.2) / 4,
    }
    assert document["calibration"][0] == {
        "low": 0.0,
        "high": 0.1,
        "count": 0,
        "mean_agreement": None,
    }
    assert len(document["pairs"]) == len(pairs)
    assert document["pairs"] == [r.to_json() for r in pairs]
    assert [PairResult.from_json(p) for p in document["pairs"]] == pairs
    assert document["pairs"][0]["question"] == PAYLOAD  # the data stays as it was


def test_eval_csv_reads_back_one_row_per_pair_with_the_multi_line_draft(tmp_path: Path) -> None:
    _, _, pairs, _ = summary_and_write(tmp_path)
    with (tmp_path / "eval.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == list(CSV_FIELDS)
    assert reader.fieldnames == [
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
    ]
    assert len(rows) == len(pairs)
    assert [int(row["index"]) for row in rows] == [r.index for r in pairs]
    assert rows[1]["draft"] == MULTI_LINE
    assert rows[1]["question"] == QUOTED
    assert rows[0]["question"] == PAYLOAD
    assert float(rows[0]["confidence"]) == 0.95
    assert float(rows[0]["agreement"]) == 1.0
    assert (rows[0]["action"], rows[0]["rule"], rows[0]["error"]) == ("reply", "confident", "")
    assert rows[9]["conversation_id"] == ""  # None is an empty cell
    assert rows[9]["agreement"] == ""
    assert rows[10]["error"] == "judge timed out"


def summary_and_write(
    out: Path,
) -> tuple[Summary, list[Bucket], list[PairResult], list[PairResult]]:
    parts = report()
    write_report(out, *parts)
    return parts


def test_the_page_shows_the_summary_the_chart_and_the_tables(tmp_path: Path) -> None:
    summary_and_write(tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")

    assert page.startswith("<!doctype html>")
    assert f"<title>{TITLE}</title>" in page
    assert TITLE == "intercom-responder: answer quality before going live"
    figures = text_of(section(page, 'data-test="summary"'))
    for expected in (
        "Pairs 11 1 failed",
        "Sent alone at 0.80 50 % 5 answers",
        "Reviewed first 30 % 3 pairs",
        "Handed off 20 % 2 pairs",
        "Mean agreement, sent alone 0.85 target 0.90",
        "Lowest threshold reaching 0.90 0.85 4 answers (40 %) would then be sent alone",
    ):
        assert expected in figures
    by_rule = text_of(section(page, 'data-test="by-rule"'))
    assert "low_confidence 3 30 %" in by_rule
    assert "escalation_keyword 1 10 %" in by_rule
    assert "human_requested 1 10 %" in by_rule

    chart = section(page, 'data-test="chart"', "</svg>")
    assert chart.count("<circle") == 9  # one dot per judged pair
    assert 'data-test="threshold-line"' in chart
    assert "CONFIDENCE_THRESHOLD 0.80" in chart
    assert 'data-test="target-line"' in chart
    assert "target 0.90" in chart
    assert chart.count('data-test="band"') == 5  # the buckets with judged pairs
    threshold_x = float(re.search(r'threshold-line" x1="([\d.]+)"', chart).group(1))  # type: ignore[union-attr]
    plot = re.search(r'class="plot" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', chart)
    assert plot
    assert threshold_x == round(float(plot[1]) + 0.8 * float(plot[2]), 1)

    worst = section(page, 'data-test="worst"', "</table>")
    assert worst.count("<tr>") == 6  # the header and the five answers
    assert text_of(worst).index("0.62") < text_of(worst).index("0.80")
    everything = section(page, 'data-test="pairs"', "</table>")
    assert everything.count('<tr id="pair-') == 11
    assert "judge timed out" in everything
    assert "2024-03-04" in everything
    assert "escalation_keyword" in everything


def test_customer_text_is_escaped_and_the_page_loads_nothing(tmp_path: Path) -> None:
    summary_and_write(tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert PAYLOAD not in page
    assert "<script" not in page.lower()  # no script at all, not even ours
    assert "<b>plan</b>" not in page
    assert "Is &quot;Pro&quot; the &lt;b&gt;plan&lt;/b&gt; with the API &amp; webhooks?" in page
    assert "Then click &quot;Cancel plan&quot;, and confirm." in page
    # nothing from elsewhere: no stylesheet, script, image, font or frame
    assert 'src="http' not in page
    assert "<link" not in page.lower()
    assert "<script src" not in page.lower()
    assert "@import" not in page
    assert "url(" not in page
    assert "http://" not in page and "https://" not in page
    assert "<style>" in page  # the CSS is inline


def test_a_run_without_a_reachable_target_and_nothing_sent() -> None:
    pairs = [
        pair(0, confidence=0.5, agreement=0.4, action="review", rule="low_confidence"),
        pair(1, confidence=0.3, agreement=0.9, action="review", rule="low_confidence"),
    ]
    summary, buckets, pairs, worst = report(pairs)
    assert summary.lowest_threshold is None
    page = render_html(summary, buckets, pairs, worst)
    assert "No answer would be sent alone." in page
    assert "Lowest threshold reaching 0.90 none no threshold gets there" in text_of(page)
    assert "Sent alone at 0.80 0 % 0 answers" in text_of(page)
    assert section(page, 'data-test="chart"', "</svg>").count("<circle") == 2


def test_writing_again_replaces_the_files(tmp_path: Path) -> None:
    write_report(tmp_path, *report())
    fewer = results()[:3]
    write_report(tmp_path, *report(fewer))

    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.csv", "eval.json", "report.html"]
    document = json.loads((tmp_path / "eval.json").read_text(encoding="utf-8"))
    assert len(document["pairs"]) == 3
    assert document["summary"]["pairs"] == 3
    with (tmp_path / "eval.csv").open(encoding="utf-8", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 3
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.count('<tr id="pair-') == 3


# --------------------------------------------------------------------------- helpers


def section(page: str, marker: str, end: str = "</section>") -> str:
    """The page from the element carrying `marker` to the next `end`."""
    start = page.index(marker)
    return page[start : page.index(end, start) + len(end)]


def text_of(markup: str) -> str:
    """The words of the markup without its tags, spaces folded."""
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())
