"""Review messages: escaped, within Slack's limits, with the contract's action ids."""

from __future__ import annotations

import json

from intercom_responder.core.slack_blocks import (
    SECTION_LIMIT,
    ReviewContent,
    cut,
    decided_blocks,
    edit_modal,
    escape,
    mention,
    outcome_text,
    parse_modal_metadata,
    review_blocks,
)

CONTENT = ReviewContent(
    conversation_id="123",
    customer_name="Ada <!channel>",
    customer_text="Hi <!channel> & <@U123ABC>, see <https://evil.example|this>",
    draft="Sure <b>thing</b> & more",
    confidence=0.42,
    reasoning="not in the docs <!here>",
    reason="confidence 0.42 is below the threshold 0.80",
    conversation_url="https://app.intercom.com/a/inbox/abc/inbox/conversation/123",
)


def texts(blocks: list[dict[str, object]]) -> str:
    return json.dumps(blocks)


def test_review_message_has_the_three_buttons_with_the_contract_ids() -> None:
    blocks = review_blocks(CONTENT)
    [actions] = [b for b in blocks if b["type"] == "actions"]
    elements = actions["elements"]
    assert [e["action_id"] for e in elements] == ["approve", "edit", "reject"]
    assert all(e["value"] == "123" for e in elements)


def test_customer_and_model_text_can_ping_nobody() -> None:
    rendered = texts(review_blocks(CONTENT))
    for dangerous in ("<!channel>", "<@U123ABC>", "<!here>", "<https://evil.example|this>", "<b>"):
        assert dangerous not in rendered
    assert "&lt;!channel&gt;" in rendered and "&lt;@U123ABC&gt;" in rendered
    assert "&amp; more" in rendered
    # our own link to the conversation is a real link
    link = "<https://app.intercom.com/a/inbox/abc/inbox/conversation/123|conversation 123>"
    assert link in rendered
    assert "0.42" in rendered and "below the threshold" in rendered


def test_long_texts_are_cut_within_the_section_limit() -> None:
    huge = ReviewContent(**{**CONTENT.__dict__, "customer_text": "&" * 10_000, "draft": "<" * 9000})
    for block in review_blocks(huge):
        if block["type"] == "section":
            text = block["text"]["text"]  # type: ignore[index]
            assert len(text) <= SECTION_LIMIT
            body = text.removesuffix(" [...]")
            assert not body.endswith(("&", "&a", "&am", "&amp", "&l", "&lt"))


def test_cut_never_splits_an_entity() -> None:
    escaped = escape("a&b")  # a&amp;b
    for limit in range(1, len(escaped) + 8):
        result = cut(escaped, limit, marker="~")
        assert len(result) <= max(limit, 1)
        body = result.rstrip("~")
        assert "&" not in body or body.count("&") == body.count(";")


def test_decided_message_has_no_buttons_and_shows_the_outcome() -> None:
    outcome = outcome_text("Approved", user_id="U999", at=0, detail="sent to the customer")
    blocks = decided_blocks(CONTENT, outcome)
    assert all(b["type"] != "actions" for b in blocks)
    assert blocks[-1]["text"]["text"] == (  # type: ignore[index]
        "*Approved* by <@U999> at 1970-01-01 00:00 UTC: sent to the customer"
    )


def test_only_real_user_ids_become_mentions() -> None:
    assert mention("U0123ABC") == "<@U0123ABC>"
    assert mention("<!channel>") == "&lt;!channel&gt;"


def test_edit_modal_is_prefilled_and_carries_only_ids() -> None:
    modal = edit_modal("123", "1700000000.000100", "x" * 5000)
    [block] = modal["blocks"]
    assert block["element"]["initial_value"] == "x" * 3000
    assert block["element"]["multiline"] is True
    assert modal["private_metadata"] == "123|1700000000.000100"
    assert parse_modal_metadata(modal["private_metadata"]) == ("123", "1700000000.000100")
    assert parse_modal_metadata("garbage") is None
    assert parse_modal_metadata("abc|1") is None


def test_the_documentation_a_draft_was_given_is_listed_escaped() -> None:
    from dataclasses import replace

    content = replace(
        CONTENT,
        knowledge=(
            "[1] used: Refunds > How <!channel> (article, 0.81) https://help.example.test/1",
            "[2] given: Guide (document, 0.40)",
        ),
    )
    shown = texts(review_blocks(content))
    assert "*Documentation given to the draft*" in shown
    assert "[1] used: Refunds &gt; How &lt;!channel&gt;" in shown
    assert "[2] given: Guide (document, 0.40)" in shown
    assert "Documentation given" not in texts(review_blocks(CONTENT))  # none: no section
