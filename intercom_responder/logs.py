"""Logging set-up: text or JSON lines, and no secret ever printed.

Redaction happens on the finished line, so a token that slips into an exception
message from any library (requests, openai, urllib3) is still masked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

REDACTED = "[redacted]"
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_EXTRA_FIELDS = ("conversation_id", "event", "reason")


class _RedactingMixin:
    secrets: list[str]

    def redact(self, line: str) -> str:
        for secret in self.secrets:
            line = line.replace(secret, REDACTED)
        return _BEARER.sub(rf"\1{REDACTED}", line)


class TextFormatter(_RedactingMixin, logging.Formatter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.secrets = _usable(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(_RedactingMixin, logging.Formatter):
    """One JSON object per line, for log shippers."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = _usable(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value not in (None, ""):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(entry, ensure_ascii=False, default=str))


def setup_logging(
    level: str, fmt: str, secrets: Iterable[str], stream: TextIO | None = None
) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter(secrets) if fmt == "json" else TextFormatter(secrets)
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries stay at WARNING unless the user asks for DEBUG.
    for noisy in ("urllib3", "httpx", "httpcore", "httpx2", "httpcore2", "openai", "mem0"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


def _usable(secrets: Iterable[str]) -> list[str]:
    # very short values would redact ordinary words; real tokens are long
    return sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)
