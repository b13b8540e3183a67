"""`python main.py` in a process of its own, as a supervisor runs it: for the replica tests
and benchmarks, which need daemons that can be killed with SIGKILL.

Its log goes to a file: a pipe nobody reads would fill up and stop a busy daemon.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DaemonProcess:
    """One daemon with its own health port, state file and DATA_DIR under `folder/name`."""

    def __init__(self, name: str, env: dict[str, str], folder: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log = folder / f"{name}.log"
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(REPO / "main.py"), "--env-file", os.devnull],
                env={
                    "PATH": os.environ["PATH"],
                    "PYTHONPATH": str(REPO),
                    **env,
                    "HEALTH_ADDR": f"127.0.0.1:{self.port}",
                    "STATE_FILE": str(folder / name / "sessions.json"),
                    "DATA_DIR": str(folder / name / "data"),
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(REPO),
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def healthy(self) -> bool | None:
        """True (200), False (503), None (not answering)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                return True
        except urllib.error.HTTPError:
            return False
        except OSError:
            return None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no release of claims or leases."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        """SIGTERM, as systemd and Docker stop it; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")
