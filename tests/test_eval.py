"""`python main.py eval` against the fake Intercom and the fake model, whose confidence and
agreement are set per question: the shares and the calibration match hand-computed values,
nothing leaks from later conversations, nothing is written, and the cache pays nothing twice.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from intercom_responder.commands import evaluate
from intercom_responder.config import load_settings
from tests.conftest import TEAMMATE_ID, daemon_env, run_main
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeAPIError, FakeOpenAI

pytestmark = pytest.mark.openai_only

#: question -> (teammate's answer, draft confidence, judge's agreement)
HISTORY = {
    "How do I reset my password?": ("Settings > Security > Reset.", 0.95, 0.9),
    "Where is my invoice?": ("Billing > Invoices.", 0.85, 0.3),
    "Can I get a refund?": ("Yes, within 30 days.", 0.5, 0.8),
    "I want to talk to a human": ("Sure, here I am.", 0.9, 0.1),
    "How do I change my e-mail?": ("Profile > E-mail.", 0.9, 1.0),
}


def schema_name(request: dict[str, Any]) -> str:
    return str(((request.get("response_format") or {}).get("json_schema") or {}).get("name"))


def scripted_model(model: FakeOpenAI, fail_on: str | None = None) -> None:
    """Drafts and judges by the question in the prompt, as HISTORY says."""

    def answer(request: dict[str, Any]) -> str:
        prompt = request["messages"][-1]["content"]
        newest = prompt.split("not answered yet")[-1] if "not answered yet" in prompt else prompt
        question = next((q for q in HISTORY if q in newest or q in prompt), None)
        if schema_name(request) == "judge_answer":
            question = next(q for q in HISTORY if q in prompt.split("The teammate's answer")[0])
            return json.dumps({"agreement": HISTORY[question][2], "reason": "compared"})
        if fail_on and fail_on in newest:
            raise FakeAPIError(500, "the model is down for this one")
        confidence = HISTORY[question][1] if question else 0.5
        return json.dumps(
            {
                "answer": f"Draft for: {question}",
                "confidence": confidence,
                "reasoning": "",
                "needs_human": False,
                "sources": [],
                "language": "en",
                "sentiment": "neutral",
            }
        )

    model.reply = answer


def history(intercom: FakeIntercom) -> None:
    start = int(time.time()) - 10 * 86400
    for n, (question, (answer, _, _)) in enumerate(HISTORY.items()):
        cid = intercom.create_conversation(f"<p>{question}</p>", created_at=start + n * 3600)
        intercom.admin_writes(
            cid, TEAMMATE_ID, f"<p>{answer}</p>", created_at=start + n * 3600 + 60
        )


def run_eval(env: dict[str, str], *args: str, **options: Any) -> tuple[int, str]:
    settings = load_settings(env, need_responder=True)
    out = io.StringIO()
    defaults: dict[str, Any] = {
        "since": None,
        "limit": 100,
        "out_dir": None,
        "questions": None,
        "judge_model": None,
        "target": 0.9,
        "yes": True,
        "as_json": False,
    }
    code = evaluate(settings, **{**defaults, **options}, out=out)
    return code, out.getvalue()


def test_the_shares_the_calibration_and_the_lowest_threshold_match_by_hand(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    history(intercom)
    scripted_model(model)
    env = daemon_env(intercom, model, tmp_path, MEMORY_TOP_K="0")
    out_dir = tmp_path / "report"

    code, printed = run_eval(env, out_dir=out_dir)

    assert code == 0, printed
    document = json.loads((out_dir / "eval.json").read_text())
    summary = document["summary"]
    # sent alone at 0.80: reset (0.95), invoice (0.85), e-mail (0.90); refund reviewed (0.5);
    # "talk to a human" handed off whatever the confidence
    assert (summary["sent"], summary["reviewed"], summary["handed_off"]) == (3, 1, 1)
    assert summary["sent_share"] == pytest.approx(0.6)
    assert summary["mean_agreement_sent"] == pytest.approx((0.9 + 0.3 + 1.0) / 3)
    assert summary["by_rule"] == {"low_confidence": 1, "human_requested": 1}
    # at 0.90 only reset (0.9) and e-mail (1.0) are sent: mean 0.95 >= 0.9
    assert (summary["lowest_threshold"], summary["sent_at_lowest"]) == (0.9, 2)
    buckets = {(b["low"], b["count"]): b["mean_agreement"] for b in document["calibration"]}
    assert buckets[(0.5, 1)] == pytest.approx(0.8)
    assert buckets[(0.8, 1)] == pytest.approx(0.3)
    assert buckets[(0.9, 3)] == pytest.approx((0.9 + 0.1 + 1.0) / 3)
    assert len(document["pairs"]) == 5
    assert (out_dir / "eval.csv").exists() and (out_dir / "report.html").exists()
    assert "sent alone:    3 (60 %)" in printed
    assert "lowest threshold reaching 0.90: 0.90 (2 would be sent)" in printed
    assert "Where is my invoice?" in printed.split("worst would-be-sent")[1]

    # nothing written anywhere: Intercom only read, no state file, no memory of the team's
    assert {r.method for r in intercom.requests} <= {"GET", "POST"}
    assert {r.path for r in intercom.requests if r.method == "POST"} == {"/conversations/search"}
    assert not (tmp_path / "sessions.json").exists() and not (tmp_path / "data").exists()

    calls = len(model.chat_requests)
    code, again = run_eval(env, out_dir=out_dir)  # the same settings: all from the cache
    assert code == 0 and len(model.chat_requests) == calls
    assert "from the cache: 5 drafts, 5 judgements" in again
    code, as_json = run_eval(env, out_dir=out_dir, as_json=True)
    assert json.loads(as_json)["sent"] == 3


def test_a_draft_only_knows_answers_given_before_its_question(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    start = int(time.time()) - 5 * 86400
    early = intercom.create_conversation("<p>How do I export my data to CSV?</p>", created_at=start)
    intercom.admin_writes(
        early, TEAMMATE_ID, "<p>Export via the Reports tab.</p>", created_at=start + 60
    )
    late = intercom.create_conversation(
        "<p>How can I export all my data to CSV?</p>", created_at=start + 86400
    )
    intercom.admin_writes(
        late,
        TEAMMATE_ID,
        "<p>Use Reports, then Export CSV (LATERSECRET).</p>",
        created_at=start + 86460,
    )
    model.set_json_reply("Try the Reports tab.", 0.9, "")
    env = daemon_env(intercom, model, tmp_path, MEMORY_MIN_SCORE="0.2")

    code, printed = run_eval(env)

    assert code == 0, printed
    prompts = [
        r["messages"][-1]["content"] for r in model.chat_requests if schema_name(r) == "draft_reply"
    ]
    assert len(prompts) == 2
    first, second = prompts
    assert "LATERSECRET" not in first and "Export via the Reports tab" not in first
    assert "Export via the Reports tab" in second  # known before the later question
    assert "LATERSECRET" not in second  # its own answer, never
    assert not (tmp_path / "data").exists()  # the team's memory was not touched


def test_one_failing_pair_is_marked_and_the_rest_go_on(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    history(intercom)
    scripted_model(model, fail_on="Where is my invoice?")
    env = daemon_env(intercom, model, tmp_path, MEMORY_TOP_K="0")
    code, printed = run_eval(env, as_json=True)
    summary = json.loads(printed)
    assert code == 0 and summary["pairs"] == 5 and summary["failed"] == 1
    assert summary["sent"] == 2


def test_a_hand_written_test_set_and_its_errors(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    scripted_model(model)
    env = daemon_env(intercom, model, tmp_path, MEMORY_TOP_K="0")
    questions = tmp_path / "questions.csv"
    questions.write_text(
        "question,expected\nHow do I reset my password?,Settings > Security > Reset.\n"
        'Can I get a refund?,"Yes, within 30 days."\n'
    )
    code, printed = run_eval(env, questions=questions, as_json=True)
    assert code == 0 and json.loads(printed)["pairs"] == 2
    assert intercom.requests == []  # a test set needs no Intercom

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a", "expected": "b"}\nnot json\n')
    code, _, err = run_main(["eval", "--questions", str(bad), "--yes"], env)
    assert code == 2 and "line 2" in err


def test_no_pairs_is_a_clear_message_and_exit_1(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    env = daemon_env(intercom, model, tmp_path)
    code, _, err = run_main(["eval", "--yes"], env)
    assert code == 1 and "no question-answer pairs found" in err
