"""The one place where the parts are built and connected, for every entry point and the tests.

The daemon, the commands (`ask`, `sync`, `check`, ...) and the tests all build their
parts here, so what a test runs is what `python main.py` runs. Heavy libraries are
imported inside the builders: importing this module costs nothing.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .adapters.breaker import CircuitBreaker
    from .adapters.gpt_trainer import GPTTrainerResponder
    from .adapters.health import Health, HealthServer
    from .adapters.images import ImageFetcher
    from .adapters.intercom import IntercomClient
    from .adapters.memory import AnswerMemory
    from .adapters.metrics import Metrics
    from .adapters.pg_store import PostgresClaims, PostgresFound
    from .adapters.playground_server import PlaygroundServer
    from .adapters.recall import Recall
    from .adapters.responder import ChatModel, Responder
    from .adapters.slack import SlackSocket
    from .adapters.store import Store
    from .adapters.webhook_server import WebhookServer
    from .config import Settings
    from .core.triage import Rules
    from .errors import Dependency
    from .flow.drafting import Drafter
    from .flow.knowledge_sync import ArticleImports
    from .flow.locks import ConversationLocks
    from .flow.nudges import Nudges
    from .flow.outcome import Outcome
    from .flow.pipeline import Pipeline, PipelineSettings
    from .flow.poller import Poller
    from .flow.review_desk import ReviewDesk
    from .flow.routing import Router
    from .flow.sending import Sending
    from .flow.ticket_routing import TicketOutcome, TicketRouting


@dataclass
class App:
    """Everything wired together once; tests build the same thing the daemon runs."""

    settings: Settings
    store: Store
    intercom: IntercomClient
    pipeline: Pipeline
    poller: Poller
    stopping: threading.Event
    recall: Recall | None = None
    desk: ReviewDesk | None = None
    slack: SlackSocket | None = None
    metrics: Metrics | None = None
    health: Health | None = None
    health_server: HealthServer | None = None
    nudges: Nudges | None = None
    webhook: WebhookServer | None = None
    article_imports: ArticleImports | None = None
    claims: PostgresClaims | None = None  # replicas on PostgreSQL: this one's claims
    memory_lock: TextIO | None = None  # a local memory's DATA_DIR, held by this replica

    def start(
        self, *, serve_health: bool = True, serve_webhook: bool = True, imports: bool = True
    ) -> None:
        """Start what runs beside the poll loop: Slack review, webhooks, /health and /metrics,
        the article imports.

        Raises `WebStartError` when WEBHOOK_ADDR cannot be listened on.
        """
        if imports and self.article_imports is not None:
            self.article_imports.start()
        if serve_health and self.settings.health_addr and self.health and self.metrics:
            from .adapters.health import HealthServer

            self.health_server = HealthServer(self.settings.health_addr, self.health, self.metrics)
            self.health_server.start()
        if serve_webhook and self.nudges is not None:
            self.webhook = build_webhook(self.settings, self.nudges, self.metrics)
            self.nudges.start()
            self.webhook.start()
        if self.slack is not None:
            self.slack.start()

    def close(self) -> None:
        if self.article_imports is not None:
            self.article_imports.stop()
        if self.webhook is not None:
            self.webhook.stop()
            self.webhook = None
        if self.nudges is not None:
            self.nudges.stop()
        if self.health_server is not None:
            self.health_server.stop()
            self.health_server = None
        if self.slack is not None:
            self.slack.stop()
        if self.recall is not None:
            self.recall.close()
        if self.claims is not None:
            self.claims.close()
        if self.memory_lock is not None:
            self.memory_lock.close()
            self.memory_lock = None
        self.store.close()


def build_app(
    settings: Settings,
    *,
    dry_run: bool = False,
    out: TextIO | None = None,
    responder: Responder | None = None,
    hours_clock: Callable[[], float] | None = None,
) -> App:
    """Open the state store and connect the parts. Raises `StateFileError`.

    `hours_clock`: what time it is for BUSINESS_HOURS (away messages, the away threshold,
    review expiry); tests set it to a Friday evening.
    """
    from .adapters.breaker import CircuitBreaker
    from .adapters.health import Health
    from .adapters.metrics import Metrics
    from .errors import Dependency
    from .flow.dead_letters import apply_retry_requests
    from .flow.locks import ConversationLocks
    from .flow.nudges import Nudges
    from .flow.pipeline import Pipeline
    from .flow.poller import Poller

    store = open_store(settings, read_only=dry_run)
    try:
        memory_lock = None if dry_run else hold_local_memory(settings)
    except BaseException:
        store.close()
        raise
    stopping = threading.Event()
    metrics = Metrics()
    breakers = {
        dependency: CircuitBreaker(dependency, on_change=metrics.breaker_changed)
        for dependency in (
            Dependency.INTERCOM,
            Dependency.LLM,
            Dependency.GPT_TRAINER,
            Dependency.MEM0,
            Dependency.SLACK,
        )
    }
    intercom = build_intercom(settings, breaker=breakers[Dependency.INTERCOM], metrics=metrics)
    recall = (
        build_recall(settings, breaker=breakers[Dependency.MEM0], metrics=metrics)
        if settings.memory_top_k > 0
        else None
    )
    claims = build_claims(settings, store)
    locks = ConversationLocks(claims=claims)
    router = (
        build_router(settings, intercom) if settings.routing or settings.route_tickets else None
    )
    sending = build_sending(
        settings,
        intercom,
        store,
        dry_run=dry_run,
        metrics=metrics,
        router=router if settings.routing else None,
        hours_clock=hours_clock,
    )
    desk, slack = (
        build_review(
            settings, intercom, store, sending, locks, recall, metrics, breakers, hours_clock
        )
        if settings.slack_enabled and not dry_run
        else (None, None)
    )
    printer = out or sys.stdout
    pipeline = Pipeline(
        sending=sending,
        drafter=build_drafter(
            settings,
            responder,
            recall,
            breaker=breakers[responder_dependency(settings)],
            metrics=metrics,
            hours_clock=hours_clock,
        ),
        store=store,
        settings=pipeline_settings(settings),
        locks=locks,
        desk=desk,
        stopping=stopping,
        report=(lambda outcome: print_dry_run(outcome, printer)) if dry_run else None,
        metrics=metrics,
    )
    maintenance: list[Callable[[], object]] = []
    if desk is not None:
        maintenance.append(desk.expire_due)
    if not dry_run:
        maintenance.append(lambda: apply_retry_requests(store, settings.state_file))
    if settings.route_tickets and router is not None:
        maintenance.append(
            build_ticket_routing(
                settings, intercom, store, router, dry_run=dry_run, metrics=metrics, out=printer
            ).run_once
        )
    health = Health(lambda: poller.interval)  # follows the adaptive interval
    poller = Poller(
        intercom=intercom,
        pipeline=pipeline,
        store=store,
        rules=rules_for(settings),
        concurrency=settings.concurrency,
        session_ttl_seconds=settings.session_ttl_seconds,
        stopping=stopping,
        maintenance=maintenance,
        metrics=metrics,
        health=health,
        interval=settings.poll_interval,
        interval_min=settings.poll_interval_min,
        interval_max=settings.poll_interval_max,
        sweep_interval=settings.sweep_interval,
        leader=((lambda: claims.lead("poll")) if claims is not None else None),
        findings=build_findings(store) if claims is not None else None,
    )
    nudges = (
        Nudges(
            pipeline=pipeline,
            store=store,
            debounce_seconds=settings.debounce_seconds,
            concurrency=settings.concurrency,
        )
        if settings.webhook_addr
        else None
    )
    return App(
        settings,
        store,
        intercom,
        pipeline,
        poller,
        stopping,
        recall,
        desk,
        slack,
        metrics,
        health,
        nudges=nudges,
        claims=claims,
        memory_lock=memory_lock,
        article_imports=(
            build_article_imports(settings, intercom, recall, stopping, claims)
            if recall is not None
            and settings.articles_sync_hours > 0
            and settings.knowledge_top_k > 0  # pieces no draft is given need no import
            and not dry_run
            else None
        ),
    )


def build_article_imports(
    settings: Settings,
    intercom: IntercomClient,
    recall: Recall,
    stopping: threading.Event,
    claims: PostgresClaims | None = None,
) -> ArticleImports:
    """ARTICLES_SYNC_HOURS: the daemon's own `sync --articles`, through its memory worker
    (the daemon owns a local memory; the platform is shared anyway)."""
    from .flow.knowledge_sync import ArticleImports

    return ArticleImports(
        intercom=intercom,
        run=recall.run,
        state_file=settings.state_file,
        every_seconds=settings.articles_sync_hours * 3600,
        stopping=stopping,
        claims=claims,
    )


def open_store(settings: Settings, *, read_only: bool = False) -> Store:
    """The state (STATE_BACKEND): the state file, or PostgreSQL. Raises `StateFileError`.

    `read_only` (dry run): the file is read without its lock, the database is read once
    into memory; either way nothing of it is changed.
    """
    if settings.state_backend == "postgres":
        from .adapters.pg_store import PostgresStateStore
        from .adapters.store import StateStore

        assert settings.database_url  # load_settings requires it with STATE_BACKEND=postgres
        database = PostgresStateStore(settings.database_url)
        if not read_only:
            return database
        try:
            return StateStore.in_memory(database.snapshot(), name=database.path)
        finally:
            database.close()
    from .adapters.store import StateStore

    return StateStore(settings.state_file, read_only=read_only)


def hold_local_memory(settings: Settings) -> TextIO | None:
    """Replicas share a database, never a local memory: one replica per local DATA_DIR.

    Embedded Qdrant serves one process; a second replica on the same folder would run
    without its memory. It is refused at start, with the way out (the Mem0 platform).
    Raises `StateLockedError`.
    """
    if settings.state_backend != "postgres" or settings.mem0_api_key:
        return None
    if settings.memory_top_k <= 0:
        return None
    from .adapters.files import lock_exclusively

    return lock_exclusively(
        settings.data_dir / "replica",
        "a local memory under DATA_DIR serves one replica; with several replicas on "
        "STATE_BACKEND=postgres use the Mem0 platform (MEM0_API_KEY), or give each its own "
        "DATA_DIR",
    )


def build_findings(store: Store) -> PostgresFound:
    """What the polling replica found, for every replica to take its share of."""
    from .adapters.pg_store import PostgresFound, PostgresStateStore

    assert isinstance(store, PostgresStateStore)  # replicas exist on PostgreSQL only
    return PostgresFound(store)


def build_claims(settings: Settings, store: Store) -> PostgresClaims | None:
    """Replicas on one database claim each conversation there; the file store needs none."""
    from .adapters.pg_store import PostgresClaims, PostgresStateStore

    if not isinstance(store, PostgresStateStore):
        return None
    import os
    import socket
    import uuid

    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return PostgresClaims(store, owner=owner, lease_seconds=settings.lease_seconds)


def build_webhook(
    settings: Settings, nudges: Nudges, metrics: Metrics | None = None
) -> WebhookServer:
    from .adapters.webhook_server import WebhookServer

    assert settings.intercom_client_secret  # load_settings requires it with WEBHOOK_ADDR
    return WebhookServer(
        settings.webhook_addr,
        secret=settings.intercom_client_secret,
        on_notification=nudges.notify,
        on_request=(
            (lambda outcome: metrics.webhook_requests.labels(outcome=outcome).inc())
            if metrics is not None
            else None
        ),
    )


def build_playground(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    learn: bool = False,
    token: str | None = None,
) -> PlaygroundServer:
    """The playground: the daemon's drafter (memory, model, policy) behind a local page."""
    from .adapters.playground_server import PlaygroundServer
    from .flow.playground import Playground

    recall = build_recall(settings) if settings.memory_top_k > 0 else None
    playground = Playground(build_drafter(settings, None, recall), recall=recall, learn=learn)
    return PlaygroundServer(playground, host=host, port=port, token=token)


def build_sending(
    settings: Settings,
    intercom: IntercomClient,
    store: Store,
    *,
    dry_run: bool = False,
    metrics: Metrics | None = None,
    router: Router | None = None,
    hours_clock: Callable[[], float] | None = None,
) -> Sending:
    from .flow.sending import DryRunSending, HandoffTargets, Sending

    kind = DryRunSending if dry_run else Sending
    return kind(
        intercom=intercom,
        store=store,
        rules=rules_for(settings),
        handoff=HandoffTargets(settings.handoff_team_id, settings.handoff_admin_id),
        router=router,
        metrics=metrics,
        hours=settings.business_hours,
        away_message=settings.away_message,
        hours_clock=hours_clock,
    )


def build_ticket_routing(
    settings: Settings,
    intercom: IntercomClient,
    store: Store,
    router: Router,
    *,
    dry_run: bool = False,
    metrics: Metrics | None = None,
    out: TextIO | None = None,
) -> TicketRouting:
    """ROUTE_TICKETS: after each poll, new tickets no team holds go to a team."""
    from .flow.ticket_routing import TicketRouting

    printer = out or sys.stdout
    return TicketRouting(
        intercom=intercom,
        store=store,
        router=router,
        admin_id=settings.intercom_admin_id,
        lookback_seconds=rules_for(settings).max_message_age_seconds,
        dry_run=dry_run,
        max_attempts=settings.max_attempts,
        metrics=metrics,
        report=(lambda outcome: print_ticket_dry_run(outcome, printer)) if dry_run else None,
    )


def build_router(settings: Settings, intercom: IntercomClient) -> Router:
    """ROUTING: the workspace's teams, the routing file's notes, the chat model."""
    from .adapters.team_classifier import TeamClassifier
    from .flow.routing import Router

    return Router(
        intercom=intercom,
        classifier=TeamClassifier(
            build_chat_model(settings), min_confidence=settings.routing_min_confidence
        ),
        notes=settings.routing_notes,
        fallback_team_id=settings.handoff_team_id,
    )


def build_review(
    settings: Settings,
    intercom: IntercomClient,
    store: Store,
    sending: Sending,
    locks: ConversationLocks,
    recall: Recall | None,
    metrics: Metrics | None,
    breakers: dict[Dependency, CircuitBreaker],
    hours_clock: Callable[[], float] | None = None,
) -> tuple[ReviewDesk, SlackSocket]:
    """The review desk and the Slack socket that hands it the clicks."""
    from .adapters.slack import SlackSocket, SlackWeb
    from .errors import Dependency
    from .flow.review_desk import ReviewDesk

    assert settings.slack_bot_token and settings.slack_app_token and settings.slack_channel_id
    connected = threading.Event()
    desk = ReviewDesk(
        slack=SlackWeb(
            bot_token=settings.slack_bot_token,
            channel_id=settings.slack_channel_id,
            api_url=settings.slack_api_url,
        ),
        connected=connected.is_set,
        sending=sending,
        store=store,
        locks=locks,
        rules=rules_for(settings),
        intercom=intercom,
        timeout_minutes=settings.review_timeout_minutes,
        recall=recall,
        workspace_id=settings.intercom_workspace_id,
        metrics=metrics,
        breaker=breakers[Dependency.SLACK],
        hours=settings.business_hours,
        hours_clock=hours_clock,
    )
    socket = SlackSocket(
        bot_token=settings.slack_bot_token,
        app_token=settings.slack_app_token,
        channel_id=settings.slack_channel_id,
        hooks=desk,
        api_url=settings.slack_api_url,
        approver_ids=settings.slack_approver_ids,
        connected=connected,
    )
    return desk, socket


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
        on_rate_limit_wait=metrics.rate_limit_waited if metrics is not None else None,
        # the poll's and the webhook's workers, the review desk and the poll itself
        pool_size=settings.concurrency * (2 if settings.webhook_addr else 1) + 4,
    )


def build_responder(settings: Settings) -> Responder:
    """The configured responder (RESPONDER): the one line per responder is here."""
    if settings.responder == "gpt-trainer":
        return build_gpt_trainer(settings)
    from .adapters.responder import OpenAIResponder

    return OpenAIResponder(build_chat_model(settings))


def build_chat_model(settings: Settings, *, model: str | None = None) -> ChatModel:
    """The OpenAI-compatible model: it drafts, or grades another responder's answers
    (`model`: another model on the same server, e.g. the eval's judge)."""
    from .adapters.responder import ChatModel

    return ChatModel(
        api_key=settings.openai_api_key,
        model=model or settings.openai_model,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout,
        max_retries=settings.openai_max_retries,
    )


def responder_dependency(settings: Settings) -> Dependency:
    """Which breaker guards the responder, and how its errors and latency are labelled."""
    from .errors import Dependency

    return Dependency.GPT_TRAINER if settings.responder == "gpt-trainer" else Dependency.LLM


def build_gpt_trainer(settings: Settings) -> GPTTrainerResponder:
    """GPT Trainer, graded by the OpenAI model when there is a key, else a fixed confidence."""
    from .adapters.gpt_trainer import GPTTrainerResponder
    from .adapters.responder import FixedGrader, Grader, OpenAIGrader

    assert settings.gpt_trainer_api_key and settings.gpt_trainer_chatbot_uuid
    grader: Grader = (
        OpenAIGrader(build_chat_model(settings))
        if settings.openai_api_key
        else FixedGrader(settings.gpt_trainer_confidence)
    )
    return GPTTrainerResponder(
        api_key=settings.gpt_trainer_api_key,
        chatbot_uuid=settings.gpt_trainer_chatbot_uuid,
        grader=grader,
        api_url=settings.gpt_trainer_api_url,
        timeout=settings.gpt_trainer_timeout,
    )


def build_drafter(
    settings: Settings,
    responder: Responder | None,
    recall: Recall | None,
    *,
    breaker: CircuitBreaker | None = None,
    metrics: Metrics | None = None,
    hours_clock: Callable[[], float] | None = None,
) -> Drafter:
    """Memory, the model behind its breaker, and the policy; `responder` replaces the model."""
    from .adapters.guarded_responder import GuardedResponder
    from .core.policy import PolicyRules
    from .flow.drafting import Drafter, DraftingSettings

    label = responder_dependency(settings).value
    model = GuardedResponder(
        responder or build_responder(settings),
        breaker=breaker,
        on_latency=(
            metrics.llm_latency.labels(responder=label).observe if metrics is not None else None
        ),
    )
    return Drafter(
        model,
        recall=recall,
        settings=DraftingSettings(
            policy=PolicyRules(
                threshold=settings.confidence_threshold,
                escalation_keywords=settings.escalation_keywords,
                max_ai_replies_per_hour=settings.max_ai_replies_per_hour,
                reply_languages=settings.reply_languages,
            ),
            admin_id=settings.intercom_admin_id,
            memory_top_k=settings.memory_top_k,
            memory_min_score=settings.memory_min_score,
            knowledge_top_k=settings.knowledge_top_k,
            knowledge_min_score=settings.knowledge_min_score,
            cite_sources=settings.cite_sources,
            hours=settings.business_hours,
            threshold_away=settings.confidence_threshold_away,
        ),
        hours_clock=hours_clock,
        images=build_images(settings) if settings.vision else None,
    )


def build_images(settings: Settings) -> ImageFetcher:
    """VISION: the daemon downloads the customers' images itself, bounded in time and size."""
    from .adapters.images import ImageFetcher
    from .defaults import IMAGE_TIMEOUT

    return ImageFetcher(max_bytes=int(settings.max_image_mb * 1_000_000), timeout=IMAGE_TIMEOUT)


def pipeline_settings(settings: Settings) -> PipelineSettings:
    from .flow.pipeline import PipelineSettings

    return PipelineSettings(
        rules=rules_for(settings),
        max_attempts=settings.max_attempts,
        session_ttl_seconds=settings.session_ttl_seconds,
    )


def rules_for(settings: Settings) -> Rules:
    from .core.triage import Rules

    return Rules(
        admin_id=settings.intercom_admin_id,
        debounce_seconds=settings.debounce_seconds,
        max_message_age_seconds=settings.max_message_age_seconds,
        skip_assigned_to_others=settings.skip_assigned_to_others,
    )


def open_answer_memory(settings: Settings, *, local_dir: Path | None = None) -> AnswerMemory:
    """The configured backend: Mem0 platform with MEM0_API_KEY, else local under DATA_DIR.

    `local_dir`: a local memory there instead, whatever is configured (eval's scratch one).
    """
    from .adapters.memory import open_memory

    return open_memory(
        mem0_api_key=None if local_dir else settings.mem0_api_key,
        mem0_host=settings.mem0_host,
        data_dir=local_dir or settings.data_dir,
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
    from .errors import Dependency

    return Recall(
        lambda: open_answer_memory(settings),
        timeout=settings.memory_timeout,
        breaker=breaker,
        on_failure=(
            (lambda: metrics.errors.labels(dependency=Dependency.MEM0.value).inc())
            if metrics
            else None
        ),
    )


def print_dry_run(outcome: Outcome, out: TextIO) -> None:
    """What a dry run shows for each conversation it would act on."""
    from .core.policy import Action
    from .flow.outcome import Status

    if outcome.status is not Status.DRY_RUN or outcome.decision is None or outcome.draft is None:
        return
    verb = "reply" if outcome.decision.action is Action.REPLY else "internal note for review"
    lines = [
        f"conversation {outcome.conversation_id}: would send {verb}",
        f"  decision:   {outcome.decision.action.value} ({outcome.decision.reason})",
        f"  confidence: {outcome.draft.confidence:.2f}",
    ]
    route = outcome.route
    if route is not None:
        team = route.team_name or f"none ({route.fallback}; HANDOFF_TEAM_ID or unassigned)"
        lines.append(f"  routing:    {team}, confidence {route.confidence:.2f}: {route.reason}")
    lines.append("  draft:")
    lines += [f"    {line}" for line in (outcome.draft.answer or "(empty)").splitlines()]
    print("\n".join(lines), file=out, flush=True)


def print_ticket_dry_run(outcome: TicketOutcome, out: TextIO) -> None:
    """What a dry run shows for each ticket routing would assign."""
    route = outcome.route
    team = route.team_name or f"none ({route.fallback})"
    target = (
        f"would assign it to team {outcome.team_id}"
        if outcome.team_id
        else "would leave it unassigned (no HANDOFF_TEAM_ID)"
    )
    print(
        f"ticket {outcome.ticket_id}: {target}\n"
        f"  routing:    {team}, confidence {route.confidence:.2f}: {route.reason}",
        file=out,
        flush=True,
    )
