"""What the Slack review tests share: the app's tokens and channel, a reviewer, the unsure
draft, and the fake Slack fixture that checks nothing Slack would refuse or ping was sent.

A test module takes the fixture by binding it (`slack = slack_review.slack`), as with
`tests/postgres.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.slack import FakeSlack

BOT, APP_TOKEN, CHANNEL = "xoxb-review-secret-0123", "xapp-review-secret-0123", "C0REVIEW"
REVIEWER, OUTSIDER = "U0REVIEWER", "U0OUTSIDER"
DRAFT = "You can change it under Billing > E-mail. <!channel>"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT, app_token=APP_TOKEN, channel_id=CHANNEL) as fake:
        yield fake
        assert fake.validation_errors == []
        assert fake.broadcast_mentions == [], "customer or model text pinged a channel"
