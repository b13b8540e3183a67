"""The fake Slack speaks the real protocols: the SDK's WebClient, AsyncWebClient and
Bolt's Socket Mode handlers (aiohttp-based async one and the built-in sync one) work
against it unchanged."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import aiohttp
import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack import FakeSlack

APPROVER = "U0ALICE"

REVIEW_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "draft", "text": {"type": "mrkdwn", "text": "*Draft*"}},
    {
        "type": "actions",
        "block_id": "review",
        "elements": [
            {
                "type": "button",
                "action_id": action,
                "text": {"type": "plain_text", "text": action.title()},
                "value": "conv-1",
            }
            for action in ("approve", "edit", "reject")
        ],
    },
]


def edit_modal(draft: str, *, metadata: str = "conv-1") -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "edit_answer",
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Edit the answer"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "answer",
                "label": {"type": "plain_text", "text": "Answer"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "multiline": True,
                    "initial_value": draft,
                },
            }
        ],
    }


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def web(slack: FakeSlack) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.api_url)


def post_review(web: WebClient, slack: FakeSlack) -> str:
    ts: str = web.chat_postMessage(channel=slack.channel_id, text="Review", blocks=REVIEW_BLOCKS)[
        "ts"
    ]
    return ts


# --------------------------------------------------------------------------- Web API


def test_auth_test_with_the_bot_token_and_invalid_auth_otherwise(
    slack: FakeSlack, web: WebClient
) -> None:
    assert slack.api_url.endswith("/api/")
    me = web.auth_test()
    assert (me["ok"], me["team_id"], me["user_id"], me["bot_id"]) == (
        True,
        "T0TEAM",
        "U0BOT",
        "B0BOT",
    )
    assert me["url"].startswith("https://")
    with pytest.raises(SlackApiError) as err:
        WebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test()
    assert err.value.response["error"] == "invalid_auth"
    assert err.value.response.status_code == 200
    assert [(c.method, c.token_kind, c.error) for c in slack.calls] == [
        ("auth.test", "bot", None),
        ("auth.test", "invalid", "invalid_auth"),
    ]


def test_apps_connections_open_needs_the_app_token(slack: FakeSlack, web: WebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        web.apps_connections_open(app_token=slack.bot_token)
    assert err.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as err:
        WebClient(token=slack.app_token, base_url=slack.api_url).auth_test()
    assert err.value.response["error"] == "not_allowed_token_type"
    url = web.apps_connections_open(app_token=slack.app_token)["url"]
    assert url.startswith(f"ws://127.0.0.1:{slack.port}/link/?ticket=")


def test_post_update_and_ephemeral_are_recorded(slack: FakeSlack, web: WebClient) -> None:
    first = web.chat_postMessage(channel=slack.channel_id, text="Review", blocks=REVIEW_BLOCKS)
    second = web.chat_postMessage(channel=slack.channel_id, text="another")
    assert first["channel"] == slack.channel_id
    assert first["message"]["blocks"] == REVIEW_BLOCKS
    assert float(second["ts"]) > float(first["ts"])
    assert len(first["ts"].split(".")[1]) == 6

    # chat.update without blocks keeps them; form-encoded blocks (api_call data=) work too
    web.chat_update(channel=slack.channel_id, ts=first["ts"], text="Approved by <@U0ALICE>")
    web.api_call(
        "chat.update",
        data={"channel": slack.channel_id, "ts": first["ts"], "blocks": "[]"},
    )
    msg = slack.message(first["ts"])
    assert msg is not None
    assert (msg.text, msg.blocks) == ("Approved by <@U0ALICE>", [])
    assert [u["blocks"] for u in msg.updates] == [REVIEW_BLOCKS, []]
    assert [c.transport for c in slack.calls_to("chat.update")] == ["json", "form"]

    with pytest.raises(SlackApiError) as err:
        web.chat_update(channel=slack.channel_id, ts="1.000001", text="x")
    assert err.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel="C0NOPE", text="x")
    assert err.value.response["error"] == "channel_not_found"

    eph = web.chat_postEphemeral(channel=slack.channel_id, user=APPROVER, text="Not allowed")
    assert eph["message_ts"]
    assert [(e.user, e.text) for e in slack.ephemerals] == [(APPROVER, "Not allowed")]
    info = web.conversations_info(channel=slack.channel_id)["channel"]
    assert (info["id"], info["name"], info["is_member"]) == (slack.channel_id, "review", True)
    assert [m.ts for m in slack.messages] == [first["ts"], second["ts"]]
    assert slack.validation_errors == []


def test_blocks_slack_would_reject_are_invalid_blocks(slack: FakeSlack, web: WebClient) -> None:
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel=slack.channel_id, text="x", blocks=too_long)
    assert err.value.response["error"] == "invalid_blocks"
    assert (
        "json-pointer:/blocks/0/text/text" in err.value.response["response_metadata"]["messages"][0]
    )
    web.chat_postMessage(
        channel=slack.channel_id,
        text="x",
        blocks=[too_long[0] | {"text": {"type": "mrkdwn", "text": "x" * 3000}}],
    )
    with pytest.raises(SlackApiError) as err:
        web.api_call("chat.postMessage", data={"channel": slack.channel_id, "blocks": "{}"})
    assert err.value.response["error"] == "invalid_blocks"
    assert len(slack.validation_errors) == 2


def test_unescaped_broadcast_mentions_are_noticed(slack: FakeSlack, web: WebClient) -> None:
    web.chat_postMessage(channel=slack.channel_id, text="customer: &lt;!channel&gt; help")
    assert slack.broadcast_mentions == []
    web.chat_postMessage(
        channel=slack.channel_id,
        text="x",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "<!here> help"}}],
    )
    assert len(slack.broadcast_mentions) == 1


def test_views_open_needs_a_fresh_trigger(slack: FakeSlack, web: WebClient) -> None:
    trigger = slack.issue_trigger(APPROVER)
    view = web.views_open(trigger_id=trigger, view=edit_modal("draft"))["view"]
    assert view["id"].startswith("V")
    assert (view["callback_id"], view["private_metadata"]) == ("edit_answer", "conv-1")
    assert [(v.id, v.user_id) for v in slack.views_opened] == [(view["id"], APPROVER)]

    for trigger_id, error in [
        (trigger, "exchanged_trigger_id"),
        (slack.issue_trigger(APPROVER, age=3.5), "expired_trigger_id"),
        ("123.456.abc", "invalid_trigger_id"),
    ]:
        with pytest.raises(SlackApiError) as err:
            web.views_open(trigger_id=trigger_id, view=edit_modal("draft"))
        assert err.value.response["error"] == error

    for bad in (edit_modal("x" * 3001), edit_modal("x", metadata="m" * 3001)):
        with pytest.raises(SlackApiError) as err:
            web.views_open(trigger_id=slack.issue_trigger(), view=bad)
        assert err.value.response["error"] == "invalid_arguments"
    assert len(slack.validation_errors) == 2


def test_ratelimited_is_retried_by_the_sdk_handler_or_surfaces(slack: FakeSlack) -> None:
    retrying = WebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.fail_next("chat.postMessage", "ratelimited")
    started = time.monotonic()
    assert retrying.chat_postMessage(channel=slack.channel_id, text="hi")["ok"]
    assert 1.0 <= time.monotonic() - started < 3.0  # Retry-After: 1 plus up to 1 s jitter
    assert [c.error for c in slack.calls_to("chat.postMessage")] == ["ratelimited", None]

    plain = WebClient(token=slack.bot_token, base_url=slack.api_url)
    slack.fail_next("chat.update", "ratelimited")
    with pytest.raises(SlackApiError) as err:
        plain.chat_update(channel=slack.channel_id, ts="1.1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "1"
    slack.fail_next("chat.postMessage", "internal_error", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError, match="internal_error"):
            plain.chat_postMessage(channel=slack.channel_id, text="x")
    assert plain.chat_postMessage(channel=slack.channel_id, text="x")["ok"]


def test_response_url_replaces_the_message(slack: FakeSlack, web: WebClient) -> None:
    ts = post_review(web, slack)
    with pytest.raises(RuntimeError, match="no open Socket Mode connection"):
        slack.send_block_action(APPROVER, "approve")
    url = web.apps_connections_open(app_token=slack.app_token)["url"]

    async def click() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            assert (await ws.receive_json(timeout=2))["type"] == "hello"
            envelope_id = await asyncio.to_thread(slack.send_block_action, APPROVER, "approve")
            envelope: dict[str, Any] = await ws.receive_json(timeout=2)
            assert envelope == slack.envelope(envelope_id)
            await ws.send_json({"envelope_id": envelope_id})
            assert await asyncio.to_thread(slack.wait_ack, envelope_id, 2) is not None
            return envelope

    envelope = asyncio.run(click())
    payload = envelope["payload"]
    assert (envelope["type"], envelope["accepts_response_payload"]) == ("interactive", False)
    assert payload["actions"][0] | {"action_ts": "-"} == {
        "action_id": "approve",
        "block_id": "review",
        "value": "conv-1",
        "type": "button",
        "text": {"type": "plain_text", "text": "Approve"},
        "action_ts": "-",
    }
    assert payload["container"]["message_ts"] == ts == payload["message"]["ts"]
    assert payload["message"]["blocks"] == REVIEW_BLOCKS
    WebhookClient(payload["response_url"]).send(text="Approved", replace_original=True)
    msg = slack.message(ts)
    assert msg is not None and (msg.text, msg.blocks) == ("Approved", [])
    assert [r.body["text"] for r in slack.responses] == ["Approved"]


# --------------------------------------------------------------------------- Socket Mode


class AsyncBolt:
    """An AsyncApp behind AsyncSocketModeHandler, on its own loop in a daemon thread."""

    def __init__(
        self,
        slack: FakeSlack,
        register: Callable[[AsyncApp], None],
        *,
        ping_interval: float = 1.0,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bolt", daemon=True)
        self.thread.start()

        async def build() -> AsyncSocketModeHandler:
            # Build inside the loop: the aiohttp SocketModeClient starts a task in __init__.
            app = AsyncApp(client=AsyncWebClient(token=slack.bot_token, base_url=slack.api_url))
            register(app)
            handler = AsyncSocketModeHandler(app, slack.app_token, ping_interval=ping_interval)
            await handler.connect_async()  # type: ignore[no-untyped-call]
            return handler

        self.handler: AsyncSocketModeHandler = self.run(build())

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> float:
        """Close the handler, cancel what is left, stop the loop; returns seconds taken."""

        async def shutdown() -> None:
            await self.handler.close_async()  # type: ignore[no-untyped-call]
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        started = time.monotonic()
        self.run(shutdown())
        took = time.monotonic() - started
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        return took


def reconnect_and_click(slack: FakeSlack, cut: Callable[[], None]) -> tuple[float, float]:
    """Cut the connection, wait for the client's new one, click: (reconnect s, ack s)."""
    opened = slack.connections_opened
    started = time.monotonic()
    cut()
    assert slack.wait_connected(10, min_opened=opened + 1)
    reconnected = time.monotonic() - started
    envelope = slack.send_block_action(APPROVER, "approve")
    assert slack.wait_ack(envelope, 3.0) == {"envelope_id": envelope}
    latency = slack.ack_latency(envelope)
    assert latency is not None
    return reconnected, latency


def test_async_bolt_review_flow(slack: FakeSlack, web: WebClient) -> None:
    seen: list[tuple[str, str]] = []

    def register(app: AsyncApp) -> None:
        @app.action("approve")
        async def approve(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            seen.append(("approve", body["user"]["id"]))
            await client.chat_update(
                channel=body["channel"]["id"], ts=body["message"]["ts"], text="Approved", blocks=[]
            )

        @app.action("edit")
        async def edit(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            await client.views_open(trigger_id=body["trigger_id"], view=edit_modal("the draft"))

        @app.action("reject")
        async def reject(ack: Any) -> None:
            raise RuntimeError("listener failed before ack()")

        @app.view("edit_answer")
        async def submit(ack: Any, view: dict[str, Any]) -> None:
            text = view["state"]["values"]["answer"]["text"]["value"]
            if len(text) > 10:
                await ack(response_action="errors", errors={"answer": "Too long"})
            else:
                await ack()

    ts = post_review(web, slack)
    bolt = AsyncBolt(slack, register)
    try:
        assert slack.wait_connected(5)
        assert slack.connection_count == 1

        envelope = slack.send_block_action(APPROVER, "approve")
        assert slack.wait_ack(envelope, 3) == {"envelope_id": envelope}
        latency = slack.ack_latency(envelope)
        assert latency is not None and latency < 1.0
        (update,) = slack.wait_calls("chat.update")
        assert (update.token_kind, update.args["ts"], update.error) == ("bot", ts, None)
        assert seen == [("approve", APPROVER)]
        # AsyncApp calls auth.test lazily, on the first request, not at start
        assert [c.method for c in slack.calls][:3] == [
            "chat.postMessage",
            "apps.connections.open",
            "auth.test",
        ]

        # Edit: the trigger from the click opens the modal within 3 s
        envelope = slack.send_block_action(APPROVER, "edit", message_ts=ts)
        assert slack.wait_ack(envelope, 3) is not None
        (opened,) = slack.wait_calls("views.open")
        assert opened.error is None
        (view,) = slack.views_opened
        assert view.user_id == APPROVER

        envelope = slack.send_view_submission(
            APPROVER, callback_id="edit_answer", values={"answer": {"text": "far too long"}}
        )
        assert slack.wait_ack(envelope, 3) == {
            "envelope_id": envelope,
            "payload": {"response_action": "errors", "errors": {"answer": "Too long"}},
        }
        envelope = slack.send_view_submission(
            APPROVER, callback_id="edit_answer", values={"answer": {"text": "short"}}
        )
        assert slack.wait_ack(envelope, 3) == {"envelope_id": envelope}

        # A listener that raises before ack(): Bolt answers 500 and sends no ack at all
        envelope = slack.send_block_action(APPROVER, "reject")
        assert slack.wait_ack(envelope, 0.5) is None

        # Slack retrying an envelope: Bolt runs the listener again and acks again
        first = slack.send_block_action(APPROVER, "approve")
        assert slack.wait_ack(first, 3) is not None
        slack.replay(first)
        assert slack.wait_ack(first, 3, nth=2) is not None
        assert len(seen) == 3

        refresh = reconnect_and_click(slack, slack.disconnect)
        drop = reconnect_and_click(slack, slack.drop_connections)  # noticed on the ping tick
        print(f"\nasync handler: refresh {refresh}, drop (ping_interval=1) {drop}")
        assert refresh[0] < 1.0 and refresh[1] < 1.0
        assert drop[0] < 3.0 and drop[1] < 1.0
        assert slack.connection_count == 1
    finally:
        took = bolt.close()
    print(f"async handler: close_async {took:.3f} s")
    assert took < 0.5
    deadline = time.monotonic() + 2
    while slack.connection_count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert slack.connection_count == 0


def test_via_sends_an_envelope_on_the_chosen_open_connection(
    slack: FakeSlack, web: WebClient
) -> None:
    """Slack spreads an app's events over its open connections: `via` picks one (0 is the
    oldest), so a test can make a click reach a chosen replica."""
    seen: list[tuple[str, str]] = []

    def replica(name: str) -> Callable[[AsyncApp], None]:
        def register(app: AsyncApp) -> None:
            @app.action("approve")
            async def approve(ack: Any) -> None:
                await ack()
                seen.append((name, "approve"))

            @app.view("edit_answer")
            async def submit(ack: Any) -> None:
                await ack()
                seen.append((name, "submit"))

        return register

    post_review(web, slack)
    with pytest.raises(RuntimeError, match="no open Socket Mode connection"):
        slack.send_block_action(APPROVER, "approve", via=0)
    first = AsyncBolt(slack, replica("first"))
    second = None
    try:
        assert slack.wait_connected(5)
        second = AsyncBolt(slack, replica("second"))
        assert slack.wait_connected(5, min_opened=2)
        oldest, newest = slack.open_connections

        def click(via: int | None = None) -> str:
            envelope = slack.send_block_action(APPROVER, "approve", via=via)
            assert slack.wait_ack(envelope, 3) is not None
            return envelope

        click()  # by default: the newest, as before
        to_first = click(via=0)
        click(via=1)
        slack.replay(to_first, via=1)  # a retry may reach the other connection
        assert slack.wait_ack(to_first, 3, nth=2) is not None
        submitted = slack.send_view_submission(
            APPROVER, callback_id="edit_answer", values={"answer": {"text": "hi"}}, via=0
        )
        assert slack.wait_ack(submitted, 3) is not None
        assert seen == [
            ("second", "approve"),
            ("first", "approve"),
            ("second", "approve"),
            ("second", "approve"),
            ("first", "submit"),
        ]
        assert [a.connection for a in slack.acks] == [newest, oldest, newest, newest, oldest]
        with pytest.raises(IndexError, match="2 Socket Mode connection"):
            slack.send_block_action(APPROVER, "approve", via=2)
        with pytest.raises(IndexError):
            slack.replay(to_first, via=-1)

        second.close()
        second = None
        deadline = time.monotonic() + 2
        while slack.open_connections != [oldest] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert slack.open_connections == [oldest]
        click(via=0)
        assert seen[-1] == ("first", "approve")
        with pytest.raises(IndexError):
            slack.send_block_action(APPROVER, "approve", via=1)
    finally:
        if second is not None:
            second.close()
        first.close()


def test_builtin_socket_mode_handler(slack: FakeSlack, web: WebClient) -> None:
    app = App(client=WebClient(token=slack.bot_token, base_url=slack.api_url))
    assert [c.method for c in slack.calls] == ["auth.test"]  # the sync App checks at once

    @app.action("approve")
    def approve(ack: Any) -> None:
        ack()

    post_review(web, slack)
    handler = SocketModeHandler(app, slack.app_token)
    handler.connect()  # type: ignore[no-untyped-call]
    try:
        assert slack.wait_connected(5)
        envelope = slack.send_block_action(APPROVER, "approve")
        assert slack.wait_ack(envelope, 3) == {"envelope_id": envelope}
        # Slack closes the old socket shortly (0.2 s) after refresh_requested; until it
        # does, the built-in client's reader is stuck on the old socket (recv timeout 3 s).
        refresh = reconnect_and_click(slack, slack.disconnect)
        print(f"\nbuilt-in handler: refresh {refresh}")
        assert refresh[0] < 1.0 and refresh[1] < 1.0
    finally:
        started = time.monotonic()
        handler.close()  # type: ignore[no-untyped-call]
        print(f"built-in handler: close {time.monotonic() - started:.3f} s")


def test_connection_limit_hello_and_a_fast_stop() -> None:
    async def scenario(slack: FakeSlack) -> tuple[list[Any], Any, float]:
        web = AsyncWebClient(token=slack.app_token, base_url=slack.api_url)
        async with aiohttp.ClientSession() as session:
            sockets = []
            hellos = []
            for _ in range(10):
                url = (await web.apps_connections_open(app_token=slack.app_token))["url"]
                ws = await session.ws_connect(url)
                hellos.append(await ws.receive_json(timeout=2))
                sockets.append(ws)
            url = (await web.apps_connections_open(app_token=slack.app_token))["url"]
            extra = await session.ws_connect(url)
            refused = await extra.receive_json(timeout=2)
            started = time.monotonic()
            await asyncio.to_thread(slack.stop)
            took = time.monotonic() - started
            closing = await sockets[0].receive(timeout=2)
            return hellos, (refused, closing.type), took

    slack = FakeSlack().start()
    try:
        hellos, (refused, closing), took = asyncio.run(scenario(slack))
    finally:
        slack.stop()
    assert hellos[0]["type"] == "hello"
    assert hellos[0]["connection_info"] == {"app_id": slack.app_id}
    assert [h["num_connections"] for h in hellos] == list(range(1, 11))
    assert (refused["type"], refused["reason"]) == ("disconnect", "too_many_websockets")
    assert slack.connections_refused == 1 and slack.connections_opened == 10
    assert closing in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert took < 0.5
