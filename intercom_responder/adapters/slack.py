"""Slack review: the Web API for review messages, Bolt in Socket Mode for the clicks.

Two halves, so that neither needs the other: `SlackWeb` posts and updates review
messages from the poller's threads with the synchronous Web API client; `SlackSocket`
receives clicks and modal submits (no public endpoint, same process as the poller) and
hands each one to the `ReviewHooks` it was built with.

Bolt runs on its own asyncio loop in a background thread with the aiohttp Socket Mode
handler (it reconnects in milliseconds; the built-in one goes deaf for seconds after a
reconnect). Every click is acknowledged first, within Slack's 3 seconds; the decision
itself runs in a worker thread.

If Slack is down or a token is wrong at start, one line is logged, the daemon runs on,
and reviews fall back to internal notes (`connected` is clear) while the socket keeps
trying to connect in the background.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.slack_blocks import (
    APPROVE,
    EDIT,
    EDIT_ACTION_ID,
    EDIT_BLOCK_ID,
    EDIT_CALLBACK_ID,
    REJECT,
    ReviewContent,
    decided_blocks,
    edit_modal,
    fallback_text,
    parse_modal_metadata,
    review_blocks,
)
from ..core.text import describe
from ..defaults import (
    SLACK_API_URL,
    SLACK_DECISION_WAIT_SECONDS,
    SLACK_PING_SECONDS,
    SLACK_RECONNECT_SECONDS,
    SLACK_TIMEOUT,
)
from ..errors import Dependency, IntercomResponderError

log = logging.getLogger(__name__)

NOT_ALLOWED = "You are not allowed to act on AI reviews here. Ask a teammate who is."


class ReviewError(IntercomResponderError):
    """Slack refused or could not be reached; the caller falls back to a note."""

    dependency = Dependency.SLACK


@dataclass(frozen=True)
class ReviewAction:
    kind: str  # approve, edit, reject
    conversation_id: str
    review_ts: str
    user_id: str
    text: str | None = None  # the edited reply, for edit


class ReviewHooks(Protocol):
    def draft_for_review(self, conversation_id: str, review_ts: str) -> str | None:
        """The draft of a pending review, or None when it is no longer pending."""

    def decide_review(self, action: ReviewAction) -> str | None:
        """Carry out a decision; a returned text is shown privately to the user."""


@dataclass(frozen=True)
class ReviewRef:
    channel: str
    ts: str


class SlackWeb:
    """Review messages through the Web API: post one, show its outcome."""

    def __init__(
        self,
        *,
        bot_token: str,
        channel_id: str,
        api_url: str = SLACK_API_URL,
        timeout: float = SLACK_TIMEOUT,
    ) -> None:
        from slack_sdk import WebClient

        self.channel_id = channel_id
        self._web = WebClient(token=bot_token, base_url=api_url, timeout=int(max(timeout, 1)))

    def post(self, content: ReviewContent) -> ReviewRef:
        response = self._call(
            "chat.postMessage",
            channel=self.channel_id,
            text=fallback_text(content),
            blocks=review_blocks(content),
            unfurl_links=False,
            unfurl_media=False,
        )
        return ReviewRef(
            channel=str(response.get("channel") or self.channel_id), ts=str(response["ts"])
        )

    def show_outcome(self, ref: ReviewRef, content: ReviewContent, outcome: str) -> None:
        self._call(
            "chat.update",
            channel=ref.channel,
            ts=ref.ts,
            text=fallback_text(content),
            blocks=decided_blocks(content, outcome),
        )

    def _call(self, method: str, **arguments: Any) -> dict[str, Any]:
        from slack_sdk.errors import SlackClientError

        try:
            response = self._web.api_call(method, json=arguments)
        except (SlackClientError, OSError) as exc:
            raise ReviewError(f"Slack {method} failed: {slack_error(exc)}") from exc
        return dict(response.data) if isinstance(response.data, dict) else {}


class SlackSocket:
    """Clicks and modal submits over Socket Mode, each checked and handed to `hooks`.

    `connected` is set while the socket is up; the review desk reads it to decide
    between a Slack review and an internal note.
    """

    def __init__(
        self,
        *,
        bot_token: str,
        app_token: str,
        channel_id: str,
        hooks: ReviewHooks,
        api_url: str = SLACK_API_URL,
        approver_ids: Sequence[str] = (),
        connected: threading.Event | None = None,
    ) -> None:
        self._bot_token = bot_token
        self._app_token = app_token
        self.channel_id = channel_id
        self._api_url = api_url
        self._approvers = frozenset(approver_ids)
        self._hooks = hooks
        self.connected = connected or threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._handler: Any = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._deciding: set[asyncio.Task[Any]] = set()  # clicks being carried out

    # --- lifecycle -----------------------------------------------------------------

    def start(self, wait: float = 10.0) -> bool:
        """Connect in the background; True when connected within `wait` seconds."""
        self._thread = threading.Thread(target=self._run_loop, name="slack-review", daemon=True)
        self._thread.start()
        self._started.wait(wait)
        return self.connected.is_set()

    def stop(self, timeout: float = SLACK_DECISION_WAIT_SECONDS + 5.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        self.connected.clear()

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except Exception:
            log.exception("Slack review stopped unexpectedly; reviews fall back to notes")
        finally:
            self.connected.clear()
            self._started.set()
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        first = True
        while not self._stop.is_set():
            try:
                await self._connect()
                self.connected.set()
                log.info("Slack review connected (Socket Mode), channel %s", self.channel_id)
            except Exception as exc:
                self.connected.clear()
                level = logging.ERROR if first else logging.DEBUG
                log.log(
                    level,
                    "Slack review unavailable (%s); reviews go to internal notes, retrying "
                    "every %.0f s",
                    slack_error(exc),
                    SLACK_RECONNECT_SECONDS,
                )
            first = False
            self._started.set()
            if self.connected.is_set():
                await self._stop.wait()
                break
            try:
                await asyncio.wait_for(self._stop.wait(), SLACK_RECONNECT_SECONDS)
            except TimeoutError:
                continue
        deciding = [task for task in self._deciding if not task.done()]
        if deciding:  # a reviewer's click half carried out would leave the store mid-change
            log.info("waiting for %d review decision(s) to finish", len(deciding))
            await asyncio.wait(deciding, timeout=SLACK_DECISION_WAIT_SECONDS)
        if self._handler is not None:
            try:
                await asyncio.wait_for(self._handler.close_async(), 3.0)
            except Exception as exc:  # closing must not hang a shutdown
                log.debug("closing the Slack socket failed: %s", exc)
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:  # the socket client's monitors and any listener still running
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    async def _connect(self) -> None:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
        from slack_bolt.async_app import AsyncApp
        from slack_sdk.web.async_client import AsyncWebClient

        client = AsyncWebClient(token=self._bot_token, base_url=self._api_url)
        auth = await client.auth_test()  # a wrong bot token fails here, with a clear error
        if not auth.get("ok"):
            raise ReviewError(f"auth.test failed: {auth.get('error')}")
        app = AsyncApp(client=client, logger=logging.getLogger("intercom_responder.slack"))
        self._register(app)
        handler = AsyncSocketModeHandler(app, self._app_token, ping_interval=SLACK_PING_SECONDS)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        self._handler = handler

    # --- clicks and modal submits ------------------------------------------------------

    def allowed(self, user_id: str) -> bool:
        return not self._approvers or user_id in self._approvers

    def _register(self, app: Any) -> None:
        for kind in (APPROVE, REJECT):
            app.action(kind)(self._decision_listener(kind))
        app.action(EDIT)(self._open_editor)
        app.view(EDIT_CALLBACK_ID)(self._edited)

    def _decision_listener(self, kind: str) -> Any:
        async def listener(ack: Any, body: dict[str, Any], client: Any) -> None:
            await ack()
            user_id, conversation_id, review_ts, channel = _click(body)
            if not self.allowed(user_id):
                await _ephemeral(client, channel or self.channel_id, user_id, NOT_ALLOWED)
                return
            action = ReviewAction(kind, conversation_id, review_ts, user_id)
            await self._decide(action, client, channel)

        return listener

    async def _open_editor(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        await ack()
        user_id, conversation_id, review_ts, channel = _click(body)
        if not self.allowed(user_id):
            await _ephemeral(client, channel or self.channel_id, user_id, NOT_ALLOWED)
            return
        draft = await asyncio.to_thread(self._hooks.draft_for_review, conversation_id, review_ts)
        if draft is None:
            await _ephemeral(
                client, channel or self.channel_id, user_id, "This review is already decided."
            )
            return
        await client.views_open(
            trigger_id=body.get("trigger_id"), view=edit_modal(conversation_id, review_ts, draft)
        )

    async def _edited(self, ack: Any, body: dict[str, Any], client: Any) -> None:
        user_id = str((body.get("user") or {}).get("id") or "")
        view = body.get("view") or {}
        if not self.allowed(user_id):
            await ack()
            await _ephemeral(client, self.channel_id, user_id, NOT_ALLOWED)
            return
        text = _submitted_text(view)
        if not text.strip():
            await ack(
                response_action="errors", errors={EDIT_BLOCK_ID: "The reply cannot be empty."}
            )
            return
        await ack()
        ids = parse_modal_metadata(str(view.get("private_metadata") or ""))
        if ids is None:
            await _ephemeral(client, self.channel_id, user_id, "This review could not be found.")
            return
        action = ReviewAction(EDIT, ids[0], ids[1], user_id, text=text.strip())
        await self._decide(action, client, self.channel_id)

    async def _decide(self, action: ReviewAction, client: Any, channel: str | None) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._deciding.add(task)
        try:
            note = await asyncio.to_thread(self._hooks.decide_review, action)
        except Exception as exc:  # the decision is recorded as failed by the hooks
            log.exception("conversation %s: review %s failed", action.conversation_id, action.kind)
            note = f"That did not work: {slack_error(exc)}. The conversation was left unchanged."
        finally:
            if task is not None:
                self._deciding.discard(task)
        if note:
            await _ephemeral(client, channel or self.channel_id, action.user_id, note)


def _click(body: dict[str, Any]) -> tuple[str, str, str, str | None]:
    user_id = str((body.get("user") or {}).get("id") or "")
    actions = body.get("actions") or [{}]
    conversation_id = str(actions[0].get("value") or "")
    container = body.get("container") or {}
    message = body.get("message") or {}
    review_ts = str(container.get("message_ts") or message.get("ts") or "")
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    return user_id, conversation_id, review_ts, channel


def _submitted_text(view: dict[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(EDIT_BLOCK_ID) or {}
    field = values.get(EDIT_ACTION_ID) or {}
    return str(field.get("value") or "")


async def _ephemeral(client: Any, channel: str, user_id: str, text: str) -> None:
    try:
        await client.chat_postEphemeral(channel=channel, user=user_id, text=text)
    except Exception as exc:  # telling someone privately must not break the flow
        log.warning("could not tell Slack user %s: %s", user_id, slack_error(exc))


def slack_error(exc: BaseException) -> str:
    """Slack's error code (and the scopes it needs) when it gave one: what a person acts on."""
    response: Any = getattr(exc, "response", None)
    error = response.get("error") if response is not None and hasattr(response, "get") else None
    if not error:
        return describe(exc, 200)
    needed = response.get("needed")
    return f"{error} (needs {needed})" if needed else str(error)
