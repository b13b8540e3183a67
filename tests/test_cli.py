"""`python main.py` as users run it: exit codes, messages, signals, logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ADMIN_ID, OPENAI_KEY, REPO, TOKEN, daemon_env, run_main, waiting_customer
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeOpenAI


def test_help_is_fast_and_imports_no_heavy_library() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=str(REPO),
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0
    assert "--once" in done.stdout and "--dry-run" in done.stdout
    assert elapsed < 1.0, elapsed
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, intercom_responder.cli as c; c.build_parser();"
            "heavy = ('requests', 'openai', 'tenacity', 'schedule', 'mem0', 'httpx');"
            "print(sorted(m for m in heavy if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=str(REPO),
    )
    assert probe.stdout.strip() == "[]"


def test_a_configuration_error_is_one_line_exit_2_and_no_network_call(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    env = daemon_env(intercom, model, tmp_path, CONFIDENCE_THRESHOLD="1.5")
    code, out, err = run_main(["--once"], env)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "intercom-responder: configuration error: CONFIDENCE_THRESHOLD: must be between 0 and 1 "
        "(got '1.5')"
    ]
    env = daemon_env(intercom, model, tmp_path)
    del env["INTERCOM_ADMIN_ID"]
    code, _, err = run_main(["--once"], env)
    assert code == 2 and "INTERCOM_ADMIN_ID: is required but not set" in err
    assert intercom.requests == [] and model.chat_requests == []


def test_settings_are_read_from_an_env_file(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    cid = waiting_customer(intercom)
    env_file = tmp_path / "custom.env"
    env_file.write_text(
        "\n".join(f"{k}={v}" for k, v in daemon_env(intercom, model, tmp_path).items())
    )
    done = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--once", "--env-file", str(env_file)],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1


def test_once_answers_and_exits_0_without_leaking_tokens(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    cid = waiting_customer(intercom)
    code, out, err = run_main(["--once"], daemon_env(intercom, model, tmp_path, LOG_LEVEL="DEBUG"))
    assert code == 0, err
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1
    assert f"conversation {cid}: replied" in err
    assert TOKEN not in out + err and OPENAI_KEY not in out + err


def test_once_exits_1_when_the_cycle_fails_and_says_why(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    env = daemon_env(intercom, model, tmp_path, INTERCOM_ACCESS_TOKEN="tok-wrong-0123456789")
    code, out, err = run_main(["--once"], env)
    assert code == 1
    assert "POST /conversations/search failed with HTTP 401" in err
    assert "tok-wrong-0123456789" not in out + err


def test_json_logs_are_one_object_per_line(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    cid = waiting_customer(intercom)
    code, _, err = run_main(
        ["--once"], daemon_env(intercom, model, tmp_path, LOG_FORMAT="json", LOG_LEVEL="INFO")
    )
    assert code == 0
    entries = [json.loads(line) for line in err.splitlines() if line.strip()]
    decision = [e for e in entries if e.get("conversation_id") == cid]
    assert decision and decision[0]["event"] == "replied" and decision[0]["level"] == "INFO"
    assert all({"timestamp", "level", "message"} <= e.keys() for e in entries)
    assert not any("HTTP Request" in e["message"] for e in entries)  # no per-call chatter


def test_a_corrupt_state_file_stops_the_start_and_is_kept(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    state = tmp_path / "sessions.json"
    state.write_text('{"version": 1, "conversations": {')
    code, _, err = run_main(["--once"], daemon_env(intercom, model, tmp_path))
    assert code == 3
    assert str(state) in err and "not valid JSON" in err
    assert state.read_text() == '{"version": 1, "conversations": {'
    assert intercom.requests == []


def test_a_second_daemon_exits_at_once_and_sigterm_stops_the_first_cleanly(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO),
        **daemon_env(intercom, model, tmp_path, POLL_INTERVAL="1"),
    }
    first = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--env-file", os.devnull],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )
    try:
        deadline = time.monotonic() + 20
        while not intercom.calls("POST", "/conversations/search") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert intercom.calls("POST", "/conversations/search"), "the daemon never polled"
        code, _, err = run_main(["--once"], daemon_env(intercom, model, tmp_path))
        assert code == 3
        assert "already in use by another intercom-responder" in err
        assert str(first.pid) in err

        cid = waiting_customer(intercom)  # the running daemon keeps polling and answers
        deadline = time.monotonic() + 20
        while not intercom.parts(cid, author_id=ADMIN_ID) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1

        stopped_at = time.monotonic()
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=15)
        assert first.returncode == 0, err
        assert time.monotonic() - stopped_at < 5
        assert "received SIGTERM" in err
        state = json.loads((tmp_path / "sessions.json").read_text())
        assert state["conversations"][cid]["state"] == "AWAITING_USER_REPLY"
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
