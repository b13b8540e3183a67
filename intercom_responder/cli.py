"""Command line: the arguments, the settings, and which command runs.

The parts are built in `bootstrap` and each command's body lives in `commands` (or
`check`); both are imported after the arguments are parsed, so `--help` answers at
once. Exit codes are `errors.ExitCode`: 0 done, 1 a poll cycle or command failed,
2 configuration error, 3 the state cannot be used (the state file locked or unreadable,
the database unreachable or refusing), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TextIO

from .defaults import PLAYGROUND_HOST, PLAYGROUND_PORT
from .errors import ExitCode


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
        "3 state file locked or unreadable, or the database (DATABASE_URL) unusable.",
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
    listing.add_argument(
        "--source",
        choices=("approved", "edited", "sync", "manual", "playground", "article", "document"),
        help="only entries of this source (article, document: the pieces of the knowledge "
        "sources, with their titles and links)",
    )
    forget = memory_commands.add_parser(
        "forget", help="remove every piece of one knowledge source (article or document)"
    )
    forget.add_argument("--source", choices=("article", "document"), required=True)
    search = memory_commands.add_parser("search", help="search the catalogue like the daemon")
    search.add_argument("text")
    search.add_argument("--limit", type=int, default=None, help="at most this many hits")
    search.add_argument(
        "--min-score", type=float, default=None, help="lowest score shown (MEMORY_MIN_SCORE)"
    )
    sync = commands.add_parser(
        "sync",
        help="teach the answer memory from past conversations, articles or documents",
        description="Walk past conversations (open and closed) and add every customer "
        "question a teammate answered to the catalogue. With --articles or --docs, import "
        "the help center's published articles or a folder of documents instead, changing "
        "only what changed. Safe to run twice; after Ctrl-C or a crash, run it again to "
        "continue.",
    )
    sync.add_argument(
        "--articles",
        action="store_true",
        help="import the help center's published articles (GET /articles)",
    )
    sync.add_argument(
        "--docs",
        type=Path,
        metavar="PATH",
        help="import a folder of Markdown, HTML and text files (recursively)",
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
    playground = commands.add_parser(
        "playground",
        help="try the answer pipeline on a local chat page, with no Intercom",
        description="Serve a chat page where you write as a customer and see what the daemon "
        "would answer: the same prompt, memory and policy. Only the model (and the memory) "
        "is called; nothing goes to Intercom or Slack.",
    )
    playground.add_argument("--host", default=PLAYGROUND_HOST, help="address (127.0.0.1)")
    playground.add_argument("--port", type=int, default=PLAYGROUND_PORT, help="port (8080)")
    playground.add_argument(
        "--learn",
        action="store_true",
        help="add approved and edited answers to the answer memory (source playground)",
    )
    route = commands.add_parser(
        "route",
        help="show the team a hand-off of this message would go to; assigns nothing",
        description="Read the workspace's teams and ROUTING_FILE, ask the model which team "
        "should have this customer message, and print the team, the confidence and the "
        "reason (or the fallback and why). Sends and assigns nothing.",
    )
    route.add_argument("text", help="the customer's message")
    evaluate = commands.add_parser(
        "eval",
        help="measure the answers on past conversations before going live; sends nothing",
        description="Draft an answer to past customer questions that a teammate answered, "
        "exactly as the daemon would (prompt, memory, policy), with only what was known "
        "before each question; a judge model compares each draft with the teammate's "
        "answer. Prints the shares that would be sent, reviewed and handed off, the mean "
        "agreement, a calibration table and the worst answers. Writes nothing but --out.",
    )
    evaluate.add_argument(
        "--since", type=_date, metavar="YYYY-MM-DD", help="only questions asked since"
    )
    evaluate.add_argument(
        "--limit", type=int, default=100, metavar="N", help="at most N pairs, oldest first (100)"
    )
    evaluate.add_argument(
        "--out", type=Path, metavar="DIR", help="eval.json, eval.csv, report.html"
    )
    evaluate.add_argument(
        "--questions",
        type=Path,
        metavar="FILE",
        help="a hand-written test set instead (CSV or JSON Lines: question, expected)",
    )
    evaluate.add_argument("--judge-model", metavar="MODEL", help="the judge (OPENAI_MODEL)")
    evaluate.add_argument("--target", type=float, default=0.9, help="the agreement to reach (0.9)")
    evaluate.add_argument("--yes", action="store_true", help="do not ask before starting")
    evaluate.add_argument("--json", action="store_true", help="print the summary as JSON")
    state = commands.add_parser(
        "state", help="move the whole state between the state file and PostgreSQL"
    )
    state_commands = state.add_subparsers(dest="state_command", metavar="ACTION", required=True)
    export = state_commands.add_parser("export", help="write the state as JSON")
    export.add_argument("--out", dest="state_out", type=Path, metavar="FILE", help="(stdout)")
    imported = state_commands.add_parser("import", help="read a state export into this backend")
    imported.add_argument("file", type=Path)
    imported.add_argument(
        "--replace", action="store_true", help="replace a state that is not empty"
    )
    for sub in (ask, memory, sync, check, dlq, playground, route, evaluate, state):
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
                need_intercom=args.command in ("check", "route")
                or (args.command == "eval" and not args.questions)
                or (args.command == "sync" and (args.articles or not args.docs)),
                need_responder=args.command in ("ask", "check", "playground", "eval"),
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
        return ExitCode.CONFIG

    from .logs import setup_logging

    setup_logging(settings.log_level, settings.log_format, settings.secrets())
    if args.command == "ask":
        from .commands import ask

        return ask(settings, args.question, as_json=args.json, out=out)
    if args.command == "state":
        from .commands import state_export, state_import

        if args.state_command == "export":
            return state_export(settings, to=args.state_out, out=out)
        return state_import(settings, args.file, replace=args.replace, out=out)
    if args.command == "eval":
        from .commands import evaluate

        return evaluate(
            settings,
            since=args.since,
            limit=args.limit,
            out_dir=args.out,
            questions=args.questions,
            judge_model=args.judge_model,
            target=args.target,
            yes=args.yes,
            as_json=args.json,
            out=out,
        )
    if args.command == "route":
        from .commands import route

        return route(settings, args.text, out=out)
    if args.command == "playground":
        from .commands import playground

        return playground(settings, host=args.host, port=args.port, learn=args.learn, out=out)
    if args.command == "check":
        from .check import run_checks

        return run_checks(settings, out=out)
    if args.command == "dlq":
        from .commands import dlq_list, dlq_retry

        if args.dlq_command == "retry":
            return dlq_retry(settings, args.conversation_id, out=out)
        return dlq_list(settings, out=out)
    if args.command == "sync" and (args.articles or args.docs):
        from .commands import knowledge_sync

        return knowledge_sync(
            settings,
            articles=args.articles,
            docs=args.docs,
            dry_run=args.sync_dry_run or args.dry_run,
            out=out,
        )
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
        if args.memory_command == "forget":
            return commands.memory_forget(settings, source=args.source, out=out)
        if args.memory_command == "list":
            return commands.memory_list(settings, limit=args.limit, source=args.source, out=out)
        return commands.memory_search(
            settings, args.text, limit=args.limit, min_score=args.min_score, out=out
        )
    from .commands import run_daemon

    return run_daemon(settings, once=args.once, dry_run=args.dry_run, out=out)


def _date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date like 2026-01-31") from None
