"""Command line and wiring: the one place where the parts are put together.

Heavy modules are imported after the arguments are parsed, so `--help` answers at once.
Exit codes: 0 done, 1 a poll cycle failed, 2 configuration error, 3 state file unusable.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from types import FrameType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from pathlib import Path

    from .adapters.breaker import CircuitBreaker
    from .adapters.health import Health, HealthServer
    from .adapters.intercom import IntercomClient
    from .adapters.memory import AnswerMemory
    from .adapters.metrics import Metrics
    from .adapters.recall import Recall
    from .adapters.responder import Responder
    from .adapters.store import StateStore
    from .config import Settings
    from .core.triage import Rules
    from .flow.pipeline import Outcome, Pipeline, PipelineSettings
    from .flow.poller import Poller
    from .flow.review_desk import ReviewDesk

EXIT_OK = 0
EXIT_CYCLE_FAILED = 1
EXIT_CONFIG = 2
EXIT_STATE = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python main.py",
        description=(
            "Answer Intercom customer conversations with an LLM; drafts below the "
            "confidence threshold go to the team as internal notes. Settings come from "
            "the environment and from .env (see .env.example). Without a command, "
            "run the daemon."
        ),
        epilog="Exit codes: 0 ok, 1 poll cycle or command failed, 2 configuration error, "
        "3 state file locked or unreadable.",
    )
    parser.add_argument(
        "--once", action="store_true", help="run one poll cycle and exit (0 when it completed)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="write nothing to Intercom and leave the state file alone; print what would be done",
    )
    parser.add_argument(
        "--env-file",
        default=".env",
        metavar="PATH",
        help="read settings from this file too (default: .env; the environment wins)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    ask = commands.add_parser(
        "ask",
        help="draft an answer to a question as the daemon would; sends nothing",
        description="Draft an answer with the daemon's prompt, memory and policy, and print "
        "the draft, confidence, reasoning, memory hits and decision. Sends nothing anywhere.",
    )
    ask.add_argument("question", help="the customer's message")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    memory = commands.add_parser(
        "memory", help="seed and inspect the catalogue of verified answers"
    )
    memory_commands = memory.add_subparsers(dest="memory_command", metavar="ACTION", required=True)
    add = memory_commands.add_parser("add", help="add a verified question and answer")
    add.add_argument("question")
    add.add_argument("answer")
    listing = memory_commands.add_parser("list", help="list the catalogue")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    search = memory_commands.add_parser("search", help="search the catalogue like the daemon")
    search.add_argument("text")
    search.add_argument("--limit", type=int, default=None, help="at most this many hits")
    search.add_argument(
        "--min-score", type=float, default=None, help="lowest score shown (MEMORY_MIN_SCORE)"
    )
    sync = commands.add_parser(
        "sync",
        help="teach the answer memory from past conversations",
        description="Walk past conversations (open and closed) and add every customer "
        "question a teammate answered to the catalogue. Safe to run twice; after Ctrl-C or "
        "a crash, run it again to continue.",
    )
    sync.add_argument(
        "--since", type=_date, metavar="YYYY-MM-DD", help="only conversations updated since"
    )
    sync.add_argument("--limit", type=int, metavar="N", help="at most N conversations")
    sync.add_argument(
        "--dry-run",
        dest="sync_dry_run",
        action="store_true",
        help="show the pairs that would be added; write nothing",
    )
    check = commands.add_parser(
        "check",
        help="check the configuration and reach every configured service once",
        description="Validate the settings and reach Intercom, the model, the answer memory "
        "and Slack once each; one line per check. Sends no message. Exit 0 when all pass.",
    )
    dlq = commands.add_parser("dlq", help="list dead letters, or put them back in the queue")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", metavar="ACTION")
    retry = dlq_commands.add_parser("retry", help="try dead letters again (all, or one id)")
    retry.add_argument("conversation_id", nargs="?", help="only this conversation")
    for sub in (ask, memory, sync, check, dlq):
        sub.add_argument("--env-file", default=argparse.SUPPRESS, metavar="PATH", help="as above")
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = stdout or sys.stdout

    from dotenv import load_dotenv

    from .config import ConfigError, load_settings

    load_dotenv(args.env_file, override=False)
    try:
        if args.command is None:
            settings = load_settings()
        else:
            settings = load_settings(
                need_intercom=args.command in ("sync", "check"),
                need_openai=args.command in ("ask", "check"),
            )
            if args.command in ("memory", "sync") and not (
                settings.mem0_api_key or settings.openai_api_key
            ):
                raise ConfigError(
                    "OPENAI_API_KEY",
                    "is required for the local answer memory (embeddings); "
                    "or set MEM0_API_KEY for the Mem0 platform",
                )
    except ConfigError as exc:
        print(f"intercom-responder: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    from .logs import setup_logging

    setup_logging(settings.log_level, settings.log_format, settings.secrets())
    if args.command == "ask":
        from .commands import ask

        return ask(settings, args.question, as_json=args.json, out=out)
    if args.command == "check":
        from .check import run_checks

        return run_checks(settings, out=out)
    if args.command == "dlq":
        from .commands import dlq_list, dlq_retry

        if args.dlq_command == "retry":
            return dlq_retry(settings, args.conversation_id, out=out)
        return dlq_list(settings, out=out)
    if args.command == "sync":
        from .commands import sync

        return sync(
            settings,
            since=args.since,
            limit=args.limit,
            dry_run=args.sync_dry_run or args.dry_run,
            out=out,
        )
    if args.command == "memory":
        from . import commands

        if args.memory_command == "add":
            return commands.memory_add(settings, args.question, args.answer, out=out)
        if args.memory_command == "list":
            return commands.memory_list(settings, limit=args.limit, out=out)
        return commands.memory_search(
            settings, args.text, limit=args.limit, min_score=args.min_score, out=out
        )
    return run(settings, once=args.once, dry_run=args.dry_run, out=out)


@dataclass
class App:
    """Everything wired together once; tests build the same thing the daemon runs."""

    settings: Settings
    store: StateStore
    intercom: IntercomClient
    pipeline: Pipeline
    poller: Poller
    stopping: threading.Event
    recall: Recall | None = None
    desk: ReviewDesk | None = None
    metrics: Metrics | None = None
    health: Health | None = None
    health_server: HealthServer | None = None

    def start(self, *, serve_health: bool = True) -> None:
        """Start what runs beside the poll loop: Slack review, /health and /metrics."""
        if serve_health and self.settings.health_addr and self.health and self.metrics:
            from .adapters.health import HealthServer

            self.health_server = HealthServer(self.settings.health_addr, self.health, self.metrics)
            self.health_server.start()
        if self.desk is not None:
            self.desk.slack.start()

    def close(self) -> None:
        if self.health_server is not None:
            self.health_server.stop()
            self.health_server = None
        if self.desk is not None:
            self.desk.slack.stop()
        if self.recall is not None:
            self.recall.close()
        self.store.close()


def build_app(
    settings: Settings,
    *,
    dry_run: bool = False,
    out: TextIO | None = None,
    responder: Responder | None = None,
) -> App:
    """Open the state store and connect the parts. Raises `StateFileError`."""
    from .adapters.breaker import CircuitBreaker
    from .adapters.health import Health
    from .adapters.metrics import Metrics
    from .adapters.store import StateStore
    from .flow.pipeline import Pipeline
    from .flow.poller import Poller

    store = StateStore(settings.state_file, read_only=dry_run)
    stopping = threading.Event()
    rules = rules_for(settings)
    metrics = Metrics()
    breakers = {
        name: CircuitBreaker(name, on_change=metrics.breaker_changed)
        for name in ("intercom", "llm", "mem0", "slack")
    }
    intercom = build_intercom(settings, breaker=breakers["intercom"], metrics=metrics)
    if responder is None:
        responder = build_responder(settings)
    printer = out or sys.stdout
    recall = (
        build_recall(settings, breaker=breakers["mem0"], metrics=metrics)
        if settings.memory_top_k > 0
        else None
    )
    desk = (
        build_desk(settings, recall, breaker=breakers["slack"])
        if settings.slack_enabled and not dry_run
        else None
    )
    pipeline = Pipeline(
        intercom=intercom,
        responder=responder,
        store=store,
        settings=pipeline_settings(settings),
        dry_run=dry_run,
        stopping=stopping,
        report=(lambda outcome: print_dry_run(outcome, printer)) if dry_run else None,
        recall=recall,
        desk=desk,
        metrics=metrics,
        llm_breaker=breakers["llm"],
    )
    maintenance: list[Callable[[], object]] = []
    if desk is not None:
        maintenance.append(desk.expire_due)
    if not dry_run:
        maintenance.append(lambda: apply_retry_requests(store, settings.state_file))
    health = Health(lambda: poller.interval)  # follows the adaptive interval
    poller = Poller(
        intercom=intercom,
        pipeline=pipeline,
        store=store,
        rules=rules,
        concurrency=settings.concurrency,
        session_ttl_seconds=settings.session_ttl_hours * 3600,
        stopping=stopping,
        maintenance=maintenance,
        metrics=metrics,
        health=health,
        interval=settings.poll_interval,
        interval_min=settings.poll_interval_min,
        interval_max=settings.poll_interval_max,
    )
    return App(settings, store, intercom, pipeline, poller, stopping, recall, desk, metrics, health)


def apply_retry_requests(store: StateStore, state_file: Path) -> None:
    """`dlq retry` run while the daemon holds the state file leaves a request file."""
    import logging

    from .adapters.store import take_retry_request

    found, ids = take_retry_request(state_file)
    if not found:
        return
    retried = store.retry_dead_letters() if ids is None else []
    for conversation_id in ids or []:
        retried += store.retry_dead_letters(conversation_id)
    logging.getLogger("intercom_responder").info(
        "dead letters back in the queue: %s", ", ".join(retried) or "none matched"
    )


def build_desk(
    settings: Settings, recall: Recall | None, *, breaker: CircuitBreaker | None = None
) -> ReviewDesk:
    from .adapters.slack import SlackReview
    from .flow.review_desk import ReviewDesk

    assert settings.slack_bot_token and settings.slack_app_token and settings.slack_channel_id
    slack = SlackReview(
        bot_token=settings.slack_bot_token,
        app_token=settings.slack_app_token,
        channel_id=settings.slack_channel_id,
        api_url=settings.slack_api_url,
        approver_ids=settings.slack_approver_ids,
    )
    desk = ReviewDesk(
        slack=slack,
        timeout_minutes=settings.review_timeout_minutes,
        recall=recall,
        workspace_id=settings.intercom_workspace_id,
        breaker=breaker,
    )
    slack.hooks = desk
    return desk


def build_intercom(
    settings: Settings, *, breaker: CircuitBreaker | None = None, metrics: Metrics | None = None
) -> IntercomClient:
    from .adapters.intercom import IntercomClient

    return IntercomClient(
        token=settings.intercom_access_token,
        base_url=settings.intercom_api_base,
        version=settings.intercom_api_version,
        timeout=settings.intercom_timeout,
        breaker=breaker,
        on_call=metrics.intercom_calls.inc if metrics is not None else None,
        on_rate_limit_wait=(lambda _: metrics.rate_limit_waits.inc()) if metrics else None,
        pool_size=settings.concurrency + 4,  # workers, the review desk and the poll itself
    )


def build_responder(settings: Settings) -> Responder:
    from .adapters.responder import OpenAIResponder

    return OpenAIResponder(
        api_key=settings.openai_api_key,
        model=settings.openai_model,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout,
        max_retries=settings.openai_max_retries,
    )


def pipeline_settings(settings: Settings) -> PipelineSettings:
    from .core.policy import PolicyRules
    from .flow.pipeline import PipelineSettings

    return PipelineSettings(
        rules=rules_for(settings),
        policy=PolicyRules(
            threshold=settings.confidence_threshold,
            escalation_keywords=settings.escalation_keywords,
            max_ai_replies_per_hour=settings.max_ai_replies_per_hour,
        ),
        max_attempts=settings.max_attempts,
        session_ttl_seconds=settings.session_ttl_hours * 3600,
        handoff_team_id=settings.handoff_team_id,
        handoff_admin_id=settings.handoff_admin_id,
        memory_top_k=settings.memory_top_k,
        memory_min_score=settings.memory_min_score,
    )


def rules_for(settings: Settings) -> Rules:
    from .core.triage import Rules

    return Rules(
        admin_id=settings.intercom_admin_id,
        debounce_seconds=settings.debounce_seconds,
        max_message_age_seconds=settings.max_message_age_hours * 3600,
        skip_assigned_to_others=settings.skip_assigned_to_others,
    )


def open_answer_memory(settings: Settings) -> AnswerMemory:
    """The configured backend: Mem0 platform with MEM0_API_KEY, else local under DATA_DIR."""
    from .adapters.memory import open_memory

    return open_memory(
        mem0_api_key=settings.mem0_api_key,
        mem0_host=settings.mem0_host,
        data_dir=settings.data_dir,
        openai_api_key=settings.openai_api_key,
        openai_base_url=settings.openai_base_url,
        embedding_model=settings.embedding_model,
        embedding_dims=settings.embedding_dims,
        llm_model=settings.openai_model,
        timeout=settings.memory_timeout,
    )


def build_recall(
    settings: Settings, *, breaker: CircuitBreaker | None = None, metrics: Metrics | None = None
) -> Recall:
    from .adapters.recall import Recall

    return Recall(
        lambda: open_answer_memory(settings),
        timeout=settings.memory_timeout,
        breaker=breaker,
        on_failure=((lambda: metrics.errors.labels(dependency="mem0").inc()) if metrics else None),
    )


def run(settings: Settings, *, once: bool, dry_run: bool, out: TextIO) -> int:
    import logging

    from .adapters.store import StateFileError

    log = logging.getLogger("intercom_responder")
    try:
        app = build_app(settings, dry_run=dry_run, out=out)
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return EXIT_STATE
    _install_signal_handlers(app.stopping)
    app.start(serve_health=not once)
    mode = " (dry run: nothing is written)" if dry_run else ""
    log.info(
        "intercom-responder starting%s: Intercom %s as admin %s, model %s, state %s",
        mode,
        settings.intercom_api_base,
        settings.intercom_admin_id,
        settings.openai_model,
        settings.state_file,
    )
    try:
        if once:
            result = app.poller.poll_once()
            return EXIT_OK if result.ok or app.stopping.is_set() else EXIT_CYCLE_FAILED
        app.poller.run_forever()
    finally:
        app.close()
    log.info("intercom-responder stopped")
    return EXIT_OK


def _date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date like 2026-01-31") from None


def print_dry_run(outcome: Outcome, out: TextIO) -> None:
    """What a dry run shows for each conversation it would act on."""
    if outcome.status != "dry-run" or outcome.decision is None or outcome.draft is None:
        return
    verb = "reply" if outcome.decision.action.value == "reply" else "internal note for review"
    lines = [
        f"conversation {outcome.conversation_id}: would send {verb}",
        f"  decision:   {outcome.decision.action.value} ({outcome.decision.reason})",
        f"  confidence: {outcome.draft.confidence:.2f}",
        "  draft:",
    ]
    lines += [f"    {line}" for line in (outcome.draft.answer or "(empty)").splitlines()]
    print("\n".join(lines), file=out, flush=True)


def _install_signal_handlers(stopping: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        import logging

        logging.getLogger("intercom_responder").info(
            "received %s: finishing in-flight work, then exiting (again to force)",
            signal.Signals(signum).name,
        )
        stopping.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
