"""The answer memory in use: drafts get verified answers, outages cost nothing, and the
`ask` and `memory` commands tune it without Intercom."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from intercom_responder.adapters.memory import LocalMemory
from intercom_responder.bootstrap import App
from tests.conftest import ADMIN_ID, OPENAI_KEY, daemon_env, run_main, waiting_customer
from tests.fakes.intercom import FakeIntercom
from tests.fakes.mem0_platform import FakeMem0Platform
from tests.fakes.openai_server import FakeOpenAI

MakeApp = Callable[..., App]
RESET_Q = "How do I reset my password?"
RESET_A = "Open Settings > Security and choose Reset password. The link is valid for 1 hour."
HOURS_Q = "What are your opening hours on weekends?"
HOURS_A = "Saturday 10:00-14:00, closed on Sunday."
MEM0_KEY = "m0-answers-secret-0123456789"


@pytest.fixture
def platform() -> Iterator[FakeMem0Platform]:
    with FakeMem0Platform(api_key=MEM0_KEY) as fake:
        yield fake


def seed_local(model: FakeOpenAI, data_dir: Path, pairs: list[tuple[str, str]]) -> None:
    memory = LocalMemory(
        data_dir=data_dir,
        openai_api_key=OPENAI_KEY,
        openai_base_url=model.base_url,
        embedding_dims=64,
    )
    try:
        for question, answer in pairs:
            assert memory.add(question, answer, source="approved", conversation_id="c-old")
    finally:
        memory.close()


def answers_from_catalogue(request: dict[str, Any]) -> str:
    """A model that uses a verified answer when the prompt has one."""
    prompt = request["messages"][-1]["content"]
    if "Open Settings > Security" in prompt:
        return json.dumps({"answer": RESET_A, "confidence": 0.92, "reasoning": "verified [1]"})
    return json.dumps({"answer": "Not sure.", "confidence": 0.3, "reasoning": "no verified answer"})


def test_the_right_catalogue_answer_ends_up_in_the_prompt_and_the_reply(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, tmp_path: Path
) -> None:
    seed_local(model, tmp_path / "data", [(RESET_Q, RESET_A), (HOURS_Q, HOURS_A)])
    model.reply = answers_from_catalogue
    cid = waiting_customer(intercom, "<p>I forgot my password, how do I reset it?</p>")
    app = make_app(MEMORY_MIN_SCORE="0.3")

    [outcome] = app.poller.poll_once().outcomes

    prompt = model.chat_requests[-1]["messages"][-1]["content"]
    assert "Question: How do I reset my password?" in prompt
    assert f"Answer: {RESET_A}" in prompt
    assert HOURS_A not in prompt  # the unrelated entry scored below MEMORY_MIN_SCORE
    assert outcome.status == "replied"
    assert [hit.question for hit in outcome.memory_hits] == [RESET_Q]
    assert 0.3 <= outcome.memory_hits[0].score <= 1.0
    [reply] = intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")
    assert "Reset password" in reply["body"]
    record = app.store.get(cid)
    assert record is not None and record.memory_ids == (outcome.memory_hits[0].id,)


def test_a_mem0_outage_still_produces_a_decision(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, platform: FakeMem0Platform
) -> None:
    platform.fail_next(500, times=100)
    cid = waiting_customer(intercom)
    app = make_app(MEM0_API_KEY=MEM0_KEY, MEM0_HOST=platform.base_url)

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "replied" and outcome.memory_hits == ()
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1
    assert app.recall is not None and app.recall.failures == 1
    assert "(none found)" in model.chat_requests[-1]["messages"][-1]["content"]


def test_a_memory_that_does_not_answer_in_time_is_skipped_within_the_deadline(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, platform: FakeMem0Platform
) -> None:
    platform.delay = 5.0
    cid = waiting_customer(intercom)
    app = make_app(MEM0_API_KEY=MEM0_KEY, MEM0_HOST=platform.base_url, MEMORY_TIMEOUT="0.5")

    started = time.monotonic()
    [outcome] = app.poller.poll_once().outcomes

    assert time.monotonic() - started < 4.0
    assert outcome.status == "replied"
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1


def test_the_platform_catalogue_feeds_drafts_and_auto_sent_answers_are_not_learned(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, platform: FakeMem0Platform
) -> None:
    platform.seed_memory(
        RESET_Q,
        user_id="intercom-responder",
        metadata={"answer": RESET_A, "source": "approved", "added_at": "2026-11-01T10:00:00+00:00"},
    )
    model.reply = answers_from_catalogue
    waiting_customer(intercom, "<p>how do I reset my password please</p>")
    app = make_app(MEM0_API_KEY=MEM0_KEY, MEM0_HOST=platform.base_url, MEMORY_MIN_SCORE="0.2")

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "replied"
    assert [hit.answer for hit in outcome.memory_hits] == [RESET_A]
    assert len(platform.memories) == 1  # the AI's own answer did not teach itself
    assert not [r for r in platform.requests if r.path.startswith("/v3/memories/add")]
    assert platform.errors == []


def test_memory_top_k_zero_switches_the_memory_off(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, platform: FakeMem0Platform
) -> None:
    waiting_customer(intercom)
    app = make_app(MEM0_API_KEY=MEM0_KEY, MEM0_HOST=platform.base_url, MEMORY_TOP_K="0")
    app.poller.poll_once()
    assert app.recall is None and platform.requests == []


def test_memory_commands_and_ask_work_without_intercom(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    env = daemon_env(intercom, model, tmp_path, MEMORY_MIN_SCORE="0.3", LOG_LEVEL="WARNING")
    for name in ("INTERCOM_ACCESS_TOKEN", "INTERCOM_ADMIN_ID", "INTERCOM_API_BASE"):
        del env[name]

    code, out, err = run_main(["memory", "add", RESET_Q, RESET_A], env)
    assert (code, out.strip()) == (0, "added to the catalogue"), err
    code, out, _ = run_main(["memory", "add", RESET_Q, f"  {RESET_A}  "], env)
    assert (code, out.strip()) == (0, "already in the catalogue")
    run_main(["memory", "add", HOURS_Q, HOURS_A], env)

    code, out, _ = run_main(["memory", "list"], env)
    assert code == 0
    assert out.count("[manual]") == 2 and RESET_A in out and "2 entries (local)" in out

    code, out, _ = run_main(["memory", "search", "reset my password"], env)
    assert code == 0
    first = out.splitlines()[0]
    assert RESET_Q in first and float(first.split()[0]) >= 0.3
    assert "1 hit(s)" in out

    model.reply = answers_from_catalogue
    code, out, err = run_main(["ask", "I forgot my password, how do I reset it?"], env)
    assert code == 0, err
    assert "memory:     ok, 1 hit(s)" in out
    assert f"[manual] {RESET_Q}" in out
    assert "confidence: 0.92" in out and "reasoning:  verified [1]" in out
    assert "decision:   reply (confidence 0.92 is at or above the threshold 0.80)" in out

    code, out, _ = run_main(["ask", "--json", "This is urgent! How do I reset my password?"], env)
    assert code == 0
    answer = json.loads(out)
    assert answer["decision"] == "handoff" and "urgent" in answer["reason"]
    assert answer["memory_hits"][0]["question"] == RESET_Q
    assert answer["confidence"] == 0.92 and answer["draft"] == RESET_A
    assert intercom.requests == []  # ask and memory never talk to Intercom


def test_memory_commands_explain_a_missing_key(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    env = daemon_env(intercom, model, tmp_path)
    del env["OPENAI_API_KEY"]
    code, _, err = run_main(["memory", "list"], env)
    assert code == 2
    assert "OPENAI_API_KEY: is required for the local answer memory" in err
