"""Command line and wiring: the one place where the parts are put together.

Heavy modules are imported after the arguments are parsed, so `--help` answers at once.
Exit codes: 0 done, 1 a poll cycle failed, 2 configuration error, 3 state file unusable.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .config import Settings
    from .intercom import IntercomClient
    from .pipeline import Outcome, Pipeline
    from .poller import Poller
    from .responder import Responder
    from .store import StateStore

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
            "the environment and from .env (see .env.example)."
        ),
        epilog="Exit codes: 0 ok, 1 poll cycle failed, 2 configuration error, "
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
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = stdout or sys.stdout

    from dotenv import load_dotenv

    from .config import ConfigError, load_settings

    load_dotenv(args.env_file, override=False)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"intercom-responder: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    from .logs import setup_logging

    setup_logging(settings.log_level, settings.log_format, settings.secrets())
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


def build_app(
    settings: Settings,
    *,
    dry_run: bool = False,
    out: TextIO | None = None,
    responder: Responder | None = None,
) -> App:
    """Open the state store and connect the parts. Raises `StateFileError`."""
    from .intercom import IntercomClient
    from .pipeline import Pipeline, PipelineSettings
    from .poller import Poller
    from .responder import OpenAIResponder
    from .store import StateStore
    from .triage import Rules

    store = StateStore(settings.state_file, read_only=dry_run)
    stopping = threading.Event()
    rules = Rules(
        admin_id=settings.intercom_admin_id,
        debounce_seconds=settings.debounce_seconds,
        max_message_age_seconds=settings.max_message_age_hours * 3600,
        skip_assigned_to_others=settings.skip_assigned_to_others,
    )
    intercom = IntercomClient(
        token=settings.intercom_access_token,
        base_url=settings.intercom_api_base,
        version=settings.intercom_api_version,
        timeout=settings.intercom_timeout,
    )
    if responder is None:
        responder = OpenAIResponder(
            api_key=settings.openai_api_key,
            model=settings.openai_model,
            base_url=settings.openai_base_url,
            timeout=settings.openai_timeout,
            max_retries=settings.openai_max_retries,
        )
    printer = out or sys.stdout
    pipeline = Pipeline(
        intercom=intercom,
        responder=responder,
        store=store,
        settings=PipelineSettings(
            rules=rules,
            confidence_threshold=settings.confidence_threshold,
            max_attempts=settings.max_attempts,
            session_ttl_seconds=settings.session_ttl_hours * 3600,
        ),
        dry_run=dry_run,
        stopping=stopping,
        report=(lambda outcome: print_dry_run(outcome, printer)) if dry_run else None,
    )
    poller = Poller(
        intercom=intercom,
        pipeline=pipeline,
        store=store,
        rules=rules,
        concurrency=settings.concurrency,
        session_ttl_seconds=settings.session_ttl_hours * 3600,
        stopping=stopping,
    )
    return App(settings, store, intercom, pipeline, poller, stopping)


def run(settings: Settings, *, once: bool, dry_run: bool, out: TextIO) -> int:
    import logging

    from .store import StateFileError

    log = logging.getLogger("intercom_responder")
    try:
        app = build_app(settings, dry_run=dry_run, out=out)
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return EXIT_STATE
    _install_signal_handlers(app.stopping)
    mode = " (dry run: nothing is written)" if dry_run else ""
    log.info(
        "intercom-responder starting%s: Intercom %s as admin %s, model %s, state %s",
        mode,
        settings.intercom_api_base,
        settings.intercom_admin_id,
        settings.openai_model,
        settings.state_file,
    )
    with app.store:
        if once:
            result = app.poller.poll_once()
            return EXIT_OK if result.ok or app.stopping.is_set() else EXIT_CYCLE_FAILED
        app.poller.run_forever(settings.poll_interval)
    log.info("intercom-responder stopped")
    return EXIT_OK


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
