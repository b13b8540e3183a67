"""One-line texts, described errors and redaction: written once, used by logs, check and errors."""

from __future__ import annotations

from intercom_responder.core.text import REDACTED, Redactor, describe, one_line


def test_one_line_flattens_and_cuts() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert one_line("x" * 200, 10) == "xxxxxxx..."
    assert len(one_line("word " * 100, 50)) == 50
    assert one_line(ValueError("bad\nvalue")) == "bad value"


def test_describe_names_the_type_and_shows_a_shadowed_builtin_with_its_module() -> None:
    assert describe(ValueError("bad value")) == "ValueError: bad value"
    assert describe(TimeoutError()) == "TimeoutError"
    shadow = type("MemoryError", (Exception,), {"__module__": "mem0.exceptions"})
    assert describe(shadow("vector store down")) == "mem0.exceptions.MemoryError: vector store down"


def test_describe_can_add_the_first_line_of_the_cause() -> None:
    try:
        try:
            raise ConnectionError("refused\nmore detail")
        except ConnectionError as cause:
            raise RuntimeError("search failed") from cause
    except RuntimeError as exc:
        assert describe(exc) == "RuntimeError: search failed"
        assert describe(exc, with_cause=True) == (
            "RuntimeError: search failed (ConnectionError: refused)"
        )


def test_redactor_masks_secrets_longest_first_and_any_bearer_token() -> None:
    redact = Redactor(["sk-secret-123", "sk-secret-123456", "abc", None, ""])
    text = redact("keys sk-secret-123456 and sk-secret-123, Authorization: Bearer xyz.987")
    assert text == f"keys {REDACTED} and {REDACTED}, Authorization: Bearer {REDACTED}"
    assert redact("abc stays: too short to be a token") == "abc stays: too short to be a token"
