"""The playground's JSON API and command, through HTTP against the fake model.

The page itself is tested in a real browser in test_playground_browser.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from intercom_responder.adapters.playground_server import PlaygroundServer
from intercom_responder.bootstrap import build_playground
from intercom_responder.config import load_settings
from tests.conftest import OPENAI_KEY, REPO
from tests.fakes.openai_server import FakeOpenAI
from tests.test_answers import RESET_A, RESET_Q, seed_local

Start = Callable[..., tuple[PlaygroundServer, str]]


def model_env(model: FakeOpenAI, tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_MODEL": "test-model",
        "OPENAI_MAX_RETRIES": "0",
        "EMBEDDING_DIMS": "64",
        "MEMORY_TOP_K": "0",
        "DATA_DIR": str(tmp_path / "data"),
        **overrides,
    }


@pytest.fixture
def start(model: FakeOpenAI, tmp_path: Path) -> Iterator[Start]:
    servers: list[PlaygroundServer] = []

    def run(
        *, learn: bool = False, token: str | None = None, **env: str
    ) -> tuple[PlaygroundServer, str]:
        settings = load_settings(model_env(model, tmp_path, **env), need_intercom=False)
        server = build_playground(settings, port=0, learn=learn, token=token)
        server.start()
        servers.append(server)
        return server, server.url.split("?")[0].rstrip("/")

    yield run
    for server in servers:
        server.stop()


def new_session(base: str, **headers: str) -> str:
    response = requests.post(f"{base}/api/sessions", headers=headers, timeout=10)
    assert response.status_code == 201
    return str(response.json()["id"])


def say(base: str, sid: str, text: str, mode: str = "auto") -> requests.Response:
    return requests.post(
        f"{base}/api/sessions/{sid}/messages", json={"text": text, "mode": mode}, timeout=30
    )


def review(base: str, sid: str, action: str, text: str | None = None) -> requests.Response:
    body: dict[str, Any] = {"action": action}
    if text is not None:
        body["text"] = text
    return requests.post(f"{base}/api/sessions/{sid}/review", json=body, timeout=30)


def transcript(base: str, sid: str) -> dict[str, Any]:
    response = requests.get(f"{base}/api/sessions/{sid}", timeout=10)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def test_automatic_sends_a_confident_answer_and_shows_why(model: FakeOpenAI, start: Start) -> None:
    model.set_json_reply("Open Settings > Security.", 0.93, "documented")
    _, base = start()
    sid = new_session(base)

    answer = say(base, sid, "How do I reset my password?").json()

    assert answer["sent"] is True and answer["pending"] is False
    assert answer["decision"] == "reply" and answer["rule"] == "confident"
    assert answer["confidence"] == 0.93 and answer["reasoning"] == "documented"
    assert "threshold" in answer["reason"] and answer["memory_hits"] == []
    assert transcript(base, sid)["messages"] == [
        {"role": "customer", "text": "How do I reset my password?"},
        {"role": "answer", "text": "Open Settings > Security."},
    ]


def test_manual_waits_for_a_decision_and_edit_sends_the_edited_text(
    model: FakeOpenAI, start: Start
) -> None:
    model.set_json_reply("Refunds take 5 days.", 0.95, "policy page")
    _, base = start()
    sid = new_session(base)

    waiting = say(base, sid, "Can I get a refund?", mode="manual").json()
    assert waiting["pending"] is True and waiting["sent"] is False
    state = transcript(base, sid)
    assert state["pending"]["draft"] == "Refunds take 5 days."
    assert [m["role"] for m in state["messages"]] == ["customer"]  # not seen by the customer

    assert review(base, sid, "edit", "   ").status_code == 400  # an empty edit is refused
    done = review(base, sid, "edit", "Refunds take 3 to 5 working days.").json()

    assert done == {"action": "edit", "sent": True, "text": "Refunds take 3 to 5 working days."}
    state = transcript(base, sid)
    assert state["pending"] is None
    assert state["messages"][-1] == {"role": "answer", "text": "Refunds take 3 to 5 working days."}
    assert review(base, sid, "approve").status_code == 400  # nothing waits any more


def test_a_low_confidence_draft_waits_even_in_automatic_and_reject_sends_nothing(
    model: FakeOpenAI, start: Start
) -> None:
    model.set_json_reply("Maybe next week?", 0.4, "a guess")
    _, base = start()
    sid = new_session(base)
    answer = say(base, sid, "When is the next release?").json()
    assert answer["decision"] == "review" and answer["pending"] is True

    assert review(base, sid, "reject").json() == {"action": "reject", "sent": False, "text": None}
    assert [m["role"] for m in transcript(base, sid)["messages"]] == ["customer"]


def test_hand_offs_follow_the_daemons_rules(model: FakeOpenAI, start: Start) -> None:
    model.set_json_reply("Sure.", 0.99, "")
    _, base = start(MAX_AI_REPLIES_PER_HOUR="2")
    human = new_session(base)
    asked = say(base, human, "I want to talk to a real human").json()
    assert asked["decision"] == "handoff" and asked["rule"] == "human_requested"
    assert asked["sent"] is False and asked["pending"] is False
    later = say(base, human, "hello?").json()  # the AI stays out, as in the daemon
    assert later["decision"] == "handoff" and len(model.chat_requests) == 1

    keyword = new_session(base)
    assert say(base, keyword, "My lawyer will call").json()["rule"] == "escalation_keyword"

    capped = new_session(base)
    for _ in range(2):
        assert say(base, capped, "one more question").json()["sent"] is True
    third = say(base, capped, "and another").json()
    assert third["decision"] == "handoff" and third["rule"] == "ai_reply_limit"


def test_memory_hits_come_with_their_scores_and_the_memory_is_only_read(
    model: FakeOpenAI, start: Start, tmp_path: Path
) -> None:
    seed_local(model, tmp_path / "data", [(RESET_Q, RESET_A)])
    model.set_json_reply(RESET_A, 0.95, "verified [1]")
    server, base = start(MEMORY_TOP_K="3", MEMORY_MIN_SCORE="0.3")
    sid = new_session(base)
    answer = say(base, sid, "I forgot my password, how do I reset it?", mode="manual").json()
    [hit] = answer["memory_hits"]
    assert hit["question"] == RESET_Q and hit["answer"] == RESET_A and 0.3 <= hit["score"] <= 1
    assert review(base, sid, "approve").json()["sent"] is True
    server.stop()
    assert [e.question for e in catalogue(model, tmp_path)] == [RESET_Q]  # nothing learned


def catalogue(model: FakeOpenAI, tmp_path: Path) -> list[Any]:
    from intercom_responder.adapters.memory import LocalMemory

    memory = LocalMemory(
        data_dir=tmp_path / "data",
        openai_api_key=OPENAI_KEY,
        openai_base_url=model.base_url,
        embedding_dims=64,
    )
    try:
        return list(memory.entries())
    finally:
        memory.close()


def test_learn_adds_approved_answers_to_the_memory(
    model: FakeOpenAI, start: Start, tmp_path: Path
) -> None:
    model.set_json_reply("Our office opens at 9.", 0.95, "")
    server, base = start(MEMORY_TOP_K="3", learn=True)
    sid = new_session(base)
    say(base, sid, "When does the office open?", mode="manual")
    assert review(base, sid, "approve").json()["sent"] is True
    server.stop()

    [entry] = catalogue(model, tmp_path)
    assert entry.source == "playground" and entry.answer == "Our office opens at 9."
    assert entry.question == "When does the office open?"


def test_bad_input_is_400_an_unknown_session_404_and_a_failing_model_502(
    model: FakeOpenAI, start: Start
) -> None:
    _, base = start()
    sid = new_session(base)
    url = f"{base}/api/sessions/{sid}/messages"
    cases = [
        (b"not json", "not JSON"),
        (json.dumps({"text": ""}).encode(), "empty"),
        (json.dumps({"text": "x" * 10_001}).encode(), "10,000"),
        (json.dumps({"text": "hi", "mode": "sometimes"}).encode(), "mode"),
        (json.dumps(["hi"]).encode(), "object"),
    ]
    for body, why in cases:
        response = requests.post(url, data=body, timeout=10)
        assert response.status_code == 400 and why in response.json()["error"], body
    bad_action = requests.post(
        f"{base}/api/sessions/{sid}/review", json={"action": "maybe"}, timeout=10
    )
    assert bad_action.status_code == 400 and "action" in bad_action.json()["error"]
    assert requests.get(f"{base}/api/sessions/nope", timeout=10).status_code == 404
    assert say(base, "nope", "hi").status_code == 404
    assert model.chat_requests == []

    model.fail_next(500)
    failed = say(base, sid, "hello")
    assert failed.status_code == 502 and "the model failed" in failed.json()["error"]


def test_the_page_is_served_from_the_daemon_itself(start: Start) -> None:
    _, base = start()
    page = requests.get(f"{base}/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    html = page.text
    assert "<script" in html and "http://" not in html and "https://" not in html
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


def test_with_a_token_every_request_must_carry_it(start: Start) -> None:
    server, base = start(token="play-token-0123456789")
    assert server.url.endswith("/?token=play-token-0123456789")
    assert requests.get(f"{base}/", timeout=10).status_code == 401
    assert requests.get(f"{base}/?token=play-token-0123456789", timeout=10).status_code == 200
    assert requests.post(f"{base}/api/sessions", timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert requests.post(f"{base}/api/sessions", headers=wrong, timeout=10).status_code == 401
    right = {"Authorization": "Bearer play-token-0123456789"}
    assert new_session(base, **right)


# --------------------------------------------------------------------------- the command


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def playground_process(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **env}
    return subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--env-file", os.devnull, "playground", *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )


def test_the_command_needs_no_intercom_prints_the_url_and_stops_on_sigterm(
    model: FakeOpenAI, tmp_path: Path
) -> None:
    model.set_json_reply("Hello!", 0.95, "")
    port = free_port()
    process = playground_process(model_env(model, tmp_path), "--port", str(port))
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, line
        sid = new_session(f"http://127.0.0.1:{port}")
        assert say(f"http://127.0.0.1:{port}", sid, "hi").json()["sent"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
    assert code == 0


def test_a_public_address_needs_a_token(model: FakeOpenAI, tmp_path: Path) -> None:
    process = playground_process(model_env(model, tmp_path), "--host", "0.0.0.0", "--port", "0")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2 and "PLAYGROUND_TOKEN" in stderr
