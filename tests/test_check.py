"""`python main.py check` against the fakes: one line per check, the variable to fix on
every FAIL, exit 0 only when nothing failed, and nothing written or posted anywhere."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from intercom_responder.bootstrap import App, open_answer_memory
from intercom_responder.check import run_checks
from intercom_responder.config import load_settings
from tests.conftest import OPENAI_KEY, TOKEN, daemon_env, run_main
from tests.fakes.intercom import FakeIntercom
from tests.fakes.mem0_platform import FakeMem0Platform
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack import FakeSlack

MakeApp = Callable[..., App]
MEM0_KEY = "m0-check-secret-0123456789"
BOT_TOKEN = "xoxb-check-bot-secret-0123456789"
APP_TOKEN = "xapp-check-app-secret-0123456789"
SECRETS = (TOKEN, OPENAI_KEY, MEM0_KEY, BOT_TOKEN, APP_TOKEN)
READ_ONLY_SLACK_METHODS = {"auth.test", "conversations.info", "apps.connections.open"}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, channel_id="C0REVIEW") as fake:
        yield fake


@pytest.fixture
def platform() -> Iterator[FakeMem0Platform]:
    with FakeMem0Platform(api_key=MEM0_KEY) as fake:
        yield fake


def full_env(
    intercom: FakeIntercom,
    model: FakeOpenAI,
    tmp_path: Path,
    slack: FakeSlack,
    platform: FakeMem0Platform,
    **overrides: str,
) -> dict[str, str]:
    """Every service configured: Intercom, the model, the Mem0 platform and Slack review."""
    extra = {
        "OPENAI_MODEL": "gpt-4o",  # one the fake lists
        "MEM0_API_KEY": MEM0_KEY,
        "MEM0_HOST": platform.base_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_CHANNEL_ID": slack.channel_id,
        "SLACK_API_URL": slack.api_url,
    }
    return daemon_env(intercom, model, tmp_path, **{**extra, **overrides})


def check(env: dict[str, str]) -> tuple[int, list[str]]:
    """`run_checks` in this process (cheap); the CLI path is covered by `run_main` below."""
    out = io.StringIO()
    code = run_checks(load_settings(env), out=out)
    return code, out.getvalue().splitlines()


def statuses(lines: list[str]) -> list[str]:
    return [line.split(maxsplit=1)[0] for line in lines[:-1]]


def assert_nothing_written(intercom: FakeIntercom, slack: FakeSlack) -> None:
    assert {r.method for r in intercom.requests} <= {"GET"}
    assert {c.method for c in slack.calls} <= READ_ONLY_SLACK_METHODS
    assert slack.calls_to("chat.postMessage") == []
    assert slack.messages == [] and slack.ephemerals == []
    assert slack.connections_opened == 0  # apps.connections.open hands out a URL only


def test_everything_configured_and_working_passes_through_the_cli(
    intercom: FakeIntercom,
    model: FakeOpenAI,
    tmp_path: Path,
    slack: FakeSlack,
    platform: FakeMem0Platform,
) -> None:
    env = full_env(intercom, model, tmp_path, slack, platform)

    code, stdout, stderr = run_main(["check"], env)

    assert code == 0, stdout + stderr
    lines = stdout.splitlines()
    assert lines == [
        "OK    configuration",
        "OK    Intercom: token works (workspace Fake Intercom, app fakeintercom)",
        "OK    Intercom: INTERCOM_ADMIN_ID 991 is teammate Responder Bot (the token's owner)",
        f"OK    model gpt-4o at {model.base_url} (listed by GET /models)",
        f"OK    answer memory (Mem0 platform, {platform.base_url})",
        "OK    Slack: bot @review-bot in workspace Acme, channel #review (bot is a member)",
        "OK    Slack Socket Mode: app-level token works (apps.connections.open)",
        "all checks passed",
    ]
    assert [(r.method, r.path) for r in intercom.requests] == [
        ("GET", "/me"),
        ("GET", "/admins/991"),
    ]
    assert model.chat_requests == []  # the model list was enough
    assert [c.method for c in slack.calls] == [
        "auth.test",
        "conversations.info",
        "apps.connections.open",
    ]
    assert_nothing_written(intercom, slack)
    assert all(r.method in ("GET", "POST") for r in platform.requests)
    assert platform.memories == []  # searched, never added to
    for secret in SECRETS:
        assert secret not in stdout + stderr


def test_default_setup_local_memory_without_slack_passes(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    env = daemon_env(intercom, model, tmp_path, OPENAI_MODEL="gpt-4o")

    code, lines = check(env)

    assert code == 0, lines
    assert f"OK    answer memory (local, {tmp_path / 'data'})" in lines
    assert "SKIP  Slack review: not configured (reviews become internal notes)" in lines
    assert statuses(lines) == ["OK"] * 5 + ["SKIP"]
    assert lines[-1] == "all checks passed"
    assert model.embedding_requests, "the local memory searched through the model server"


def test_local_memory_held_by_a_running_daemon_is_skipped_not_failed(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    settings = load_settings(daemon_env(intercom, model, tmp_path, OPENAI_MODEL="gpt-4o"))
    daemon_memory = open_answer_memory(settings)  # holds the embedded Qdrant's lock
    try:
        out = io.StringIO()
        code = run_checks(settings, out=out)
    finally:
        daemon_memory.close()

    lines = out.getvalue().splitlines()
    assert code == 0, lines
    assert lines[4] == (
        f"SKIP  answer memory (local, {tmp_path / 'data'}): in use by another process "
        "(the daemon?), not checked; embedded Qdrant allows one process per DATA_DIR"
    )


def test_everything_wrong_fails_every_check_through_the_cli(
    intercom: FakeIntercom,
    model: FakeOpenAI,
    tmp_path: Path,
    slack: FakeSlack,
) -> None:
    with FakeMem0Platform(api_key=MEM0_KEY) as down:
        pass  # stopped: its port refuses connections
    wrong = {
        "INTERCOM_ACCESS_TOKEN": "tok-wrong-intercom-0123456789",
        "OPENAI_API_KEY": "sk-wrong-openai-0123456789",
        "MEM0_API_KEY": "m0-wrong-mem0-0123456789",
        "SLACK_BOT_TOKEN": "xoxb-wrong-bot-0123456789",
        "SLACK_APP_TOKEN": "xapp-wrong-app-0123456789",
    }
    env = full_env(intercom, model, tmp_path, slack, down, **wrong)

    code, stdout, stderr = run_main(["check"], env)

    assert code == 1, stdout + stderr
    lines = stdout.splitlines()
    assert statuses(lines) == ["OK", "FAIL", "SKIP", "FAIL", "FAIL", "FAIL", "FAIL"]
    assert "INTERCOM_ACCESS_TOKEN" in lines[1]
    assert "OPENAI_API_KEY" in lines[3]
    assert lines[4].startswith("FAIL  answer memory: Mem0 platform") and "MEM0_HOST" in lines[4]
    assert lines[5] == "FAIL  Slack: invalid_auth - check SLACK_BOT_TOKEN"
    assert "SLACK_APP_TOKEN" in lines[6]
    assert lines[-1] == "5 checks failed"
    assert_nothing_written(intercom, slack)
    for secret in (*SECRETS, *wrong.values()):
        assert secret not in stdout + stderr


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"INTERCOM_ADMIN_ID": "12345"},
            [
                "FAIL  Intercom: INTERCOM_ADMIN_ID 12345 is not a teammate of this workspace "
                "(GET /admins lists: 991 Responder Bot, 555 Tina Teammate) - set it to the id "
                "of the teammate the replies are sent as (the token's owner is 991)"
            ],
            id="unknown-admin",
        ),
        pytest.param(
            {"INTERCOM_ACCESS_TOKEN": "tok-wrong-0123456789"},
            ["FAIL  Intercom: the token was refused", "HTTP 401", "check INTERCOM_ACCESS_TOKEN"],
            id="intercom-token",
        ),
        pytest.param(
            {"OPENAI_API_KEY": "sk-wrong-0123456789"},
            ["FAIL  model: AuthenticationError (HTTP 401", "check OPENAI_API_KEY"],
            id="openai-key",
        ),
        pytest.param(
            {"OPENAI_MODEL": "gpt-9-imaginary"},
            ["FAIL  model: gpt-9-imaginary is not among the models", "check OPENAI_MODEL"],
            id="model-not-listed",
        ),
        pytest.param(
            {"SLACK_BOT_TOKEN": "xoxb-wrong-0123456789"},
            ["FAIL  Slack: invalid_auth - check SLACK_BOT_TOKEN"],
            id="slack-bot-token",
        ),
        pytest.param(
            {"SLACK_APP_TOKEN": "xapp-wrong-0123456789"},
            ["FAIL  Slack Socket Mode: invalid_auth - check SLACK_APP_TOKEN"],
            id="slack-app-token",
        ),
        pytest.param(
            {"SLACK_CHANNEL_ID": "C0NOWHERE"},
            ["FAIL  Slack: bot @review-bot", "C0NOWHERE is not found", "check SLACK_CHANNEL_ID"],
            id="slack-channel",
        ),
        pytest.param(
            {"MEM0_API_KEY": "m0-wrong-0123456789"},
            ["FAIL  answer memory: Mem0 platform", "Invalid API key", "check MEM0_API_KEY"],
            id="mem0-key",
        ),
    ],
)
def test_one_problem_is_one_fail_line_naming_what_to_fix(
    intercom: FakeIntercom,
    model: FakeOpenAI,
    tmp_path: Path,
    slack: FakeSlack,
    platform: FakeMem0Platform,
    overrides: dict[str, str],
    expected: list[str],
) -> None:
    code, lines = check(full_env(intercom, model, tmp_path, slack, platform, **overrides))

    assert code == 1, lines
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1, lines
    for part in expected:
        assert part in failed[0]
    assert lines[-1] == "1 check failed"
    assert set(statuses(lines)) <= {"OK", "FAIL", "SKIP"}  # the others still ran
    assert len(lines) == 8
    assert_nothing_written(intercom, slack)
    secrets = [*SECRETS, *(v for k, v in overrides.items() if k.endswith(("_TOKEN", "_KEY")))]
    for secret in secrets:
        assert secret not in "\n".join(lines)


def test_mem0_platform_down_fails_the_memory_only(
    intercom: FakeIntercom,
    model: FakeOpenAI,
    tmp_path: Path,
    slack: FakeSlack,
    platform: FakeMem0Platform,
) -> None:
    platform.stop()

    code, lines = check(full_env(intercom, model, tmp_path, slack, platform))

    assert code == 1
    assert statuses(lines) == ["OK", "OK", "OK", "OK", "FAIL", "OK", "OK"]
    assert lines[4].startswith(f"FAIL  answer memory: Mem0 platform at {platform.base_url}")
    assert "ConnectError" in lines[4] and "check MEM0_API_KEY and MEM0_HOST" in lines[4]
    assert lines[-1] == "1 check failed"


def test_server_without_a_model_list_is_checked_with_a_one_token_completion(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    model.fail_next(404, message="Not Found")  # GET /models, as on servers that lack it

    code, lines = check(daemon_env(intercom, model, tmp_path, MEMORY_TOP_K="0"))

    assert code == 0, lines
    assert lines[3] == (
        f"OK    model test-model at {model.base_url} (a 1-token completion worked; "
        "GET /models is not available: NotFoundError (HTTP 404: Not Found))"
    )
    assert [r["max_tokens"] for r in model.chat_requests] == [1]
    assert lines[4] == "SKIP  answer memory: off (MEMORY_TOP_K=0)"


def test_a_model_that_refuses_the_completion_fails_too(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    model.fail_next(404, message="Not Found", times=2)  # no list, and no such model

    code, lines = check(daemon_env(intercom, model, tmp_path, MEMORY_TOP_K="0"))

    assert code == 1
    assert lines[3].startswith("FAIL  model: NotFoundError (HTTP 404: Not Found)")
    assert "check OPENAI_MODEL" in lines[3]


def test_routing_lists_the_teams_names_unknown_routing_file_teams_and_searches_tickets(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    intercom.add_team("4001", "Billing")
    intercom.add_team("4002", "Account security")
    routing_file = tmp_path / "routing.toml"
    routing_file.write_text(
        '[teams.Billing]\ndescription = "Invoices"\n\n[teams.Legal]\ndescription = "Lawyers"\n'
    )
    env = daemon_env(
        intercom,
        model,
        tmp_path,
        OPENAI_MODEL="gpt-4o",
        ROUTING="true",
        ROUTE_TICKETS="true",
        ROUTING_FILE=str(routing_file),
    )

    code, lines = check(env)

    routing = [line for line in lines if "routing:" in line]
    assert routing == [
        "OK    routing: 2 team(s) to choose from (Billing, Account security); "
        "1 described by ROUTING_FILE",
        "FAIL  routing: ROUTING_FILE describes team(s) this workspace does not have: Legal "
        "- fix the names (GET /teams has them)",
        "OK    routing: the token can search tickets (ROUTE_TICKETS)",
    ]
    assert code == 1
    writes = [r for r in intercom.requests if r.method != "GET"]
    assert [r.path for r in writes] == ["/tickets/search"]  # a search, nothing written
    _, without = check(daemon_env(intercom, model, tmp_path, OPENAI_MODEL="gpt-4o"))
    assert not any("routing:" in line for line in without)


@pytest.mark.openai_only
def test_the_state_database_is_checked_reading_only_with_the_replicas_running(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path, make_app: MakeApp, pg_url: str
) -> None:
    import psycopg

    from intercom_responder.adapters.pg_store import SCHEMA_VERSION

    replicated = {"STATE_BACKEND": "postgres", "DATABASE_URL": pg_url, "MEMORY_TOP_K": "0"}
    env = daemon_env(intercom, model, tmp_path, OPENAI_MODEL="gpt-4o", **replicated)

    def state_line(env: dict[str, str]) -> tuple[int, str]:
        code, lines = check(env)
        [line] = [line for line in lines if "state database" in line]
        return code, line

    code, line = state_line(env)
    assert code == 0 and line.startswith("OK") and "empty, the first start creates" in line
    with psycopg.connect(pg_url) as connection:  # a check creates nothing
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)

    replica = make_app(**replicated)
    replica.poller.poll_once()  # it leads the poll
    assert replica.claims is not None
    code, line = state_line(env)
    assert code == 0 and line.startswith("OK")
    assert f"schema {SCHEMA_VERSION}, 1 replica(s) running" in line
    assert f"the poll led by {replica.claims.owner}" in line
    assert "pw-secret" not in line

    wrong = pg_url.replace("pw-secret-0123", "not-the-password-9876")
    code, line = state_line({**env, "DATABASE_URL": wrong})
    assert code == 1 and line.startswith("FAIL") and "DATABASE_URL postgresql://" in line
    assert "cannot connect" in line and "not-the-password" not in line
