"""Prometheus metrics: one registry per daemon, named `intercom_responder_*`.

Handoff reasons are labelled by the policy rule (a short, fixed code), never by the
free-text reason, so the number of series stays small.
"""

from __future__ import annotations

from typing import Any


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        prefix = "intercom_responder"
        self.polls = Counter(f"{prefix}_polls", "Poll cycles run", registry=r)
        self.poll_failures = Counter(f"{prefix}_poll_failures", "Poll cycles failed", registry=r)
        self.conversations_seen = Counter(
            f"{prefix}_conversations_seen", "Conversations read in full", registry=r
        )
        self.replies_sent = Counter(
            f"{prefix}_replies_sent", "Replies sent to customers", ["source"], registry=r
        )
        self.review_notes = Counter(
            f"{prefix}_review_notes", "Drafts posted as internal notes for review", registry=r
        )
        self.reviews_requested = Counter(
            f"{prefix}_reviews_requested", "Drafts sent to Slack for review", registry=r
        )
        self.review_outcomes = Counter(
            f"{prefix}_review_outcomes", "Slack reviews decided", ["outcome"], registry=r
        )
        self.handoffs = Counter(
            f"{prefix}_handoffs", "Conversations handed to the team", ["reason"], registry=r
        )
        self.routed_handoffs = Counter(
            f"{prefix}_routed_handoffs", "Hand-offs by the team routing chose", ["team"], registry=r
        )
        self.away_messages = Counter(
            f"{prefix}_away_messages",
            "AWAY_MESSAGE replies sent outside BUSINESS_HOURS",
            registry=r,
        )
        self.routed_tickets = Counter(
            f"{prefix}_routed_tickets", "Tickets assigned by routing, by team", ["team"], registry=r
        )
        self.routing_fallbacks = Counter(
            f"{prefix}_routing_fallbacks",
            "Hand-offs and tickets routing could not place, by cause",
            ["cause"],
            registry=r,
        )
        self.errors = Counter(
            f"{prefix}_errors", "Failures by dependency", ["dependency"], registry=r
        )
        self.dead_letters = Counter(
            f"{prefix}_dead_letters", "Messages given up after MAX_ATTEMPTS", registry=r
        )
        self.webhook_requests = Counter(
            f"{prefix}_webhook_requests",
            "Webhook requests by outcome (accepted, bad_signature, bad_body, too_large)",
            ["outcome"],
            registry=r,
        )
        self.sweeps = Counter(
            f"{prefix}_sweeps", "Searches without the waiting_since filter", registry=r
        )
        self.intercom_calls = Counter(f"{prefix}_intercom_calls", "Intercom API calls", registry=r)
        self.rate_limit_waits = Counter(
            f"{prefix}_intercom_rate_limit_waits", "Waits for Intercom's rate limit", registry=r
        )
        self.rate_limit_wait_seconds = Counter(
            f"{prefix}_intercom_rate_limit_wait_seconds",
            "Seconds spent waiting for Intercom's rate limit (summed over the workers)",
            registry=r,
        )
        self.llm_latency = Histogram(
            f"{prefix}_llm_latency_seconds",
            "Time of one draft from the responder",
            ["responder"],
            buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.oldest_waiting = Gauge(
            f"{prefix}_oldest_waiting_message_age_seconds",
            "Age of the oldest customer message still waiting on the daemon (0: none)",
            registry=r,
        )
        self.breaker_open = Gauge(
            f"{prefix}_circuit_open",
            "1 while a dependency's breaker is open",
            ["dependency"],
            registry=r,
        )
        self.poll_interval = Gauge(
            f"{prefix}_poll_interval_seconds", "Current (adaptive) poll interval", registry=r
        )

    def rate_limit_waited(self, seconds: float) -> None:
        self.rate_limit_waits.inc()
        self.rate_limit_wait_seconds.inc(seconds)

    def breaker_changed(self, name: str, state: str) -> None:
        self.breaker_open.labels(dependency=name).set(1 if state == "open" else 0)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (tests and the health body)."""
        sample: Any = self.registry.get_sample_value(name, labels or {})
        return float(sample) if sample is not None else 0.0
