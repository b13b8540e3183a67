"""What the Slack review tests share: the app's tokens and channel, a reviewer, the unsure
draft, the fake Slack fixture that checks nothing Slack would refuse or ping was sent, a
review posted by a poll, and the Slack message as it is now.

A test module takes the fixture by binding it (`slack = slack_review.slack`), as with
`tests/postgres.py`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from intercom_responder.bootstrap import App
from intercom_responder.core.records import State
from tests.conftest import waiting_customer
from tests.fakes.intercom import FakeIntercom
from tests.fakes.slack import FakeSlack

BOT, APP_TOKEN, CHANNEL = "xoxb-review-secret-0123", "xapp-review-secret-0123", "C0REVIEW"
REVIEWER, OUTSIDER = "U0REVIEWER", "U0OUTSIDER"
DRAFT = "You can change it under Billing > E-mail. <!channel>"


def slack_settings(slack: FakeSlack, **overrides: str) -> dict[str, str]:
    """The settings of Slack review pointed at the fake (a wrong token as an override)."""
    return {
        "SLACK_BOT_TOKEN": BOT,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_CHANNEL_ID": CHANNEL,
        "SLACK_API_URL": slack.api_url,
        **overrides,
    }


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(bot_token=BOT, app_token=APP_TOKEN, channel_id=CHANNEL) as fake:
        yield fake
        assert fake.validation_errors == []
        assert fake.broadcast_mentions == [], "customer or model text pinged a channel"


def posted_review(app: App, intercom: FakeIntercom, *, text: str = "") -> tuple[str, str]:
    """A customer waits; `app`'s poll drafts an unsure reply and posts it for review:
    (conversation id, the review message's ts)."""
    cid = waiting_customer(
        intercom, text or "<p>Can I change my billing e-mail? &lt;!channel&gt;</p>"
    )
    [outcome] = app.poller.poll_once().outcomes
    assert outcome.status == "in review"
    record = app.store.get(cid)
    assert record is not None and record.state == State.IN_REVIEW and record.review is not None
    return cid, str(record.review.ts)


def last_update(slack: FakeSlack, ts: str) -> str:
    """The review message's blocks as they are now, as JSON text."""
    message = slack.message(ts)
    assert message is not None
    return json.dumps(message.blocks)
