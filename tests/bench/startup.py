"""Benchmark: `--help` time, start-up to the first poll, peak memory of a `--once` cycle.

    python -m tests.bench.startup [--runs 5]

Targets (issue 7): `python main.py --help` under 0.3 s. Prints a table; not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import ADMIN_ID, OPENAI_KEY, TOKEN, daemon_env
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]
HELP_TARGET = 0.3


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), **extra}


def help_time(runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "main.py", "--help"], cwd=REPO, capture_output=True, check=True
        )
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def first_poll_time(intercom: FakeIntercom, model: FakeOpenAI, runs: int) -> float:
    samples = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            before = len(intercom.requests)
            env = daemon_env(intercom, model, Path(tmp), LOG_LEVEL="WARNING")
            started = time.time()
            process = subprocess.Popen(
                [sys.executable, "main.py", "--env-file", os.devnull],
                cwd=REPO,
                env=_env(env),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                while len(intercom.requests) == before and time.time() - started < 60:
                    time.sleep(0.005)
                samples.append(intercom.requests[before].at - started)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    return statistics.median(samples)


def once_peak_rss(
    intercom: FakeIntercom, model: FakeOpenAI, conversations: int
) -> tuple[float, float]:
    """Peak resident memory (MiB) and wall time of `--once` answering with local Mem0."""
    now = int(time.time())
    for i in range(conversations):
        intercom.create_conversation(f"<p>How do I reset password {i}?</p>", created_at=now - 60)
    with tempfile.TemporaryDirectory() as tmp:
        env = daemon_env(intercom, model, Path(tmp), LOG_LEVEL="WARNING", EMBEDDING_DIMS="64")
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "main.py", "--env-file", os.devnull, "--once"],
            cwd=REPO,
            env=_env(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            assert process.stderr is not None
            raise SystemExit(
                f"--once failed with exit code {process.returncode}: {process.stderr.read()}"
            )
    return usage.ru_maxrss / 1024, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--conversations", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {sys.platform}")
    print(f"date:    {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"command: python -m tests.bench.startup --runs {args.runs} "
        f"--conversations {args.conversations}"
    )
    print()
    with (
        FakeIntercom(token=TOKEN) as intercom,
        FakeOpenAI(api_key=OPENAI_KEY) as model,
    ):
        intercom.add_admin(ADMIN_ID, "Responder Bot")
        model.set_json_reply("Settings > Security > Reset password.", 0.93, "bench")
        help_s = help_time(args.runs)
        first_s = first_poll_time(intercom, model, args.runs)
        rss_mib, once_s = once_peak_rss(intercom, model, args.conversations)
    verdict = "met" if help_s < HELP_TARGET else "MISSED"
    print(f"{'measure':<48} {'value':>10}")
    help_label = f"python main.py --help (median of {args.runs})"
    print(f"{help_label:<48} {help_s:>8.3f} s   target < {HELP_TARGET} s: {verdict}")
    print(f"{'start-up to the first Intercom call (median)':<48} {first_s:>8.3f} s")
    once_label = f"--once, {args.conversations} answers, local Mem0: wall time"
    print(f"{once_label:<48} {once_s:>8.2f} s")
    print(f"{'--once, local Mem0: peak resident memory':<48} {rss_mib:>6.0f} MiB")


if __name__ == "__main__":
    main()
