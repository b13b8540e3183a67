"""Settings: every problem is one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercom_responder.config import ConfigError, load_settings

BASE = {
    "INTERCOM_ACCESS_TOKEN": "tok-secret-123",
    "INTERCOM_ADMIN_ID": "991",
    "OPENAI_API_KEY": "sk-secret-456",
}


def test_defaults_match_the_documented_contract() -> None:
    settings = load_settings(BASE)
    assert settings.intercom_api_base == "https://api.intercom.io"
    assert settings.intercom_api_version == "2.16"
    assert settings.openai_model == "gpt-4o"
    assert settings.openai_base_url is None
    assert settings.confidence_threshold == 0.8
    assert settings.poll_interval == 60
    assert settings.debounce_seconds == 15
    assert settings.concurrency == 4
    assert settings.state_file == Path("sessions.json")
    assert settings.max_message_age_hours == 24
    assert settings.skip_assigned_to_others is True
    assert settings.max_attempts == 5
    assert settings.log_level == "INFO"


def test_values_are_read_and_trimmed() -> None:
    settings = load_settings(
        {
            **BASE,
            "INTERCOM_API_BASE": "https://api.eu.intercom.io/",
            "CONFIDENCE_THRESHOLD": " 0.65 ",
            "CONCURRENCY": "8",
            "SKIP_ASSIGNED_TO_OTHERS": "false",
            "LOG_LEVEL": "debug",
            "OPENAI_BASE_URL": "http://localhost:11434/v1",
        }
    )
    assert settings.intercom_api_base == "https://api.eu.intercom.io"
    assert settings.confidence_threshold == 0.65
    assert settings.concurrency == 8
    assert settings.skip_assigned_to_others is False
    assert settings.log_level == "DEBUG"
    assert settings.openai_base_url == "http://localhost:11434/v1"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("INTERCOM_ACCESS_TOKEN", "", "INTERCOM_ACCESS_TOKEN: is required but not set"),
        ("INTERCOM_ADMIN_ID", "", "INTERCOM_ADMIN_ID: is required but not set"),
        ("INTERCOM_ADMIN_ID", "bob", "INTERCOM_ADMIN_ID: must be the numeric id"),
        ("OPENAI_API_KEY", "  ", "OPENAI_API_KEY: is required but not set"),
        ("CONFIDENCE_THRESHOLD", "1.5", "CONFIDENCE_THRESHOLD: must be between 0 and 1"),
        ("CONFIDENCE_THRESHOLD", "-0.1", "CONFIDENCE_THRESHOLD: must be between 0 and 1"),
        ("CONFIDENCE_THRESHOLD", "nan", "CONFIDENCE_THRESHOLD: must be between 0 and 1"),
        ("POLL_INTERVAL", "often", "POLL_INTERVAL: must be a number (got 'often')"),
        ("CONCURRENCY", "2.5", "CONCURRENCY: must be a whole number"),
        ("CONCURRENCY", "0", "CONCURRENCY: must be between 1 and 64"),
        ("INTERCOM_API_BASE", "api.intercom.io", "INTERCOM_API_BASE: must be an http"),
        ("OPENAI_BASE_URL", "ftp://x", "OPENAI_BASE_URL: must be an http"),
        ("SKIP_ASSIGNED_TO_OTHERS", "maybe", "SKIP_ASSIGNED_TO_OTHERS: must be true or false"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT: must be one of text, json"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, variable: value})
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)
    assert caught.value.variable == variable


def test_secrets_are_known_so_logs_can_mask_them() -> None:
    settings = load_settings(BASE)
    assert set(settings.secrets()) == {"tok-secret-123", "sk-secret-456"}


def intervals(**env: str) -> tuple[float, float, float]:
    settings = load_settings({**BASE, **env})
    return settings.poll_interval, settings.poll_interval_min, settings.poll_interval_max


def test_unset_interval_variables_give_the_documented_defaults() -> None:
    assert intervals() == (60, 15, 300)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"POLL_INTERVAL": "5"}, (5, 5, 300)),
        ({"POLL_INTERVAL": "600"}, (600, 15, 600)),
        ({"POLL_INTERVAL": "15"}, (15, 15, 300)),
        ({"POLL_INTERVAL": "5", "POLL_INTERVAL_MAX": "100"}, (5, 5, 100)),
        ({"POLL_INTERVAL": "600", "POLL_INTERVAL_MIN": "30"}, (600, 30, 600)),
    ],
)
def test_unset_bounds_widen_to_take_in_the_interval(
    env: dict[str, str], expected: tuple[float, float, float]
) -> None:
    assert intervals(**env) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"POLL_INTERVAL": "60", "POLL_INTERVAL_MIN": "20", "POLL_INTERVAL_MAX": "100"},
            (60, 20, 100),
        ),
        ({"POLL_INTERVAL": "5", "POLL_INTERVAL_MIN": "5"}, (5, 5, 300)),
        ({"POLL_INTERVAL": "600", "POLL_INTERVAL_MAX": "600"}, (600, 15, 600)),
        ({"POLL_INTERVAL_MIN": "40", "POLL_INTERVAL_MAX": "40"}, (40, 40, 40)),
    ],
)
def test_explicit_bounds_are_kept_as_given(
    env: dict[str, str], expected: tuple[float, float, float]
) -> None:
    assert intervals(**env) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"POLL_INTERVAL_MIN": "120"}, (120, 120, 300)),
        ({"POLL_INTERVAL_MAX": "30"}, (30, 15, 30)),
        ({"POLL_INTERVAL_MIN": "500"}, (500, 500, 500)),
        ({"POLL_INTERVAL_MAX": "5"}, (5, 5, 5)),
        ({"POLL_INTERVAL_MIN": "10", "POLL_INTERVAL_MAX": "20"}, (20, 10, 20)),
        ({"POLL_INTERVAL_MIN": "100", "POLL_INTERVAL_MAX": "200"}, (100, 100, 200)),
    ],
)
def test_an_unset_interval_is_clamped_into_the_explicit_bounds(
    env: dict[str, str], expected: tuple[float, float, float]
) -> None:
    assert intervals(**env) == expected


def test_empty_interval_variables_count_as_unset() -> None:
    assert intervals(POLL_INTERVAL="5", POLL_INTERVAL_MIN="", POLL_INTERVAL_MAX="  ") == (5, 5, 300)
    assert intervals(POLL_INTERVAL="", POLL_INTERVAL_MIN="120") == (120, 120, 300)


@pytest.mark.parametrize(
    ("env", "variable", "other"),
    [
        (
            {"POLL_INTERVAL": "5", "POLL_INTERVAL_MIN": "10"},
            "POLL_INTERVAL",
            "POLL_INTERVAL_MIN (10)",
        ),
        (
            {"POLL_INTERVAL": "600", "POLL_INTERVAL_MAX": "300"},
            "POLL_INTERVAL",
            "POLL_INTERVAL_MAX (300)",
        ),
        (
            {"POLL_INTERVAL": "50", "POLL_INTERVAL_MIN": "10", "POLL_INTERVAL_MAX": "40"},
            "POLL_INTERVAL",
            "POLL_INTERVAL_MAX (40)",
        ),
        (
            {"POLL_INTERVAL_MIN": "200", "POLL_INTERVAL_MAX": "100"},
            "POLL_INTERVAL_MIN",
            "POLL_INTERVAL_MAX (100)",
        ),
    ],
)
def test_explicit_values_that_conflict_name_both_variables(
    env: dict[str, str], variable: str, other: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, **env})
    message = str(caught.value)
    assert caught.value.variable == variable
    assert message.startswith(f"{variable}: ")
    assert other in message
    assert f"(got {env[variable]})" in message
    assert "\n" not in message


def test_slack_tokens_and_the_client_secret_are_masked_too() -> None:
    settings = load_settings(
        {
            **BASE,
            "SLACK_BOT_TOKEN": "xoxb-bot-token-789",
            "SLACK_APP_TOKEN": "xapp-app-token-012",
            "SLACK_CHANNEL_ID": "C0123ABCD",
            "WEBHOOK_ADDR": "127.0.0.1:8001",
            "INTERCOM_CLIENT_SECRET": "client-secret-345",
        }
    )
    assert set(settings.secrets()) == {
        "tok-secret-123",
        "sk-secret-456",
        "xoxb-bot-token-789",
        "xapp-app-token-012",
        "client-secret-345",
    }


def test_a_webhook_needs_the_client_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "WEBHOOK_ADDR": "0.0.0.0:8001"})
    assert caught.value.variable == "INTERCOM_CLIENT_SECRET"
    assert "WEBHOOK_ADDR" in str(caught.value)
    settings = load_settings({**BASE, "INTERCOM_CLIENT_SECRET": "s3cret-value"})
    assert settings.webhook_addr == "" and settings.sweep_interval == 900


@pytest.mark.parametrize(("raw", "ok"), [("0", True), ("60", True), ("30", False), ("x", False)])
def test_the_sweep_interval_is_off_or_at_least_a_minute(raw: str, ok: bool) -> None:
    env = {**BASE, "SWEEP_INTERVAL": raw}
    if ok:
        assert load_settings(env).sweep_interval == float(raw)
    else:
        with pytest.raises(ConfigError, match="SWEEP_INTERVAL"):
            load_settings(env)
