"""The numbers of `main.py eval`, checked against values worked out by hand."""

from __future__ import annotations

import json
import math

import pytest

from intercom_responder.core.evaluation import (
    Bucket,
    PairResult,
    QuestionsFileError,
    calibration,
    lexical_similarity,
    lowest_threshold,
    parse_questions,
    sent_at,
    summarize,
    worst_sent,
)


def pair(
    index: int,
    confidence: float,
    action: str,
    rule: str,
    agreement: float | None,
    similarity: float = 0.0,
    error: str | None = None,
) -> PairResult:
    return PairResult(
        index=index,
        conversation_id=f"c{index}",
        question=f"question {index}",
        expected=f"answer {index}",
        asked_at=1_700_000_000 + index,
        draft=f"draft {index}",
        confidence=confidence,
        action=action,
        rule=rule,
        reason=f"reason {index}",
        agreement=agreement,
        similarity=similarity,
        error=error,
    )


# A run at the threshold 0.8. Pairs 0-5 were decided by the confidence alone; 6-8 by another
# rule, whatever their confidence; 9 failed, and so counts nowhere although its fields are set.
RUN = [
    pair(0, 0.95, "reply", "confident", 0.9, similarity=0.6),
    pair(1, 0.85, "reply", "confident", 0.5, similarity=0.4),
    pair(2, 0.80, "reply", "confident", None, similarity=0.3),  # sent, not judged
    pair(3, 0.92, "reply", "confident", 0.9, similarity=0.2),
    pair(4, 0.70, "review", "low_confidence", 0.8, similarity=0.5),
    pair(5, 0.55, "review", "low_confidence", 0.3, similarity=0.1),
    pair(6, 0.99, "handoff", "escalation_keyword", 0.95, similarity=0.7),
    pair(7, 0.40, "handoff", "human_requested", None),
    pair(8, 0.60, "review", "unusable_reply", 0.2),
    pair(9, 0.75, "review", "low_confidence", 1.0, similarity=0.9, error="model timed out"),
]


def test_the_properties_of_a_pair() -> None:
    assert [r.would_send for r in RUN] == [True] * 4 + [False] * 6
    assert [r.confidence_decides for r in RUN] == [True] * 6 + [False] * 3 + [True]
    # a failed reply is never counted as sent
    assert not pair(0, 0.9, "reply", "confident", 0.9, error="boom").would_send


def test_the_summary_of_a_run() -> None:
    summary = summarize(RUN, threshold=0.8, target=0.8)
    assert (summary.pairs, summary.failed) == (10, 1)
    # of the 9 that did not fail: replies 0-3, reviews 4, 5, 8, hand-offs 6, 7
    assert (summary.sent, summary.reviewed, summary.handed_off) == (4, 3, 2)
    assert summary.sent_share == pytest.approx(4 / 9)
    assert summary.reviewed_share == pytest.approx(3 / 9)
    assert summary.handed_off_share == pytest.approx(2 / 9)
    # the failed pair 9 (low_confidence) is not in it; most frequent first, then by name
    assert summary.by_rule == {
        "low_confidence": 2,
        "escalation_keyword": 1,
        "human_requested": 1,
        "unusable_reply": 1,
    }
    assert list(summary.by_rule) == [
        "low_confidence",
        "escalation_keyword",
        "human_requested",
        "unusable_reply",
    ]
    # judged replies 0, 1, 3: (0.9 + 0.5 + 0.9) / 3; pair 2 is sent but not judged
    assert summary.mean_agreement_sent == pytest.approx(2.3 / 3)
    # similarity of every reply 0-3: (0.6 + 0.4 + 0.3 + 0.2) / 4
    assert summary.mean_similarity_sent == pytest.approx(0.375)
    assert (summary.threshold, summary.target) == (0.8, 0.8)
    # see test_the_lowest_threshold_of_a_run: at 0.92 pairs 0 and 3 are sent, mean 0.9
    assert summary.lowest_threshold == pytest.approx(0.92)
    assert summary.sent_at_lowest == 2


def test_the_summary_as_json() -> None:
    document = summarize(RUN, threshold=0.8, target=0.8).to_json()
    assert json.loads(json.dumps(document)) == document
    assert document["pairs"] == 10
    assert document["by_rule"] == {
        "low_confidence": 2,
        "escalation_keyword": 1,
        "human_requested": 1,
        "unusable_reply": 1,
    }
    assert set(document) == {
        "pairs",
        "failed",
        "sent",
        "reviewed",
        "handed_off",
        "sent_share",
        "reviewed_share",
        "handed_off_share",
        "by_rule",
        "mean_agreement_sent",
        "mean_similarity_sent",
        "threshold",
        "target",
        "lowest_threshold",
        "sent_at_lowest",
    }


def test_the_summary_of_nothing_and_of_failures_only() -> None:
    for results in ([], [pair(0, 0.9, "reply", "confident", 0.9, error="boom")]):
        summary = summarize(results, threshold=0.8, target=0.8)
        assert summary.failed == len(results)
        assert (summary.sent, summary.reviewed, summary.handed_off) == (0, 0, 0)
        assert (summary.sent_share, summary.reviewed_share, summary.handed_off_share) == (0, 0, 0)
        assert summary.by_rule == {}
        assert summary.mean_agreement_sent is None
        assert summary.mean_similarity_sent is None
        assert summary.lowest_threshold is None
        assert summary.sent_at_lowest is None


def _fields(bucket: Bucket) -> tuple[object, ...]:
    return bucket.low, bucket.high, bucket.count, bucket.mean_agreement


def test_the_calibration_of_a_run() -> None:
    # judged, no error: 0 (0.95, 0.9), 1 (0.85, 0.5), 3 (0.92, 0.9), 4 (0.70, 0.8),
    # 5 (0.55, 0.3), 6 (0.99, 0.95), 8 (0.60, 0.2); 2 and 7 are not judged, 9 failed
    buckets = calibration(RUN)
    assert [(b.low, b.high) for b in buckets] == [
        pytest.approx((i / 10, (i + 1) / 10)) for i in range(10)
    ]
    assert [(b.count, b.mean_agreement) for b in buckets[:5]] == [(0, None)] * 5
    assert _fields(buckets[5]) == (0.5, 0.6, 1, pytest.approx(0.3))
    assert _fields(buckets[6]) == (0.6, 0.7, 1, pytest.approx(0.2))
    assert _fields(buckets[7]) == (0.7, 0.8, 1, pytest.approx(0.8))
    assert _fields(buckets[8]) == (0.8, 0.9, 1, pytest.approx(0.5))
    # 0, 3 and 6: (0.9 + 0.9 + 0.95) / 3
    assert _fields(buckets[9]) == (0.9, 1.0, 3, pytest.approx(2.75 / 3))


def test_the_bounds_of_the_calibration_buckets() -> None:
    results = [
        pair(0, 0.0, "review", "low_confidence", 0.1),
        pair(1, 0.3, "review", "low_confidence", 0.2),  # 0.3 * 10 is 3.0000000000000004
        pair(2, 0.7, "review", "low_confidence", 0.3),  # 0.7 * 10 is 7.000000000000001
        pair(3, 0.6999, "review", "low_confidence", 0.4),
        pair(4, 1.0, "reply", "confident", 0.5),  # 1.0 goes in the last bucket
        pair(5, 0.9, "reply", "confident", 0.7),
    ]
    counts = [(b.count, b.mean_agreement) for b in calibration(results)]
    assert counts == [
        (1, pytest.approx(0.1)),
        (0, None),
        (0, None),
        (1, pytest.approx(0.2)),
        (0, None),
        (0, None),
        (1, pytest.approx(0.4)),
        (1, pytest.approx(0.3)),
        (0, None),
        (2, pytest.approx(0.6)),
    ]
    # other bucket counts: the same bounds, i / buckets
    quarters = calibration(results, buckets=4)
    assert [(b.low, b.high, b.count) for b in quarters] == [
        (0.0, 0.25, 1),
        (0.25, 0.5, 1),
        (0.5, 0.75, 2),
        (0.75, 1.0, 2),
    ]
    assert len(calibration([], buckets=3)) == 3
    with pytest.raises(ValueError):
        calibration(results, buckets=0)


def test_sent_at_another_threshold() -> None:
    # only pairs 0-5 can change; 6 (a keyword) is never sent, whatever its 0.99
    assert [r.index for r in sent_at(RUN, 0.8)] == [0, 1, 2, 3]
    assert [r.index for r in sent_at(RUN, 0.7)] == [0, 1, 2, 3, 4]
    assert [r.index for r in sent_at(RUN, 0.0)] == [0, 1, 2, 3, 4, 5]  # not 9: it failed
    assert [r.index for r in sent_at(RUN, 0.951)] == []


def test_the_lowest_threshold_of_a_run() -> None:
    # candidates 0.0, 0.55, 0.70, 0.80, 0.85, 0.92, 0.95; mean agreement of the judged sent:
    #   0.0 and 0.55: 0, 1, 3, 4, 5 (+2 unjudged) -> (0.9 + 0.5 + 0.9 + 0.8 + 0.3) / 5 = 0.68
    #   0.70: 0, 1, 3, 4 (+2) -> 3.1 / 4 = 0.775
    #   0.80 and 0.85: 0, 1, 3 (+2) -> 2.3 / 3 = 0.767
    #   0.92: 0, 3 -> 0.9;  0.95: 0 -> 0.9
    assert lowest_threshold(RUN, 0.6) == (0.0, 6)
    assert lowest_threshold(RUN, 0.68) == (0.0, 6)
    assert lowest_threshold(RUN, 0.7) == (0.70, 5)
    assert lowest_threshold(RUN, 0.775) == (0.70, 5)
    assert lowest_threshold(RUN, 0.78) == (0.92, 2)
    assert lowest_threshold(RUN, 0.9) == (0.92, 2)
    assert lowest_threshold(RUN, 0.91) is None
    assert lowest_threshold([], 0.5) is None


def test_the_lowest_threshold_forgives_the_float_error_of_a_mean() -> None:
    results = [pair(i, 0.9, "reply", "confident", a) for i, a in enumerate((0.9, 0.8, 0.7))]
    assert math.fsum((0.9, 0.8, 0.7)) / 3 < 0.8  # what floats make of it
    assert lowest_threshold(results, 0.8) == (0.0, 3)


def test_pairs_sent_but_not_judged_count_in_how_many_only() -> None:
    results = [
        pair(0, 0.6, "review", "low_confidence", None),
        pair(1, 0.9, "reply", "confident", 0.9),
    ]
    assert lowest_threshold(results, 0.9) == (0.0, 2)
    # a threshold at which nothing sent was judged says nothing: passed over
    unjudged_on_top = [
        pair(0, 0.6, "review", "low_confidence", 0.2),
        pair(1, 0.9, "reply", "confident", None),
    ]
    assert lowest_threshold(unjudged_on_top, 0.5) is None


def test_a_failed_pair_offers_no_threshold() -> None:
    results = [
        pair(0, 0.5, "review", "low_confidence", 0.1),
        pair(1, 0.55, "review", "low_confidence", 1.0, error="boom"),
        pair(2, 0.6, "reply", "confident", 0.9),
    ]
    assert lowest_threshold(results, 0.8) == (0.6, 1)


def test_the_worst_answers_sent() -> None:
    # judged replies: 1 (0.5), 3 (0.9, similarity 0.2), 0 (0.9, similarity 0.6)
    assert [r.index for r in worst_sent(RUN)] == [1, 3, 0]
    assert [r.index for r in worst_sent(RUN, 2)] == [1, 3]
    assert worst_sent(RUN, 0) == []
    ties = [
        pair(5, 0.9, "reply", "confident", 0.4, similarity=0.5),
        pair(2, 0.9, "reply", "confident", 0.4, similarity=0.5),
        pair(7, 0.9, "reply", "confident", 0.4, similarity=0.1),
        pair(1, 0.9, "reply", "confident", 0.0, similarity=0.9, error="boom"),
    ]
    assert [r.index for r in worst_sent(ties)] == [7, 2, 5]


def test_lexical_similarity() -> None:
    assert lexical_similarity("Reset your password.", "password: your RESET!") == 1.0
    assert lexical_similarity("Café crème", "cafe CREME") == 1.0
    assert lexical_similarity("naïve", "naive") == 1.0  # one word, not "nai" and "ve"
    # shared "the", "cat": 2 * 2 / (3 + 4)
    assert lexical_similarity("the cat sat", "the cat ran away") == pytest.approx(4 / 7)
    # repeats count: one "no" shared, 2 * 1 / (3 + 1)
    assert lexical_similarity("no no no", "no") == pytest.approx(0.5)
    assert lexical_similarity("yes", "no") == 0.0
    assert lexical_similarity("", "anything") == 0.0
    assert lexical_similarity("anything", "") == 0.0
    assert lexical_similarity("!!! ...", "...") == 0.0
    # Chinese has no spaces: one token a character; 2 * 1 / (2 + 2)
    assert lexical_similarity("密码重置", "重置密码") == 1.0
    assert lexical_similarity("密码", "密钥") == pytest.approx(0.5)
    # the vowel signs and viramas of Devanagari stay inside their word: 2 * 1 / (2 + 1)
    assert lexical_similarity("नमस्ते दुनिया", "नमस्ते") == pytest.approx(2 / 3)


def test_a_pair_result_to_json_and_back() -> None:
    for result in [
        *RUN,
        PairResult(index=3, conversation_id=None, question="q", expected="e", asked_at=None),
    ]:
        document = result.to_json()
        assert PairResult.from_json(json.loads(json.dumps(document))) == result
    assert RUN[9].to_json()["error"] == "model timed out"


def test_a_pair_result_from_older_or_damaged_json() -> None:
    minimal = PairResult.from_json({"index": 0, "question": "q", "expected": "e"})
    assert minimal == PairResult(0, None, "q", "e", None)
    assert PairResult.from_json({**RUN[0].to_json(), "confidence": 1}).confidence == 1.0
    cases: list[tuple[dict[str, object], str]] = [
        ({"question": "q", "expected": "e"}, "index"),
        ({"index": True, "question": "q", "expected": "e"}, "index"),
        ({"index": 0, "question": 3, "expected": "e"}, "question"),
        ({**RUN[0].to_json(), "confidence": "0.9"}, "confidence"),
        ({**RUN[0].to_json(), "agreement": False}, "agreement"),
        ({**RUN[0].to_json(), "asked_at": 1.5}, "asked_at"),
    ]
    for damaged, field in cases:
        with pytest.raises(ValueError, match=field):
            PairResult.from_json(damaged)


def test_questions_from_csv() -> None:
    text = (
        "\ufeffid,Question,expected,notes\r\n"
        '1,"How do I\nreset it?","Settings, then ""Reset"".",x\r\n'
        "\r\n"
        "2, Refund? ,Within 30 days.\r\n"  # a short row: the notes column is missing
        ",,,\r\n"  # what a spreadsheet leaves at the end
    )
    assert parse_questions(text, name="set.csv") == [
        ("How do I\nreset it?", 'Settings, then "Reset".'),
        ("Refund?", "Within 30 days."),
    ]
    assert parse_questions("question,expected\nq,e", name="SET.CSV") == [("q", "e")]


def test_questions_from_json_lines() -> None:
    lines = [
        json.dumps({"question": "How do I reset it?", "expected": "Settings.", "tag": 1}),
        "",
        "   ",
        json.dumps({"question": "Line\u2028separator", "expected": "Kept."}, ensure_ascii=False),
    ]
    expected = [("How do I reset it?", "Settings."), ("Line\u2028separator", "Kept.")]
    assert parse_questions("\n".join(lines) + "\n", name="set.jsonl") == expected
    assert parse_questions("\ufeff" + "\r\n".join(lines), name="set.ndjson") == expected


def _error(text: str, name: str) -> QuestionsFileError:
    with pytest.raises(QuestionsFileError) as caught:
        parse_questions(text, name=name)
    return caught.value


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("question,answer\nq,a\n", 1, "line 1: no 'expected' column"),
        ("\n\nexpected,notes\nq,a\n", 3, "line 3: no 'question' column"),
        ("question,expected\nq,\n", 2, "line 2: empty 'expected'"),
        ("question,expected\n  ,e\n", 2, "line 2: empty 'question'"),
        ("question,expected\nq\n", 2, "line 2: empty 'expected'"),  # a short row
        # the record of line 2 goes on to line 3: the error is on line 4
        ('question,expected\n"a\nb",x\nq,\n', 4, "line 4: empty 'expected'"),
        # an unclosed quote: reported where the cell starts
        ('question,expected\nq,e\nq,"open\nmore\n', 3, "line 3: not valid CSV"),
        ('question,expected\n"q"x,e\n', 2, "line 2: not valid CSV"),
    ],
)
def test_a_bad_csv_names_its_line(text: str, line: int, message: str) -> None:
    error = _error(text, "set.csv")
    assert str(error).startswith(message)
    assert error.line == line


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (['{"question": "q", "expected": "e"}', "{oops"], 2, "line 2: not a JSON object"),
        (["", "", "", "", "", "", "[1, 2]"], 7, "line 7: not a JSON object"),
        (['"just a string"'], 1, "line 1: not a JSON object"),
        (["", "", "", '{"question": "q"}'], 4, "line 4: no 'expected' field"),
        (['{"expected": "e"}'], 1, "line 1: no 'question' field"),
        (['{"question": "q", "expected": 42}'], 1, "line 1: 'expected' is not a string"),
        (['{"question": null, "expected": "e"}'], 1, "line 1: 'question' is not a string"),
        (['{"question": "  ", "expected": "e"}'], 1, "line 1: empty 'question'"),
        (['{"question": "q", "expected": ""}'], 1, "line 1: empty 'expected'"),
    ],
)
def test_a_bad_json_lines_file_names_its_line(lines: list[str], line: int, message: str) -> None:
    error = _error("\n".join(lines), "set.jsonl")
    assert str(error).startswith(message)
    assert error.line == line


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("", "set.csv"),
        ("question,expected\n", "set.csv"),
        ("question,expected\n,,\n\n", "set.csv"),
        ("\n  \n", "set.jsonl"),
    ],
)
def test_a_file_without_questions(text: str, name: str) -> None:
    error = _error(text, name)
    assert str(error) == f"no questions in {name}"
    assert error.line is None


def test_a_file_of_an_unknown_kind() -> None:
    message = str(_error("question,expected\nq,e\n", "set.txt"))
    assert "set.txt" in message
    for ending in (".jsonl", ".ndjson", ".csv"):
        assert ending in message
