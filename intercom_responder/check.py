"""`python main.py check`: the settings, then each configured service, and what to fix.

One line per check, as soon as it is done::

    OK    configuration
    OK    Intercom: token works (workspace Acme, app abc123)
    FAIL  Intercom: INTERCOM_ADMIN_ID 12345 is not a teammate of this workspace (...) - set ...
    OK    model gpt-4o at the OpenAI API (listed by GET /models)
    OK    answer memory (local, data)
    SKIP  Slack review: not configured (reviews become internal notes)
    1 check failed

Every check reads only: `GET /me` and `GET /admins/{id}` on Intercom (`GET /admins` to
list the teammates when the id is wrong), `GET /models` (or one 1-token completion) on
the model server, one memory search, and Slack's `auth.test`,
`conversations.info` and `apps.connections.open` (which hands out a Socket Mode URL but
opens no socket); with ROUTING or ROUTE_TICKETS also `GET /teams` and one page of
`POST /tickets/search`; with STATE_BACKEND=postgres a few reads in the database (the schema
version, the replicas holding claims). Nothing is posted or written anywhere. A failing
check does not stop the others; an unexpected error in one becomes its FAIL line. Tokens
never appear in the output.

The clients are the daemon's own, with their own timeouts (`INTERCOM_TIMEOUT`,
`OPENAI_TIMEOUT` without retries, `MEMORY_TIMEOUT`, 10 s for Slack). Heavy libraries are
imported inside the checks: this module is imported for `check` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from .adapters.slack import slack_error
from .bootstrap import build_intercom, open_answer_memory
from .core.text import Redactor, describe, one_line
from .defaults import MAX_LISTED, SLACK_TIMEOUT
from .errors import ExitCode

if TYPE_CHECKING:
    from .adapters.intercom import IntercomClient, IntercomError
    from .config import Settings

OK = "OK"
FAIL = "FAIL"
SKIP = "SKIP"


@dataclass(frozen=True)
class Result:
    status: str  # OK, FAIL or SKIP
    text: str


Check = Callable[["Settings"], Iterator[Result]]


def run_checks(settings: Settings, *, out: TextIO) -> int:
    """Run every check, print one line each and a summary; 0 when none failed."""
    checks: list[tuple[str, Check]] = [
        ("configuration", _configuration),
        ("Intercom", _intercom),
        ("GPT Trainer", _gpt_trainer),
        ("model", _model),
        ("answer memory", _memory),
        ("state database", _state_database),
        ("Slack", _slack),
        ("routing", _routing),
    ]
    redact = Redactor(settings.secrets())
    failed = 0
    for label, check in checks:
        for result in _guarded(label, check, settings):
            failed += result.status == FAIL
            line = f"{result.status:<6}{redact(result.text)}"
            print(line.rstrip(), file=out, flush=True)
    if failed:
        print(f"{failed} check{'s' if failed != 1 else ''} failed", file=out, flush=True)
        return ExitCode.FAILED
    print("all checks passed", file=out, flush=True)
    return ExitCode.OK


def _guarded(label: str, check: Check, settings: Settings) -> Iterator[Result]:
    """The check's results; an unexpected error ends it with a FAIL line, not the run."""
    try:
        yield from check(settings)
    except Exception as exc:
        yield Result(FAIL, f"{label}: unexpected error: {describe(exc)}")


# --------------------------------------------------------------------------- configuration


def _configuration(settings: Settings) -> Iterator[Result]:
    # Loading the settings validated every value (a bad one exits 2 before this runs).
    yield Result(OK, "configuration")


# --------------------------------------------------------------------------- Intercom


def _intercom(settings: Settings) -> Iterator[Result]:
    from .adapters.intercom import IntercomError

    client = build_intercom(settings)
    admin_id = settings.intercom_admin_id
    try:
        me = client.me()
    except IntercomError as exc:
        yield Result(FAIL, f"Intercom: {_intercom_problem(exc, settings)}")
        yield Result(SKIP, f"Intercom: INTERCOM_ADMIN_ID {admin_id} not checked (GET /me failed)")
        return
    app = _mapping(me.get("app"))
    workspace = app.get("name") or "?"
    yield Result(
        OK, f"Intercom: token works (workspace {workspace}, app {app.get('id_code') or '?'})"
    )

    try:
        admin = client.get_admin(admin_id)
    except IntercomError as exc:
        if exc.status not in (400, 404):
            yield Result(
                FAIL,
                f"Intercom: could not look up INTERCOM_ADMIN_ID {admin_id}: {exc} "
                "- try again, or check the token's permissions",
            )
            return
        owner = me.get("id")
        hint = f" (the token's owner is {owner})" if owner else ""
        yield Result(
            FAIL,
            f"Intercom: INTERCOM_ADMIN_ID {admin_id} is not a teammate of this workspace "
            f"({_admin_listing(client)}) - set it to the id of the "
            f"teammate the replies are sent as{hint}",
        )
        return
    owner_note = " (the token's owner)" if str(me.get("id")) == admin_id else ""
    yield Result(
        OK,
        f"Intercom: INTERCOM_ADMIN_ID {admin_id} is teammate {admin.get('name') or '?'}"
        f"{owner_note}",
    )


def _intercom_problem(exc: IntercomError, settings: Settings) -> str:
    if exc.status == 401:
        return f"the token was refused ({exc}) - check INTERCOM_ACCESS_TOKEN"
    if exc.status == 403:
        return f"the token may not read the workspace ({exc}) - check INTERCOM_ACCESS_TOKEN"
    if exc.status is None:
        return f"cannot reach {settings.intercom_api_base}: {exc} - check INTERCOM_API_BASE"
    if exc.status == 400:
        return f"{exc} - check INTERCOM_API_VERSION and INTERCOM_API_BASE"
    return f"{exc} - check INTERCOM_API_BASE, or try again later"


def _admin_listing(client: IntercomClient) -> str:
    from .adapters.intercom import IntercomError

    try:
        admins = client.list_admins()
    except IntercomError as exc:
        return f"GET /admins failed too: {exc}"
    shown = [f"{a.get('id')} {a.get('name') or '?'}" for a in admins[:MAX_LISTED]]
    more = f", and {len(admins) - MAX_LISTED} more" if len(admins) > MAX_LISTED else ""
    return f"GET /admins lists: {', '.join(shown) or 'nobody'}{more}"


# --------------------------------------------------------------------------- model


def _gpt_trainer(settings: Settings) -> Iterator[Result]:
    """Reads the chatbot's own description: no session is made, no message is sent."""
    if settings.responder != "gpt-trainer":
        return
    from .adapters.gpt_trainer import GPTTrainerError
    from .bootstrap import build_gpt_trainer

    try:
        chatbot = build_gpt_trainer(settings).chatbot()
    except GPTTrainerError as exc:
        yield Result(FAIL, str(exc))
        return
    name = chatbot.get("name") or "?"
    yield Result(
        OK,
        f"GPT Trainer: chatbot {settings.gpt_trainer_chatbot_uuid} ({name}) at "
        f"{settings.gpt_trainer_api_url}; answering a message is not tried (it would go into "
        "a session)",
    )


def _model(settings: Settings) -> Iterator[Result]:
    if settings.responder == "gpt-trainer" and not settings.openai_api_key:
        yield Result(
            SKIP,
            "model: not configured (GPT Trainer's answers get GPT_TRAINER_CONFIDENCE "
            f"{settings.gpt_trainer_confidence:g}; set OPENAI_API_KEY to have them graded)",
        )
        return
    import openai

    model = settings.openai_model
    where = settings.openai_base_url or "the OpenAI API"
    client = openai.OpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout,
        max_retries=0,
    )
    try:
        try:
            listed: list[str] | None = [entry.id for entry in client.models.list()]
            unlisted = ""
        except (
            openai.AuthenticationError,
            openai.PermissionDeniedError,
            openai.APIConnectionError,  # a timeout too: the completion would wait as long
        ) as exc:
            yield Result(FAIL, f"model: {_model_problem(exc, settings)}")
            return
        except openai.OpenAIError as exc:  # 404, 405, ...: the server has no model list
            listed, unlisted = None, _openai_error(exc)
        if listed is not None:
            if model in listed:
                yield Result(OK, f"model {model} at {where} (listed by GET /models)")
            else:
                offered = ", ".join(sorted(listed)[:MAX_LISTED]) or "none"
                more = f", and {len(listed) - MAX_LISTED} more" if len(listed) > MAX_LISTED else ""
                yield Result(
                    FAIL,
                    f"model: {model} is not among the models {where} offers "
                    f"(GET /models lists: {offered}{more}) - check OPENAI_MODEL",
                )
            return
        try:
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "ping"}], max_tokens=1
            )
        except openai.OpenAIError as exc:
            yield Result(FAIL, f"model: {_model_problem(exc, settings)}")
            return
        yield Result(
            OK,
            f"model {model} at {where} (a 1-token completion worked; "
            f"GET /models is not available: {unlisted})",
        )
    finally:
        client.close()


def _model_problem(exc: Exception, settings: Settings) -> str:
    import openai

    described = _openai_error(exc)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return f"{described} - check OPENAI_API_KEY"
    if isinstance(exc, openai.APIConnectionError):
        where = settings.openai_base_url or "the OpenAI API"
        return f"cannot reach {where}: {described} - check OPENAI_BASE_URL (or OPENAI_TIMEOUT)"
    if isinstance(exc, openai.NotFoundError) or getattr(exc, "code", None) == "model_not_found":
        return f"{described} - check OPENAI_MODEL (and OPENAI_BASE_URL)"
    if isinstance(exc, openai.RateLimitError):
        return f"{described} - check the account's quota, or try again later"
    return f"{described} - check OPENAI_MODEL and OPENAI_BASE_URL"


def _openai_error(exc: Exception) -> str:
    """`AuthenticationError (HTTP 401 invalid_api_key: Incorrect API key ...)`."""
    import openai

    name = type(exc).__name__
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        message = body.get("message") if isinstance(body, Mapping) else None
        code = f" {exc.code}" if exc.code else ""
        return f"{name} (HTTP {exc.status_code}{code}: {one_line(message or exc.message, 300)})"
    return f"{name} ({one_line(exc, 300)})"


# --------------------------------------------------------------------------- answer memory


def _memory(settings: Settings) -> Iterator[Result]:
    if settings.memory_top_k == 0:
        yield Result(SKIP, "answer memory: off (MEMORY_TOP_K=0)")
        return
    from .adapters.memory import AnswerMemoryError, MemoryInUseError

    platform = bool(settings.mem0_api_key)
    if platform:
        where = f"Mem0 platform, {settings.mem0_host or 'the default host'}"
        fix = "check MEM0_API_KEY and MEM0_HOST"
    else:
        where = f"local, {settings.data_dir}"
        fix = (
            "check DATA_DIR, and OPENAI_BASE_URL / EMBEDDING_MODEL (the local memory embeds "
            "through the model server)"
        )
    try:
        memory = open_answer_memory(settings)
        try:
            memory.search("ping", limit=1, min_score=0)
        finally:
            memory.close()
    except MemoryInUseError:
        # The running daemon holds the embedded Qdrant: nothing is wrong with it.
        yield Result(
            SKIP,
            f"answer memory ({where}): in use by another process (the daemon?), not "
            "checked; embedded Qdrant allows one process per DATA_DIR",
        )
        return
    except AnswerMemoryError as exc:
        yield Result(FAIL, f"answer memory: {exc} - {fix}")  # names the backend and place
        return
    yield Result(OK, f"answer memory ({where})")


# --------------------------------------------------------------------------- state database


def _state_database(settings: Settings) -> Iterator[Result]:
    """With STATE_BACKEND=postgres the state is a service like the others (the state file
    is not: it is checked by opening it at the start)."""
    if settings.state_backend != "postgres" or not settings.database_url:
        return  # (postgres without DATABASE_URL is a configuration error already)
    from .adapters.pg_store import SCHEMA_VERSION, StateDatabaseError, inspect_database, shown_url

    where = f"state database {shown_url(settings.database_url)}"
    try:
        status = inspect_database(settings.database_url)
    except StateDatabaseError as exc:
        yield Result(FAIL, f"state database: {exc}")
        return
    if status.schema is None:
        yield Result(OK, f"{where}: empty, the first start creates the tables")
    elif status.schema > SCHEMA_VERSION:
        yield Result(
            FAIL,
            f"{where}: set up by a newer intercom-responder (schema {status.schema}, this "
            f"one knows {SCHEMA_VERSION}) - upgrade this daemon",
        )
    else:
        running = (
            f"{status.replicas} replica(s) running"
            + (f", the poll led by {status.leader}" if status.leader else "")
            if status.replicas
            else "no replica running"
        )
        migrate = " (the next start migrates it)" if status.schema < SCHEMA_VERSION else ""
        yield Result(OK, f"{where}: schema {status.schema}{migrate}, {running}")


# --------------------------------------------------------------------------- Slack


def _slack(settings: Settings) -> Iterator[Result]:
    if not settings.slack_enabled:
        yield Result(SKIP, "Slack review: not configured (reviews become internal notes)")
        return
    from slack_sdk import WebClient

    bot = WebClient(
        token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=int(SLACK_TIMEOUT)
    )
    yield _slack_bot(bot, settings)
    yield _slack_app(
        WebClient(base_url=settings.slack_api_url, timeout=int(SLACK_TIMEOUT)), settings
    )


def _slack_bot(bot: Any, settings: Settings) -> Result:
    from slack_sdk.errors import SlackApiError

    try:
        auth = bot.auth_test()
    except SlackApiError as exc:
        return Result(FAIL, f"Slack: {slack_error(exc)} - check SLACK_BOT_TOKEN")
    except OSError as exc:  # URLError, timeouts
        return Result(FAIL, f"Slack: {_slack_unreachable(exc, settings)}")
    name, team = auth.get("user") or "?", auth.get("team") or "?"
    who = f"bot @{name} in workspace {team}"
    scopes = _scopes(auth.headers)
    if scopes is not None and "chat:write" not in scopes:
        return Result(
            FAIL,
            f"Slack: {who} lacks the chat:write scope - add it under OAuth & Permissions, "
            "reinstall the app and update SLACK_BOT_TOKEN",
        )
    channel_id = settings.slack_channel_id
    try:
        info = bot.conversations_info(channel=channel_id)
    except SlackApiError as exc:
        error = slack_error(exc)
        if error.startswith("missing_scope"):
            return Result(
                OK,
                f"Slack: {who}; channel {channel_id} not verified (conversations.info needs "
                "channels:read, which the daemon itself does not need)",
            )
        if error.startswith("channel_not_found"):
            return Result(
                FAIL,
                f"Slack: {who}, but channel {channel_id} is not found (a private channel must "
                "have the bot invited) - check SLACK_CHANNEL_ID",
            )
        return Result(
            FAIL, f"Slack: {who}, but conversations.info: {error} - check SLACK_CHANNEL_ID"
        )
    except OSError as exc:  # URLError, timeouts
        return Result(FAIL, f"Slack: {_slack_unreachable(exc, settings)}")
    channel = _mapping(info.get("channel"))
    label = f"#{channel.get('name')}" if channel.get("name") else channel_id
    if channel.get("is_archived"):
        return Result(
            FAIL, f"Slack: {who}, but channel {label} is archived - check SLACK_CHANNEL_ID"
        )
    if channel.get("is_member"):
        return Result(OK, f"Slack: {who}, channel {label} (bot is a member)")
    if not channel.get("is_private") and scopes is not None and "chat:write.public" in scopes:
        return Result(
            OK,
            f"Slack: {who}, channel {label} (bot is not a member; chat:write.public lets it post)",
        )
    return Result(
        FAIL,
        f"Slack: {who}, but the bot is not a member of channel {label} - invite it "
        f"(/invite @{name} in the channel) or add the chat:write.public scope",
    )


def _slack_app(app: Any, settings: Settings) -> Result:
    from slack_sdk.errors import SlackApiError

    try:
        # A Socket Mode URL is issued; no socket is opened.
        app.apps_connections_open(app_token=settings.slack_app_token)
    except SlackApiError as exc:
        return Result(
            FAIL,
            f"Slack Socket Mode: {slack_error(exc)} - check SLACK_APP_TOKEN (an xapp- token "
            "with connections:write, and Socket Mode enabled for the app)",
        )
    except OSError as exc:  # URLError, timeouts
        return Result(FAIL, f"Slack Socket Mode: {_slack_unreachable(exc, settings)}")
    return Result(OK, "Slack Socket Mode: app-level token works (apps.connections.open)")


def _slack_unreachable(exc: Exception, settings: Settings) -> str:
    return f"cannot reach {settings.slack_api_url} ({describe(exc)}) - check SLACK_API_URL"


def _scopes(headers: Mapping[str, Any] | None) -> set[str] | None:
    """The bot token's scopes from `X-OAuth-Scopes`, or None when the answer has none."""
    for key, value in (headers or {}).items():
        if key.lower() == "x-oauth-scopes" and isinstance(value, str):
            return {scope.strip() for scope in value.split(",") if scope.strip()}
    return None


# --------------------------------------------------------------------------- helpers


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --------------------------------------------------------------------------- routing


def _routing(settings: Settings) -> Iterator[Result]:
    """The teams routing chooses from, the routing file's names, and the ticket search."""
    from .adapters.intercom import IntercomError
    from .core.routing import describe_teams
    from .core.tickets import unassigned_tickets_query

    if not (settings.routing or settings.route_tickets):
        return
    client = build_intercom(settings)
    try:
        workspace = [(str(t.get("id")), str(t.get("name") or "")) for t in client.list_teams()]
    except IntercomError as exc:
        yield Result(FAIL, f"routing: GET /teams failed: {_intercom_problem(exc, settings)}")
        return
    teams, unmatched = describe_teams(workspace, settings.routing_notes)
    if not teams:
        yield Result(
            FAIL,
            "routing: the workspace has no teams - create them in Intercom, or turn off "
            "ROUTING and ROUTE_TICKETS (every route would fall back to HANDOFF_TEAM_ID)",
        )
    else:
        names = ", ".join(t.name for t in teams[:MAX_LISTED])
        more = f", and {len(teams) - MAX_LISTED} more" if len(teams) > MAX_LISTED else ""
        described = sum(1 for t in teams if t.description or t.examples)
        yield Result(
            OK,
            f"routing: {len(teams)} team(s) to choose from ({names}{more}); "
            f"{described} described by ROUTING_FILE",
        )
    if unmatched:
        yield Result(
            FAIL,
            f"routing: ROUTING_FILE describes team(s) this workspace does not have: "
            f"{', '.join(unmatched)} - fix the names (GET /teams has them)",
        )
    if settings.route_tickets:
        try:
            next(iter(client.search_tickets(unassigned_tickets_query(0), per_page=1)), None)
        except IntercomError as exc:
            yield Result(FAIL, f"routing: POST /tickets/search failed: {exc} - check the token")
            return
        yield Result(OK, "routing: the token can search tickets (ROUTE_TICKETS)")
