"""Kill the real daemon (SIGKILL) at the dangerous moments; restart; never a second reply."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from intercom_responder.adapters.store import StateStore
from tests.conftest import ADMIN_ID, REPO, daemon_env, run_main, waiting_customer
from tests.fakes.intercom import FakeIntercom, RecordedRequest
from tests.fakes.openai_server import FakeOpenAI


def saved_state(tmp_path: Path, conversation_id: str) -> str | None:
    """The state a restarted daemon would find (snapshot plus journal), read without a lock."""
    record = StateStore(tmp_path / "sessions.json", read_only=True).get(conversation_id)
    return record.state if record else None


def start_daemon(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--once", "--env-file", os.devnull],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )


def test_killed_after_intercom_accepted_the_reply_before_the_state_was_written(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    cid = waiting_customer(intercom)
    env = daemon_env(intercom, model, tmp_path)
    applied = threading.Event()

    def reply_applied(request: RecordedRequest) -> None:
        if request.path.endswith("/reply"):
            applied.set()

    intercom.on_applied = reply_applied
    intercom.apply_then_hang("POST", r"/reply$", 10.0)  # the answer never reaches the daemon
    daemon = start_daemon(env)
    try:
        assert applied.wait(30), "the daemon never sent the reply"
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    intercom.on_applied = None
    assert saved_state(tmp_path, cid) == "SENDING"  # killed at the dangerous moment
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1

    code, _, err = run_main(["--once"], env)

    assert code == 0, err
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1
    assert len(intercom.calls("POST", f"/conversations/{cid}/reply")) == 1
    assert saved_state(tmp_path, cid) == "AWAITING_USER_REPLY"
    assert f"conversation {cid}: recovered" in err


def test_killed_while_drafting_the_message_is_answered_after_restart(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    cid = waiting_customer(intercom)
    env = daemon_env(intercom, model, tmp_path)
    model.delay = 10.0
    daemon = start_daemon(env)
    try:
        deadline = time.monotonic() + 30
        while not model.chat_requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert model.chat_requests, "the daemon never asked the model"
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert saved_state(tmp_path, cid) == "READY_FOR_RESPONSE"
    model.delay = 0.0
    # the cursor moved on? No: the cycle never completed, and the record is in flight anyway
    code, _, err = run_main(["--once"], env)
    assert code == 0, err
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1
