"""Health, metrics, circuit breakers, dead letters and adaptive polling, end to end."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from intercom_responder.adapters.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    CircuitOpenError,
)
from intercom_responder.adapters.store import StateStore
from intercom_responder.bootstrap import App
from intercom_responder.core.records import State
from intercom_responder.flow.dead_letters import request_retry
from intercom_responder.flow.outcome import Outcome
from intercom_responder.flow.poller import CycleResult
from tests.conftest import ADMIN_ID, daemon_env, run_main, waiting_customer
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeOpenAI

MakeApp = Callable[..., App]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_goes_503_when_intercom_is_down_and_back_to_200_after(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    app = make_app(HEALTH_ADDR="127.0.0.1:0")
    app.intercom._sleep = lambda seconds: None  # keep the client's backoff out of the test time
    app.start()
    assert app.health_server is not None
    base = f"http://127.0.0.1:{app.health_server.port}"

    status, body = get(f"{base}/health")
    assert status == 503 and json.loads(body)["reason"] == "no poll has completed yet"

    assert app.poller.poll_once().completed
    status, body = get(f"{base}/health")
    assert status == 200 and json.loads(body)["status"] == "ok"

    intercom.fail_next("POST", r"^/conversations/search$", 503, times=6)  # every retry
    app.poller.poll_once()
    status, body = get(f"{base}/health")
    assert status == 503
    assert "search failed" in json.loads(body)["reason"]

    intercom_back = app.poller.poll_once()
    assert intercom_back.completed
    assert get(f"{base}/health")[0] == 200
    app.close()


def test_metrics_move_when_replies_are_sent(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    app = make_app(HEALTH_ADDR="127.0.0.1:0")
    app.start()
    assert app.health_server is not None and app.metrics is not None
    waiting_customer(intercom)
    waiting_customer(intercom, "<p>This is urgent!</p>")

    app.poller.poll_once()

    status, text = get(f"http://127.0.0.1:{app.health_server.port}/metrics")
    assert status == 200
    assert 'intercom_responder_replies_sent_total{source="ai"} 1.0' in text
    assert 'intercom_responder_handoffs_total{reason="escalation_keyword"} 1.0' in text
    assert "intercom_responder_polls_total 1.0" in text
    assert "intercom_responder_conversations_seen_total 2.0" in text
    assert 'intercom_responder_llm_latency_seconds_count{responder="llm"} 2.0' in text
    assert "intercom_responder_oldest_waiting_message_age_seconds 0.0" in text
    calls = app.metrics.value("intercom_responder_intercom_calls_total")
    assert calls == len(intercom.requests) > 0
    app.close()


def test_the_oldest_waiting_message_is_measured(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    model.fail_next(500, times=100)
    waiting_customer(intercom, age=300)
    app = make_app()
    app.poller.poll_once()
    assert app.metrics is not None
    age = app.metrics.value("intercom_responder_oldest_waiting_message_age_seconds")
    assert 299 <= age <= 330
    assert app.metrics.value("intercom_responder_errors_total", {"dependency": "llm"}) == 1


def test_a_breaker_opens_after_repeated_failures_and_closes_when_the_dependency_is_back() -> None:
    now = [0.0]
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "llm",
        failure_threshold=3,
        reset_after=60,
        clock=lambda: now[0],
        on_change=lambda name, state: changes.append((name, state)),
    )
    for _ in range(2):
        breaker.failure()
    assert breaker.state == CLOSED
    breaker.failure()
    assert breaker.state == OPEN and not breaker.allows()
    now[0] = 30
    try:
        breaker.check()
        raise AssertionError("an open breaker must refuse")
    except CircuitOpenError as exc:
        assert 29 <= exc.retry_in <= 31 and "llm is failing" in str(exc)
    now[0] = 61
    assert breaker.state == HALF_OPEN and breaker.allows()
    breaker.failure()  # still failing: open again at once
    assert breaker.state == OPEN
    now[0] = 122
    breaker.success()
    assert breaker.state == CLOSED
    assert [s for _, s in changes] == [OPEN, HALF_OPEN, OPEN, CLOSED]


def test_no_message_is_lost_or_dead_lettered_while_the_model_breaker_is_open(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cids = [waiting_customer(intercom) for _ in range(7)]
    model.fail_next(500, times=5)
    app = make_app(CONCURRENCY="1", MAX_ATTEMPTS="2", MEMORY_TOP_K="0")

    outcomes = app.poller.poll_once().outcomes

    assert sorted(o.status for o in outcomes) == ["failed"] * 5 + ["postponed"] * 2
    records = [app.store.get(cid) for cid in cids]
    assert all(r is not None and r.state == State.WAITING for r in records)
    assert sum(1 for r in records if r and r.attempts == 1) == 5  # failed against the model
    assert sum(1 for r in records if r and r.attempts == 0) == 2  # postponed: breaker open
    assert app.metrics is not None
    assert app.metrics.value("intercom_responder_circuit_open", {"dependency": "llm"}) == 1
    assert intercom.parts(cids[0], author_id=ADMIN_ID, part_type="note") == []


def test_a_message_failing_five_times_becomes_a_dead_letter_and_dlq_retry_brings_it_back(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, tmp_path: Path
) -> None:
    cid = waiting_customer(intercom)
    intercom.fail_next("GET", rf"^/conversations/{cid}$", 400, times=5)
    app = make_app()
    for attempt in range(5):
        app.poller.poll_once()
        record = app.store.get(cid)
        assert record is not None
        if attempt < 4:
            assert record.state == State.WAITING and record.attempts == attempt + 1
            assert record.due_at is not None
            app.store.put(type(record)(**{**record.__dict__, "due_at": 0.0}))
    record = app.store.get(cid)
    assert record is not None and record.state == State.FAILED and record.attempts == 5
    [note] = intercom.parts(cid, author_id=ADMIN_ID, part_type="note")
    assert "Could not answer this conversation automatically after 5 attempts" in note["body"]
    app.poller.poll_once()  # a dead letter is not retried by itself
    assert intercom.parts(cid, author_id=ADMIN_ID, part_type="comment") == []
    app.close()

    env = daemon_env(intercom, model, tmp_path)
    code, out, _ = run_main(["dlq"], env)
    assert code == 0 and cid in out and "5 attempts" in out and "1 dead letter(s)" in out
    code, out, _ = run_main(["dlq", "retry", cid], env)
    assert code == 0 and f"back in the queue: {cid}" in out
    code, _, err = run_main(["--once"], env)
    assert code == 0, err
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1, err
    code, out, _ = run_main(["dlq"], env)
    assert "0 dead letter(s)" in out


def test_dlq_retry_while_the_daemon_runs_leaves_a_request_it_picks_up(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, tmp_path: Path
) -> None:
    cid = waiting_customer(intercom)
    model.fail_next(500, times=1)
    app = make_app(MAX_ATTEMPTS="1", MEMORY_TOP_K="0")
    app.poller.poll_once()
    record = app.store.get(cid)
    assert record is not None and record.state == State.FAILED

    code, out, _ = run_main(["dlq", "retry"], daemon_env(intercom, model, tmp_path))
    assert code == 0 and "the running daemon will retry all dead letters" in out

    app.poller.poll_once()  # picks up the request at the end of the cycle
    app.poller.poll_once()  # and answers
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1
    assert not (tmp_path / "sessions.dlq-retry.json").exists()


def test_retry_requests_accumulate_ids(tmp_path: Path) -> None:
    request_retry(tmp_path / "sessions.json", "1")
    request_retry(tmp_path / "sessions.json", "2")
    document = json.loads((tmp_path / "sessions.dlq-retry.json").read_text())
    assert document == {"ids": ["1", "2"]}
    request_retry(tmp_path / "sessions.json", None)
    assert json.loads((tmp_path / "sessions.dlq-retry.json").read_text()) == {"ids": None}
    with StateStore(tmp_path / "sessions.json") as store:
        assert store.retry_dead_letters() == []


def test_the_poll_interval_adapts_between_its_bounds(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    app = make_app(POLL_INTERVAL="60", POLL_INTERVAL_MIN="15", POLL_INTERVAL_MAX="300")
    poller = app.poller
    busy = CycleResult(ok=True, found=2, read=1, outcomes=[Outcome("1", "replied", "r")])
    # re-seen search results from the overlap window are not activity
    idle = CycleResult(ok=True, found=200, read=1, outcomes=[Outcome("2", "skipped", "s")])
    assert poller.interval == 60
    intervals = []
    for result in (busy, busy, busy) + (idle,) * 9:
        poller.interval = poller.next_interval(result)
        intervals.append(poller.interval)
    assert intervals[:3] == [30, 15, 15]  # customers writing: toward the minimum
    growing = intervals[2:]
    assert intervals[-1] == 300 and growing == sorted(growing)


def test_health_addr_and_interval_bounds_are_validated(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    env = daemon_env(intercom, model, tmp_path, HEALTH_ADDR="localhost")
    code, _, err = run_main(["--once"], env)
    assert code == 2 and "HEALTH_ADDR: must be HOST:PORT" in err
    env = daemon_env(intercom, model, tmp_path, POLL_INTERVAL="5", POLL_INTERVAL_MIN="15")
    code, _, err = run_main(["--once"], env)
    assert code == 2 and "POLL_INTERVAL: must be between POLL_INTERVAL_MIN (15)" in err
