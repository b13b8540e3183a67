"""Short texts for people: one line, a described error, secrets masked.

Log lines, `check` output, error messages and terminal listings all cut and describe
the same way, so a token never slips through one of them that another would mask.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable

#: The combining accents NFKD splits off Latin, Greek and Cyrillic letters (and the generic
#: combining blocks), not the marks that are letters of their script (Thai vowels,
#: Devanagari signs, the kana voicing marks): what comparing "Café" with "cafe" removes.
ACCENT_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")

REDACTED = "[redacted]"
#: Shorter values would mask ordinary words; real tokens are long.
MIN_SECRET_CHARS = 6
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def one_line(text: object, limit: int = 160) -> str:
    """`text` flattened to one line and cut to `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe(exc: BaseException, limit: int = 300, *, with_cause: bool = False) -> str:
    """`Type: message`, on one line; `with_cause` adds the first line of what caused it.

    A library exception whose name shadows a builtin (Mem0's `MemoryError` reads like
    Python running out of memory) is shown with its module.
    """
    kind = type(exc)
    name = kind.__name__
    if kind.__module__ != "builtins" and hasattr(builtins, name):
        name = f"{kind.__module__}.{name}"
    message = " ".join(str(exc).split())
    text = f"{name}: {message}" if message else name
    cause = exc.__cause__ or exc.__context__
    if with_cause and cause is not None:
        lines = str(cause).strip().splitlines()
        first = lines[0].strip() if lines else ""
        if first and first not in text:
            text += f" ({type(cause).__name__}: {first})"
    return one_line(text, limit)


class Redactor:
    """Masks the given secrets, and any bearer token, in a finished text."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        usable = {s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}
        self._secrets = sorted(usable, key=len, reverse=True)  # longest first

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _BEARER.sub(rf"\1{REDACTED}", text)
