"""Intercom conversation JSON -> typed messages, and who said what last.

Intercom's `author.type` and `part_type` are free strings, so the classification
here is deliberately conservative: only `comment` parts (and the opening `source`)
are conversation text, only `user`/`lead`/`contact` authors are the customer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Dependency, IntercomResponderError
from .markup import attachment_labels, html_to_text
from .text import one_line

CUSTOMER_TYPES = frozenset({"user", "lead", "contact"})
OUR_SIDE_TYPES = frozenset({"admin", "bot", "team"})

#: Marker put in every internal note the daemon writes, so that a restart (or a lost
#: state file) recognises its own notes and never posts the same hand-off twice.
NOTE_MARKER = "[intercom-responder]"


class ConversationFormatError(IntercomResponderError, ValueError):
    """Intercom answered with JSON this daemon cannot read as a conversation."""

    dependency = Dependency.INTERCOM


@dataclass(frozen=True)
class Attachment:
    """A file a customer sent, as Intercom lists it (the URL is signed: never log it)."""

    name: str
    url: str
    content_type: str
    size: int | None = None  # bytes, when Intercom says

    @property
    def is_image(self) -> bool:
        return self.content_type in IMAGE_CONTENT_TYPES


#: What VISION gives the model to look at.
IMAGE_CONTENT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass(frozen=True)
class Message:
    part_id: str
    kind: str  # "comment" for text, else Intercom's part_type ("note", "assignment", ...)
    author_type: str
    author_id: str
    author_name: str
    body_html: str
    text: str
    created_at: int
    attachments: tuple[Attachment, ...] = ()  # files sent with it (named in `text` too)

    @classmethod
    def typed(cls, text: str, *, part_id: str, created_at: int) -> Message:
        """A customer message that is not in Intercom (`ask`, `eval`): only its text."""
        return cls(
            part_id=part_id,
            kind="comment",
            author_type="user",
            author_id="",
            author_name="",
            body_html="",
            text=text,
            created_at=created_at,
        )

    @property
    def is_customer(self) -> bool:
        return self.author_type in CUSTOMER_TYPES

    @property
    def is_our_side(self) -> bool:
        return self.author_type in OUR_SIDE_TYPES

    @property
    def is_comment(self) -> bool:
        return self.kind == "comment"


@dataclass(frozen=True)
class Conversation:
    id: str
    state: str
    created_at: int
    updated_at: int
    waiting_since: int | None
    admin_assignee_id: str | None  # None when unassigned (0 in 2.16, null before)
    team_assignee_id: str | None
    customer_name: str
    messages: tuple[Message, ...] = field(default_factory=tuple)
    fetched_at: float = 0.0  # local time the request for this copy was sent

    @classmethod
    def from_api(cls, data: Any) -> Conversation:
        """Read `GET /conversations/{id}` (or a reply's answer) into a `Conversation`."""
        if not isinstance(data, dict) or data.get("id") in (None, ""):
            raise ConversationFormatError(
                f"expected a conversation object with an id, got {_describe(data)}"
            )
        conversation_id = str(data["id"])
        try:
            messages = [_source_message(data.get("source"), data)]
            parts_container = data.get("conversation_parts") or {}
            parts = (
                parts_container.get("conversation_parts")
                if isinstance(parts_container, dict)
                else None
            )
            for part in parts or []:
                messages.append(_part_message(part))
            return cls(
                id=conversation_id,
                state=str(data.get("state") or ("open" if data.get("open") else "closed")),
                created_at=_int(data.get("created_at")),
                updated_at=_int(data.get("updated_at")),
                waiting_since=_optional_int(data.get("waiting_since")),
                admin_assignee_id=_assignee(data.get("admin_assignee_id")),
                team_assignee_id=_assignee(data.get("team_assignee_id")),
                customer_name=_customer_name(data),
                messages=tuple(m for m in messages if m is not None),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConversationFormatError(
                f"conversation {conversation_id}: unexpected shape ({exc})"
            ) from exc

    @property
    def comments(self) -> list[Message]:
        return [m for m in self.messages if m.is_comment]

    def last_comment(self) -> Message | None:
        comments = self.comments
        return comments[-1] if comments else None

    def unanswered_customer_messages(
        self, not_answers: frozenset[str] = frozenset()
    ) -> list[Message]:
        """Customer comments after the last comment from our side (teammate, bot, us).

        A burst of three quick messages comes back as three messages, answered once.
        Comments in `not_answers` (our away message) answer nothing: a customer who
        writes after one still waits for the team.
        """
        pending: list[Message] = []
        for message in self.comments:
            if message.is_our_side and message.part_id not in not_answers:
                pending = []
            elif message.is_customer:
                pending.append(message)
        return pending

    def messages_after(self, part_id: str) -> list[Message]:
        """Messages after the part `part_id`; none when that part is not among them.

        An unknown part (or one older than the 500 newest parts Intercom returns) gives an
        empty list, so nothing is taken for an answer to it.
        """
        for index, message in enumerate(self.messages):
            if message.part_id == part_id:
                return list(self.messages[index + 1 :])
        return []

    def our_reply_after(self, part_id: str, admin_id: str) -> Message | None:
        """The comment `admin_id` wrote after customer part `part_id`, if any."""
        for message in self.messages_after(part_id):
            if message.is_comment and message.author_id == admin_id:
                return message
        return None

    def our_note_after(self, part_id: str, admin_id: str) -> Message | None:
        """The daemon's own internal note after customer part `part_id`, if any."""
        for message in self.messages_after(part_id):
            if (
                message.kind == "note"
                and message.author_id == admin_id
                and NOTE_MARKER in message.text
            ):
                return message
        return None

    def transcript(self, limit: int = 20) -> list[Message]:
        """The newest `limit` comments: the context a drafter needs, in order."""
        return self.comments[-limit:]


def _source_message(source: Any, data: dict[str, Any]) -> Message | None:
    if not isinstance(source, dict):
        return None
    author = source.get("author") or {}
    body = source.get("body") or ""
    subject = html_to_text(source.get("subject") or "")
    text = _text_with_attachments(body, source.get("attachments"))
    if subject and subject not in text:
        text = f"{subject}\n\n{text}".strip()
    return Message(
        part_id=str(source.get("id") or f"source-{data.get('id')}"),
        kind="comment",
        author_type=str(author.get("type") or ""),
        author_id=str(author.get("id") or ""),
        author_name=str(author.get("name") or ""),
        body_html=body,
        text=text,
        created_at=_int(data.get("created_at")),
        attachments=_attachments(source.get("attachments")),
    )


def _part_message(part: Any) -> Message:
    if not isinstance(part, dict):
        raise ValueError(f"conversation part is {_describe(part)}")
    author = part.get("author") or {}
    body = part.get("body") or ""
    return Message(
        part_id=str(part.get("id")),
        kind=str(part.get("part_type") or ""),
        author_type=str(author.get("type") or ""),
        author_id=str(author.get("id") or ""),
        author_name=str(author.get("name") or ""),
        body_html=body,
        text=_text_with_attachments(body, part.get("attachments")),
        created_at=_int(part.get("created_at")),
        attachments=_attachments(part.get("attachments")),
    )


def _attachments(raw: Any) -> tuple[Attachment, ...]:
    """The files of a part that can be fetched (a URL); others are only named in the text."""
    found = []
    for item in raw if isinstance(raw, list) else ():
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            continue
        size = item.get("filesize")
        found.append(
            Attachment(
                name=str(item.get("name") or "attachment"),
                url=item["url"],
                content_type=str(item.get("content_type") or "").lower(),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            )
        )
    return tuple(found)


def _text_with_attachments(body: str, attachments: Any) -> str:
    text = html_to_text(body)
    labels = attachment_labels(attachments if isinstance(attachments, list) else None)
    return "\n".join([text, *labels]).strip() if labels else text


def _customer_name(data: dict[str, Any]) -> str:
    source = data.get("source")
    author = source.get("author") if isinstance(source, dict) else None
    if isinstance(author, dict) and author.get("type") in CUSTOMER_TYPES:
        return str(author.get("name") or author.get("email") or "")
    return ""


def _int(value: Any) -> int:
    if value is None:
        return 0
    return int(value)


def _optional_int(value: Any) -> int | None:
    return None if value in (None, "", 0) else int(value)


def _assignee(value: Any) -> str | None:
    if value in (None, "", 0, "0"):
        return None
    return str(value)


def _describe(value: Any) -> str:
    return one_line(repr(value), 120)
