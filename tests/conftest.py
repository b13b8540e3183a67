"""Shared fixtures: a fake Intercom and a fake model on 127.0.0.1, and the real daemon."""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from intercom_responder.adapters.responder import Responder
from intercom_responder.bootstrap import App, build_app
from intercom_responder.config import load_settings
from tests.fakes.gpt_trainer import FakeGPTTrainer
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeOpenAI
from tests.postgres import pg_url, postgres_server  # noqa: F401 (shared fixtures)

REPO = Path(__file__).resolve().parent.parent
TOKEN = "tok-intercom-secret-0123456789"
OPENAI_KEY = "sk-openai-secret-0123456789"
ADMIN_ID = "991"
TEAMMATE_ID = "555"


@pytest.fixture
def intercom() -> Iterator[FakeIntercom]:
    with FakeIntercom(token=TOKEN) as fake:
        fake.add_admin(ADMIN_ID, "Responder Bot")
        fake.add_admin(TEAMMATE_ID, "Tina Teammate")
        yield fake
        assert fake.validation_errors == [], "a request Intercom would reject was sent"


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        fake.set_json_reply("You can reset it under Settings > Security.", 0.93, "documented")
        yield fake


@pytest.fixture
def responder_kind() -> str:
    """The RESPONDER the daemon runs with; a module may run its tests with both."""
    return "openai"


@pytest.fixture
def gpt_trainer(model: FakeOpenAI) -> Iterator[FakeGPTTrainer]:
    """A fake GPT Trainer that answers what the fake model is set to answer.

    So a test that sets the model's reply gets the same answer text from either
    responder; with GPT Trainer the fake model still gives the confidence (grading).
    """
    with FakeGPTTrainer() as fake:
        fake.answer = lambda query, session, earlier: answer_of(model, query)
        yield fake


def answer_of(model: FakeOpenAI, query: str) -> str:
    """The `answer` the fake model would give to a prompt that is `query`."""
    import json

    reply = model.reply
    text = reply({"messages": [{"role": "user", "content": query}]}) if callable(reply) else reply
    try:
        data = json.loads(text)
    except ValueError:
        return text
    return str(data.get("answer") or "") if isinstance(data, dict) else text


def gpt_trainer_env(fake: FakeGPTTrainer) -> dict[str, str]:
    return {
        "RESPONDER": "gpt-trainer",
        "GPT_TRAINER_API_KEY": fake.api_key,
        "GPT_TRAINER_CHATBOT_UUID": fake.chatbot_uuid,
        "GPT_TRAINER_API_URL": fake.base_url,
        "GPT_TRAINER_TIMEOUT": "5",
    }


def daemon_env(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path, **overrides: str
) -> dict[str, str]:
    env = {
        "INTERCOM_ACCESS_TOKEN": TOKEN,
        "INTERCOM_ADMIN_ID": ADMIN_ID,
        "INTERCOM_API_BASE": intercom.base_url,
        "INTERCOM_TIMEOUT": "5",
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_MODEL": "test-model",
        "OPENAI_MAX_RETRIES": "0",
        "DEBOUNCE_SECONDS": "0",
        "HEALTH_ADDR": "",
        "POLL_INTERVAL_MIN": "1",
        "EMBEDDING_DIMS": "64",
        "STATE_FILE": str(tmp_path / "sessions.json"),
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "DEBUG",
    }
    env.update(overrides)
    return env


@pytest.fixture
def make_app(
    intercom: FakeIntercom,
    model: FakeOpenAI,
    tmp_path: Path,
    responder_kind: str,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., App]]:
    """Build the daemon exactly as `main.py` does, pointed at the fakes."""
    apps: list[App] = []
    responder_env: dict[str, str] = {}
    if responder_kind == "gpt-trainer":
        responder_env = gpt_trainer_env(request.getfixturevalue("gpt_trainer"))

    def make(
        *,
        dry_run: bool = False,
        out: io.StringIO | None = None,
        responder: Responder | None = None,
        hours_clock: Callable[[], float] | None = None,
        **overrides: str,
    ) -> App:
        settings = load_settings(
            daemon_env(intercom, model, tmp_path, **{**responder_env, **overrides})
        )
        app = build_app(
            settings,
            dry_run=dry_run,
            out=out or io.StringIO(),
            responder=responder,
            hours_clock=hours_clock,
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def waiting_customer(
    intercom: FakeIntercom, text: str = "<p>How do I reset my password?</p>", *, age: float = 120
) -> str:
    """An open conversation whose customer wrote `age` seconds ago and waits for us."""
    return intercom.create_conversation(text, created_at=int(time.time() - age))


def run_main(args: list[str], env: dict[str, str], *, timeout: float = 60) -> tuple[int, str, str]:
    """`python main.py ARGS` in a subprocess with only `env` (no .env from the repo)."""
    import subprocess

    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **env}
    done = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "--env-file", os.devnull, *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(REPO),
    )
    return done.returncode, done.stdout, done.stderr


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """The first true value of `check()`, waiting up to `timeout` seconds for it."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def replies(intercom: FakeIntercom, cid: str) -> list[dict[str, Any]]:
    """The daemon's replies to the customer in conversation `cid`."""
    return intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")


def notes(intercom: FakeIntercom, cid: str) -> list[dict[str, Any]]:
    """The daemon's internal notes in conversation `cid`."""
    return intercom.parts(cid, author_id=ADMIN_ID, part_type="note")
