"""`python main.py sync` against the fake Intercom (hundreds of conversations, several
search pages) and real local Mem0: the right pairs, idempotent, resumable, robust."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from intercom_responder.adapters.memory import LocalMemory
from intercom_responder.flow.sync import HistorySync, SyncProgress
from tests.conftest import ADMIN_ID, OPENAI_KEY, REPO, TEAMMATE_ID, daemon_env, run_main
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeOpenAI

CONVERSATIONS = 210  # two search pages of 150


def build_history(intercom: FakeIntercom) -> tuple[set[tuple[str, str]], str]:
    """Conversations of every kind; returns the pairs a correct sync finds, and a 404 id."""
    now = int(time.time())
    expected: set[tuple[str, str]] = set()
    vanished = ""
    for i in range(CONVERSATIONS):
        kind = i % 7
        at = now - 3600 * 24 + i * 10
        cid = intercom.create_conversation(
            f"<p>Question {i}: how do I do thing {i}?</p>", created_at=at
        )
        if kind == 0:  # answered by a teammate
            intercom.admin_writes(
                cid, TEAMMATE_ID, f"<p>Answer {i}: like this.</p>", created_at=at + 1
            )
            expected.add((f"Question {i}: how do I do thing {i}?", f"Answer {i}: like this."))
        elif kind == 1:  # answered by our own AI: not learned
            intercom.admin_writes(cid, ADMIN_ID, f"<p>AI answer {i}</p>", created_at=at + 1)
        elif kind == 2:  # answered by a bot: not learned
            intercom.add_part(
                cid, f"<p>Bot answer {i}</p>", author_type="bot", author_id="b1", created_at=at + 1
            )
        elif kind == 3:  # only a note: no answer
            intercom.admin_writes(
                cid, TEAMMATE_ID, "<p>looking</p>", part_type="note", created_at=at + 1
            )
        elif kind == 4:  # two exchanges
            intercom.admin_writes(cid, TEAMMATE_ID, f"<p>First answer {i}.</p>", created_at=at + 1)
            intercom.customer_writes(cid, f"<p>Follow-up {i}?</p>", created_at=at + 2)
            intercom.admin_writes(cid, TEAMMATE_ID, f"<p>Second answer {i}.</p>", created_at=at + 3)
            expected.add((f"Question {i}: how do I do thing {i}?", f"First answer {i}."))
            expected.add((f"Follow-up {i}?", f"Second answer {i}."))
        elif kind == 5:  # closed conversations count too
            intercom.admin_writes(cid, TEAMMATE_ID, f"<p>Closed answer {i}.</p>", created_at=at + 1)
            intercom.set_state(cid, "closed")
            expected.add((f"Question {i}: how do I do thing {i}?", f"Closed answer {i}."))
        elif kind == 6 and not vanished:  # deleted while the sync runs
            intercom.admin_writes(cid, TEAMMATE_ID, "<p>gone</p>", created_at=at + 1)
            vanished = cid
    intercom.fail_next("GET", rf"^/conversations/{vanished}$", 404, times=100)
    return expected, vanished


def catalogue(model: FakeOpenAI, data_dir: Path) -> list[tuple[str, str, str]]:
    memory = LocalMemory(
        data_dir=data_dir,
        openai_api_key=OPENAI_KEY,
        openai_base_url=model.base_url,
        embedding_dims=64,
    )
    try:
        return [(e.question, e.answer, e.source) for e in memory.entries(limit=10_000)]
    finally:
        memory.close()


def start_sync(env: dict[str, str]) -> subprocess.Popen[str]:
    """`python main.py sync` in the background, to be interrupted."""
    return subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--env-file", os.devnull, "sync"],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )


def sync_env(intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path) -> dict[str, str]:
    return daemon_env(intercom, model, tmp_path, LOG_LEVEL="WARNING")


def test_sync_finds_exactly_the_teammate_answers_and_a_second_run_adds_nothing(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    expected, _ = build_history(intercom)
    intercom.rate_limit_next(reset_in=1)  # a 429 on the way is waited out
    env = sync_env(intercom, model, tmp_path)

    code, out, err = run_main(["sync"], env, timeout=180)

    assert code == 0, err
    entries = catalogue(model, tmp_path / "data")
    assert {(q, a) for q, a, _ in entries} == expected
    assert len(entries) == len(expected)  # nothing twice
    assert {source for _, _, source in entries} == {"sync"}
    assert (
        f"sync done: {CONVERSATIONS} of {CONVERSATIONS} conversations, added {len(expected)} pairs"
        in out
    )
    assert "skipped 1: conversation vanished (404)" in out
    assert "answered by a bot or the AI" in out
    assert len(intercom.calls("POST", "/conversations/search")) >= 2  # pages were followed

    code, out, err = run_main(["sync"], env, timeout=180)
    assert code == 0, err
    assert f"added 0 pairs, {len(expected)} already known" in out
    assert len(catalogue(model, tmp_path / "data")) == len(expected)


def test_a_sync_killed_halfway_continues_and_ends_with_the_same_catalogue(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    expected, _ = build_history(intercom)
    env = sync_env(intercom, model, tmp_path)
    process = start_sync(env)
    try:
        deadline = time.monotonic() + 120
        while len(intercom.calls("GET")) < CONVERSATIONS // 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    halfway = catalogue(model, tmp_path / "data")
    assert 0 < len(halfway) < len(expected)

    code, out, err = run_main(["sync"], env, timeout=180)

    assert code == 0, err
    assert "resuming a sync at conversation" in out
    entries = catalogue(model, tmp_path / "data")
    assert {(q, a) for q, a, _ in entries} == expected
    assert len(entries) == len(expected)


def test_ctrl_c_stops_cleanly_and_the_next_run_finishes(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    expected, _ = build_history(intercom)
    env = sync_env(intercom, model, tmp_path)
    process = start_sync(env)
    deadline = time.monotonic() + 120
    while len(intercom.calls("GET")) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "sync interrupted" in out and "run the same command again" in out

    code, out, err = run_main(["sync"], env, timeout=180)
    assert code == 0, err
    assert {(q, a) for q, a, _ in catalogue(model, tmp_path / "data")} == expected


def test_dry_run_shows_the_pairs_and_writes_nothing(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    now = int(time.time())
    cid = intercom.create_conversation("<p>Can I pay by invoice?</p>", created_at=now - 100)
    intercom.admin_writes(cid, TEAMMATE_ID, "<p>Yes, from the Business plan.</p>")

    code, out, err = run_main(["sync", "--dry-run"], sync_env(intercom, model, tmp_path))

    assert code == 0, err
    assert "would add 1 pairs" in out
    assert "Q: Can I pay by invoice?" in out and "A: Yes, from the Business plan." in out
    assert not (tmp_path / "sessions.sync.json").exists()
    assert model.embedding_requests == []


def test_since_and_limit_choose_the_conversations(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    for i in range(5):
        cid = intercom.create_conversation(f"<p>q{i}</p>", created_at=int(time.time()) - 100)
        intercom.admin_writes(cid, TEAMMATE_ID, f"<p>a{i}</p>")
    env = sync_env(intercom, model, tmp_path)

    code, out, _ = run_main(["sync", "--dry-run", "--limit", "3"], env)
    assert code == 0 and "3 of 3 conversations, would add 3 pairs" in out
    code, out, _ = run_main(["sync", "--dry-run", "--since", "2999-01-01"], env)
    assert code == 0 and "0 of 0 conversations" in out
    code, _, err = run_main(["sync", "--since", "yesterday"], env)
    assert code == 2 and "'yesterday' is not a date" in err


def test_a_terminal_gets_a_progress_bar(intercom: FakeIntercom, tmp_path: Path) -> None:
    from intercom_responder.adapters.intercom import IntercomClient
    from tests.conftest import TOKEN

    for i in range(3):
        cid = intercom.create_conversation(f"<p>q{i}</p>", created_at=int(time.time()) - 100)
        intercom.admin_writes(cid, TEAMMATE_ID, f"<p>a{i}</p>")
    out = io.StringIO()
    with SyncProgress(tmp_path / "sessions.json") as progress:
        result = HistorySync(
            intercom=IntercomClient(token=TOKEN, base_url=intercom.base_url),
            memory=None,
            progress=progress,
            admin_id=ADMIN_ID,
            out=out,
            is_tty=True,
        ).run()
    assert len(result.would_add) == 3
    text = out.getvalue()
    assert "\r[########################] 3/3 conversations" in text and "ETA" in text


def test_a_second_sync_at_the_same_time_is_refused(tmp_path: Path) -> None:
    from intercom_responder.adapters.files import StateLockedError

    with SyncProgress(tmp_path / "sessions.json"), pytest.raises(StateLockedError) as caught:
        SyncProgress(tmp_path / "sessions.json")
    assert "wait for the other sync to finish" in str(caught.value)
