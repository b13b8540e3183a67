"""Settings from the environment, validated once at start.

Every problem is reported as one line naming the variable, before any network call,
so a typo in `.env` never turns into a half-started daemon.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from . import defaults as d
from .core.business_hours import BusinessHours, parse_business_hours
from .core.language import parse_languages
from .core.policy import parse_keywords
from .core.routing import RoutingFileError, TeamNotes, parse_routing_file

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting is missing or invalid; `str()` is the one line shown to the user."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


@dataclass(frozen=True)
class Settings:
    intercom_access_token: str
    intercom_admin_id: str
    intercom_api_base: str = d.INTERCOM_API_BASE
    intercom_api_version: str = d.INTERCOM_API_VERSION
    intercom_timeout: float = d.INTERCOM_TIMEOUT
    responder: str = d.RESPONDER
    openai_api_key: str = ""
    openai_base_url: str | None = None
    openai_model: str = d.OPENAI_MODEL
    openai_timeout: float = d.OPENAI_TIMEOUT
    openai_max_retries: int = d.OPENAI_MAX_RETRIES
    gpt_trainer_api_key: str | None = None
    gpt_trainer_chatbot_uuid: str | None = None
    gpt_trainer_api_url: str = d.GPT_TRAINER_API_URL
    gpt_trainer_timeout: float = d.GPT_TRAINER_TIMEOUT
    gpt_trainer_confidence: float = d.GPT_TRAINER_CONFIDENCE
    confidence_threshold: float = d.CONFIDENCE_THRESHOLD
    confidence_threshold_away: float | None = None  # outside BUSINESS_HOURS; None: the same
    business_hours: BusinessHours | None = None  # BUSINESS_HOURS in TIMEZONE; None: always open
    away_message: str = d.AWAY_MESSAGE
    vision: bool = False  # VISION: the customers' images go to the model
    state_backend: str = "file"  # STATE_BACKEND: file (STATE_FILE) or postgres (DATABASE_URL)
    database_url: str | None = None
    lease_seconds: float = d.LEASE_SECONDS  # LEASE_SECONDS: a dead replica's claims end after it
    max_image_mb: float = d.MAX_IMAGE_MB
    reply_languages: tuple[str, ...] = ()  # REPLY_LANGUAGES; empty: any language
    poll_interval: float = d.POLL_INTERVAL
    poll_interval_min: float = d.POLL_INTERVAL_MIN
    poll_interval_max: float = d.POLL_INTERVAL_MAX
    health_addr: str = d.HEALTH_ADDR
    webhook_addr: str = ""
    intercom_client_secret: str | None = None
    sweep_interval: float = d.SWEEP_INTERVAL
    playground_token: str | None = None
    debounce_seconds: float = d.DEBOUNCE_SECONDS
    concurrency: int = d.CONCURRENCY
    state_file: Path = Path(d.STATE_FILE)
    data_dir: Path = Path(d.DATA_DIR)
    max_message_age_hours: float = d.MAX_MESSAGE_AGE_HOURS
    skip_assigned_to_others: bool = d.SKIP_ASSIGNED_TO_OTHERS
    session_ttl_hours: float = d.SESSION_TTL_HOURS
    max_attempts: int = d.MAX_ATTEMPTS
    escalation_keywords: tuple[str, ...] = d.ESCALATION_KEYWORDS
    max_ai_replies_per_hour: int = d.MAX_AI_REPLIES_PER_HOUR
    handoff_team_id: str | None = None
    handoff_admin_id: str | None = None
    routing: bool = False
    routing_file: Path | None = None
    routing_notes: Mapping[str, TeamNotes] = field(default_factory=dict)  # ROUTING_FILE's
    routing_min_confidence: float = d.ROUTING_MIN_CONFIDENCE
    route_tickets: bool = False  # ROUTE_TICKETS: new tickets no team holds, too
    mem0_api_key: str | None = None
    mem0_host: str | None = None
    memory_top_k: int = d.MEMORY_TOP_K
    memory_min_score: float = d.MEMORY_MIN_SCORE
    # article and document pieces per draft (the memory itself is off with MEMORY_TOP_K=0)
    knowledge_top_k: int = d.KNOWLEDGE_TOP_K
    knowledge_min_score: float = d.KNOWLEDGE_MIN_SCORE
    cite_sources: bool = True  # CITE_SOURCES: a reply ends with the link of an article it used
    articles_sync_hours: float = d.ARTICLES_SYNC_HOURS  # 0: the daemon never imports articles
    memory_timeout: float = d.MEMORY_TIMEOUT
    embedding_model: str = d.EMBEDDING_MODEL
    embedding_dims: int = d.EMBEDDING_DIMS
    slack_bot_token: str | None = None
    slack_app_token: str | None = None
    slack_channel_id: str | None = None
    slack_api_url: str = d.SLACK_API_URL
    slack_approver_ids: tuple[str, ...] = ()
    review_timeout_minutes: float = d.REVIEW_TIMEOUT_MINUTES
    intercom_workspace_id: str | None = None
    log_level: str = d.LOG_LEVEL
    log_format: str = d.LOG_FORMAT

    @property
    def session_ttl_seconds(self) -> float:
        return self.session_ttl_hours * 3600

    @property
    def max_message_age_seconds(self) -> float:
        return self.max_message_age_hours * 3600

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and self.slack_app_token and self.slack_channel_id)

    def secrets(self) -> list[str]:
        """Values that must never reach a log line."""
        values = (
            self.intercom_access_token,
            self.openai_api_key,
            self.gpt_trainer_api_key,
            self.mem0_api_key,
            self.intercom_client_secret,
            self.slack_bot_token,
            self.slack_app_token,
            self.playground_token,
            urlparse(self.database_url).password if self.database_url else None,
        )
        return [s for s in values if s]


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
RESPONDERS = ("openai", "gpt-trainer")


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    need_intercom: bool = True,
    need_responder: bool = True,
) -> Settings:
    """Build `Settings` from `env` (default: the process environment).

    Raises `ConfigError` for the first problem found, in the order of the README table.
    Commands that never talk to Intercom (`ask`, `memory`) pass `need_intercom=False`;
    those that draft no answer (`memory`, `sync`, `dlq`) pass `need_responder=False`.
    """
    env = os.environ if env is None else env
    reader = _Reader(env)
    responder = reader.get("RESPONDER", d.RESPONDER, _choice(RESPONDERS))
    gpt_trainer = need_responder and responder == "gpt-trainer"
    settings = Settings(
        intercom_access_token=reader.get(
            "INTERCOM_ACCESS_TOKEN", "", _nonempty, required=need_intercom
        ),
        intercom_admin_id=reader.get("INTERCOM_ADMIN_ID", "", _admin_id, required=need_intercom),
        intercom_api_base=reader.get("INTERCOM_API_BASE", d.INTERCOM_API_BASE, _url).rstrip("/"),
        intercom_api_version=reader.get("INTERCOM_API_VERSION", d.INTERCOM_API_VERSION, _nonempty),
        intercom_timeout=reader.get("INTERCOM_TIMEOUT", d.INTERCOM_TIMEOUT, _number(0.1, 600)),
        responder=responder,
        openai_api_key=reader.get(
            "OPENAI_API_KEY", "", _nonempty, required=need_responder and responder == "openai"
        ),
        openai_base_url=reader.get("OPENAI_BASE_URL", None, _url),
        openai_model=reader.get("OPENAI_MODEL", d.OPENAI_MODEL, _nonempty),
        openai_timeout=reader.get("OPENAI_TIMEOUT", d.OPENAI_TIMEOUT, _number(0.1, 3600)),
        openai_max_retries=reader.get("OPENAI_MAX_RETRIES", d.OPENAI_MAX_RETRIES, _integer(0, 10)),
        gpt_trainer_api_key=reader.get(
            "GPT_TRAINER_API_KEY", None, _nonempty, required=gpt_trainer
        ),
        gpt_trainer_chatbot_uuid=reader.get(
            "GPT_TRAINER_CHATBOT_UUID", None, _chatbot_uuid, required=gpt_trainer
        ),
        gpt_trainer_api_url=reader.get("GPT_TRAINER_API_URL", d.GPT_TRAINER_API_URL, _url).rstrip(
            "/"
        ),
        gpt_trainer_timeout=reader.get(
            "GPT_TRAINER_TIMEOUT", d.GPT_TRAINER_TIMEOUT, _number(0.1, 3600)
        ),
        gpt_trainer_confidence=reader.get(
            "GPT_TRAINER_CONFIDENCE", d.GPT_TRAINER_CONFIDENCE, _number(0, 1)
        ),
        confidence_threshold_away=reader.get("CONFIDENCE_THRESHOLD_AWAY", None, _number(0, 1)),
        business_hours=_business_hours(reader),
        away_message=reader.get("AWAY_MESSAGE", d.AWAY_MESSAGE, _nonempty),
        vision=reader.get("VISION", False, _boolean),
        state_backend=reader.get("STATE_BACKEND", "file", _choice(("file", "postgres"))),
        database_url=reader.get("DATABASE_URL", None, _database_url),
        lease_seconds=reader.get("LEASE_SECONDS", d.LEASE_SECONDS, _number(1, 3600)),
        max_image_mb=reader.get("MAX_IMAGE_MB", d.MAX_IMAGE_MB, _number(0.01, 50)),
        reply_languages=reader.get("REPLY_LANGUAGES", (), parse_languages),
        confidence_threshold=reader.get(
            "CONFIDENCE_THRESHOLD", d.CONFIDENCE_THRESHOLD, _number(0, 1)
        ),
        poll_interval=reader.get("POLL_INTERVAL", d.POLL_INTERVAL, _number(1, 86400)),
        poll_interval_min=reader.get("POLL_INTERVAL_MIN", d.POLL_INTERVAL_MIN, _number(1, 86400)),
        poll_interval_max=reader.get("POLL_INTERVAL_MAX", d.POLL_INTERVAL_MAX, _number(1, 86400)),
        health_addr=reader.get("HEALTH_ADDR", d.HEALTH_ADDR, _address, allow_empty=True),
        webhook_addr=reader.get("WEBHOOK_ADDR", "", _address),
        intercom_client_secret=reader.get("INTERCOM_CLIENT_SECRET", None, _nonempty),
        sweep_interval=reader.get("SWEEP_INTERVAL", d.SWEEP_INTERVAL, _sweep_interval),
        playground_token=reader.get("PLAYGROUND_TOKEN", None, _nonempty),
        debounce_seconds=reader.get("DEBOUNCE_SECONDS", d.DEBOUNCE_SECONDS, _number(0, 3600)),
        concurrency=reader.get("CONCURRENCY", d.CONCURRENCY, _integer(1, 64)),
        state_file=reader.get("STATE_FILE", Path(d.STATE_FILE), _path),
        data_dir=reader.get("DATA_DIR", Path(d.DATA_DIR), _path),
        max_message_age_hours=reader.get(
            "MAX_MESSAGE_AGE_HOURS", d.MAX_MESSAGE_AGE_HOURS, _number(0.01, 24 * 365)
        ),
        skip_assigned_to_others=reader.get(
            "SKIP_ASSIGNED_TO_OTHERS", d.SKIP_ASSIGNED_TO_OTHERS, _boolean
        ),
        session_ttl_hours=reader.get(
            "SESSION_TTL_HOURS", d.SESSION_TTL_HOURS, _number(0.01, 24 * 365)
        ),
        max_attempts=reader.get("MAX_ATTEMPTS", d.MAX_ATTEMPTS, _integer(1, 100)),
        escalation_keywords=reader.get("ESCALATION_KEYWORDS", d.ESCALATION_KEYWORDS, _keywords),
        max_ai_replies_per_hour=reader.get(
            "MAX_AI_REPLIES_PER_HOUR", d.MAX_AI_REPLIES_PER_HOUR, _integer(0, 1000)
        ),
        handoff_team_id=reader.get("HANDOFF_TEAM_ID", None, _numeric_id),
        handoff_admin_id=reader.get("HANDOFF_ADMIN_ID", None, _numeric_id),
        routing=reader.get("ROUTING", False, _boolean),
        routing_file=reader.get("ROUTING_FILE", None, _readable_file),
        routing_min_confidence=reader.get(
            "ROUTING_MIN_CONFIDENCE", d.ROUTING_MIN_CONFIDENCE, _number(0, 1)
        ),
        route_tickets=reader.get("ROUTE_TICKETS", False, _boolean),
        mem0_api_key=reader.get("MEM0_API_KEY", None, _nonempty),
        mem0_host=reader.get("MEM0_HOST", None, _url),
        memory_top_k=reader.get("MEMORY_TOP_K", d.MEMORY_TOP_K, _integer(0, 50)),
        memory_min_score=reader.get("MEMORY_MIN_SCORE", d.MEMORY_MIN_SCORE, _number(0, 1)),
        knowledge_top_k=reader.get("KNOWLEDGE_TOP_K", d.KNOWLEDGE_TOP_K, _integer(0, 20)),
        knowledge_min_score=reader.get("KNOWLEDGE_MIN_SCORE", d.KNOWLEDGE_MIN_SCORE, _number(0, 1)),
        cite_sources=reader.get("CITE_SOURCES", True, _boolean),
        articles_sync_hours=reader.get(
            "ARTICLES_SYNC_HOURS", d.ARTICLES_SYNC_HOURS, _number(0, 24 * 365)
        ),
        memory_timeout=reader.get("MEMORY_TIMEOUT", d.MEMORY_TIMEOUT, _number(0.1, 600)),
        embedding_model=reader.get("EMBEDDING_MODEL", d.EMBEDDING_MODEL, _nonempty),
        embedding_dims=reader.get("EMBEDDING_DIMS", d.EMBEDDING_DIMS, _integer(1, 65536)),
        slack_bot_token=reader.get("SLACK_BOT_TOKEN", None, _prefixed("xoxb-")),
        slack_app_token=reader.get("SLACK_APP_TOKEN", None, _prefixed("xapp-")),
        slack_channel_id=reader.get("SLACK_CHANNEL_ID", None, _slack_id),
        slack_api_url=_with_slash(reader.get("SLACK_API_URL", d.SLACK_API_URL, _url)),
        slack_approver_ids=reader.get("SLACK_APPROVER_IDS", (), _slack_ids),
        review_timeout_minutes=reader.get(
            "REVIEW_TIMEOUT_MINUTES", d.REVIEW_TIMEOUT_MINUTES, _number(1, 7 * 24 * 60)
        ),
        intercom_workspace_id=reader.get("INTERCOM_WORKSPACE_ID", None, _nonempty),
        log_level=reader.get("LOG_LEVEL", d.LOG_LEVEL, _choice(LOG_LEVELS, upper=True)),
        log_format=reader.get("LOG_FORMAT", d.LOG_FORMAT, _choice(("text", "json"))),
    )
    _check_slack_complete(settings)
    if settings.state_backend == "postgres" and not settings.database_url:
        raise ConfigError("DATABASE_URL", "is required with STATE_BACKEND=postgres")
    _check_webhook_complete(settings)
    settings = _read_routing_file(settings)
    if need_responder:
        _check_memory_can_embed(settings)
    return _resolve_intervals(settings, reader)


def _resolve_intervals(settings: Settings, reader: _Reader) -> Settings:
    """Fit the start interval and its bounds together; only what the user set is kept as is.

    A bound left unset widens to take in POLL_INTERVAL (and the other bound), so
    `POLL_INTERVAL=5` alone means a minimum of 5. An unset POLL_INTERVAL starts at the
    default clamped into the bounds that were set. Values set explicitly that contradict
    each other stay an error naming both variables.
    """
    interval = settings.poll_interval
    low, high = settings.poll_interval_min, settings.poll_interval_max
    interval_set = reader.is_set("POLL_INTERVAL")
    low_set, high_set = reader.is_set("POLL_INTERVAL_MIN"), reader.is_set("POLL_INTERVAL_MAX")
    if low_set and high_set and low > high:
        raise ConfigError(
            "POLL_INTERVAL_MIN", f"must not be above POLL_INTERVAL_MAX ({high:g}) (got {low:g})"
        )
    if not interval_set:
        if low_set:
            interval = max(interval, low)
        if high_set:
            interval = min(interval, high)
    if not low_set:
        low = min(low, interval)
    if not high_set:
        high = max(high, interval)
    if not low <= interval <= high:  # only when POLL_INTERVAL and a bound were both set
        raise ConfigError(
            "POLL_INTERVAL",
            f"must be between POLL_INTERVAL_MIN ({low:g}) and "
            f"POLL_INTERVAL_MAX ({high:g}) (got {interval:g})",
        )
    return replace(settings, poll_interval=interval, poll_interval_min=low, poll_interval_max=high)


def _check_memory_can_embed(settings: Settings) -> None:
    """The local memory embeds through the OpenAI-compatible server: GPT Trainer cannot."""
    if settings.memory_top_k > 0 and not settings.mem0_api_key and not settings.openai_api_key:
        raise ConfigError(
            "OPENAI_API_KEY",
            "is required for the local answer memory (embeddings) with RESPONDER="
            f"{settings.responder}; or set MEM0_API_KEY for the Mem0 platform, or "
            "MEMORY_TOP_K=0 to draft without it",
        )


def _read_routing_file(settings: Settings) -> Settings:
    """Read once, at start: a routing file with a typo must stop the start, not route
    everything by name."""
    wanted = [("ROUTING", settings.routing), ("ROUTE_TICKETS", settings.route_tickets)]
    for name, on in wanted:
        if on and not settings.openai_api_key:
            raise ConfigError("OPENAI_API_KEY", f"is required for {name} (the model picks a team)")
    path = settings.routing_file
    if path is None:
        return settings
    try:
        notes = parse_routing_file(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("ROUTING_FILE", f"{path}: cannot be read ({exc})") from None
    except RoutingFileError as exc:
        raise ConfigError("ROUTING_FILE", f"{path}: {exc}") from None
    return replace(settings, routing_notes=notes)


def _check_webhook_complete(settings: Settings) -> None:
    """A receiver that cannot check signatures would act on anyone's requests."""
    if settings.webhook_addr and not settings.intercom_client_secret:
        raise ConfigError(
            "INTERCOM_CLIENT_SECRET",
            "is required because WEBHOOK_ADDR is set: it checks that notifications come "
            "from Intercom (Developer Hub -> your app -> Basic information -> Client secret)",
        )


def _check_slack_complete(settings: Settings) -> None:
    """Two of three Slack settings is a typo, not a choice: say which one is missing."""
    values = {
        "SLACK_BOT_TOKEN": settings.slack_bot_token,
        "SLACK_APP_TOKEN": settings.slack_app_token,
        "SLACK_CHANNEL_ID": settings.slack_channel_id,
    }
    given = [name for name, value in values.items() if value]
    if given and len(given) < len(values):
        missing = next(name for name, value in values.items() if not value)
        raise ConfigError(
            missing,
            f"is required for Slack review because {', '.join(given)} is set "
            "(set all three, or none for internal notes)",
        )


def _database_url(raw: str) -> str:
    if not raw.startswith(("postgresql://", "postgres://")):
        raise ValueError("must be a postgresql:// URL")
    return raw


def _business_hours(reader: _Reader) -> BusinessHours | None:
    """BUSINESS_HOURS in TIMEZONE; both are checked even when the other is unset."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = reader.get("TIMEZONE", d.TIMEZONE, _nonempty)
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "TIMEZONE", f"unknown time zone {name!r} (an IANA name like Europe/Berlin)"
        ) from None
    windows = reader.get("BUSINESS_HOURS", None, parse_business_hours)
    return BusinessHours(windows, zone) if windows else None


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def is_set(self, name: str) -> bool:
        """Whether the user gave `name` a value; empty or blank counts as unset."""
        return bool(self._env.get(name, "").strip())

    def get(
        self,
        name: str,
        default: T,
        parse: Callable[[str], T],
        *,
        required: bool = False,
        allow_empty: bool = False,
    ) -> T:
        raw = self._env.get(name, "").strip()
        if allow_empty and name in self._env and not raw:
            return parse(raw)
        if not raw:
            if required:
                raise ConfigError(name, "is required but not set")
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            raise ConfigError(name, f"{exc} (got {_shown(name, raw)})") from None


def _shown(name: str, raw: str) -> str:
    """Echo a bad value back, unless the variable may hold a secret."""
    if any(word in name for word in ("TOKEN", "KEY", "SECRET", "DATABASE_URL")):
        return "a hidden value"
    return repr(raw if len(raw) <= 80 else raw[:77] + "...")


def _nonempty(raw: str) -> str:
    return raw


def _admin_id(raw: str) -> str:
    if not raw.isdigit():
        raise ValueError("must be the numeric id of an Intercom teammate (see GET /me)")
    return raw


def _address(raw: str) -> str:
    """HOST:PORT for the health server; empty switches it off."""
    if not raw:
        return ""
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError("must be HOST:PORT such as 127.0.0.1:8000, or empty to switch it off")
    return raw


def _sweep_interval(raw: str) -> float:
    """Seconds between sweeps; 0 switches them off."""
    value = _number(0, 86400)(raw)
    if 0 < value < 60:
        raise ValueError("must be 0 (off) or at least 60 seconds")
    return value


def _readable_file(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError("must be the path of a readable file")
    return path


def _chatbot_uuid(raw: str) -> str:
    if not all(c.isalnum() or c in "-_" for c in raw) or len(raw) > 64:
        raise ValueError("must be the chatbot's uuid (GPT Trainer -> your chatbot -> API)")
    return raw


def _numeric_id(raw: str) -> str:
    if not raw.isdigit():
        raise ValueError("must be a numeric Intercom id")
    return raw


def _keywords(raw: str) -> tuple[str, ...]:
    keywords = parse_keywords(raw)
    if not keywords:
        raise ValueError("must be a comma separated list of words or phrases")
    return keywords


def _prefixed(prefix: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if not raw.startswith(prefix):
            raise ValueError(f"must start with {prefix}")
        return raw

    return parse


def _slack_id(raw: str) -> str:
    if not raw.isalnum() or not raw.isupper():
        raise ValueError("must be a Slack id such as C0123ABCD")
    return raw


def _slack_ids(raw: str) -> tuple[str, ...]:
    ids = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    for user_id in ids:
        _slack_id(user_id)
    return ids


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _url(raw: str) -> str:
    parsed = urlparse(raw)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return raw


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _number(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
        if value != value or not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return value

    return parse


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.upper() if upper else raw.lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse
