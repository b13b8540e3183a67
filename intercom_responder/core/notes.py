"""The internal notes the daemon writes in Intercom: escaped, marked, and saying why.

Every note carries `NOTE_MARKER`, so that a restart (or a lost state file) recognises
the daemon's own notes and never posts the same hand-off twice. Model text and error
text are escaped: the AI never writes HTML into Intercom.
"""

from __future__ import annotations

from collections.abc import Sequence

from .conversation import NOTE_MARKER
from .draft import Draft
from .language import language_name
from .markup import text_to_html
from .policy import Action, Decision
from .records import RouteTaken


def review_note_html(draft: Draft, decision: Decision, *, knowledge: Sequence[str] = ()) -> str:
    """The internal note a teammate sees: why, how sure, and the draft, all escaped."""
    headline = (
        "Handed to the team: please answer this customer. The AI stays out of this "
        "conversation until a teammate has replied."
        if decision.action is Action.HANDOFF
        else "Draft reply for review: it was <b>not</b> sent to the customer."
    )
    parts = [
        f"<p><b>{NOTE_MARKER}</b> {headline}</p>",
        f"<p><b>Why a human:</b> {_inline(decision.reason)}</p>",
        f"<p><b>Confidence:</b> {draft.confidence:.2f}</p>",
    ]
    if draft.language or draft.sentiment:
        seen = [f"{language_name(draft.language)} ({draft.language})"] if draft.language else []
        seen += [f"sounds {draft.sentiment}"] if draft.sentiment else []
        parts.append(f"<p><b>Customer:</b> {_inline(', '.join(seen))}</p>")
    if draft.reasoning:
        parts.append(f"<p><b>Model's reasoning:</b> {_inline(draft.reasoning)}</p>")
    if knowledge:
        lines = "<br>".join(_inline(line) for line in knowledge)
        parts.append(f"<p><b>Documentation given to the draft:</b><br>{lines}</p>")
    if draft.answer.strip():
        parts.append("<p><b>Draft:</b></p>")
        parts.append(text_to_html(draft.answer))
    else:
        parts.append("<p>(no draft)</p>")
    return "".join(parts)


def _inline(text: str) -> str:
    """Escaped text for inside a paragraph."""
    html = text_to_html(text)
    if html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
        return html[3:-4]
    return html.replace("<p>", "").replace("</p>", "<br>")


def failure_note_html(attempts: int, reason: str) -> str:
    """The note that tells the team the daemon gave up on a message (a dead letter)."""
    return (
        f"<p><b>{NOTE_MARKER}</b> Could not answer this conversation automatically "
        f"after {attempts} attempts. Please answer it yourself.</p>"
        f"<p>Last error: {text_to_html(reason) or 'unknown'}</p>"
    )


#: In every routing note, so that a restart finds it and does not post it again.
ROUTING_NOTE_MARK = "Routing:"


def routing_note_html(route: RouteTaken, *, fallback_team_id: str | None) -> str:
    """Which team got the conversation and why, or why none did (all escaped)."""
    if route.team_id:
        team = _inline(route.team_name or route.team_id)
        head = f"Routed to <b>{team}</b> (confidence {route.confidence:.2f})"
    elif fallback_team_id:
        head = f"Not routed by the model; assigned to HANDOFF_TEAM_ID {fallback_team_id}"
    else:
        head = "Not routed by the model; left unassigned (no HANDOFF_TEAM_ID)"
    why = f": {_inline(route.reason)}" if route.reason else ""
    return f"<p><b>{NOTE_MARKER}</b> {ROUTING_NOTE_MARK} {head}{why}</p>"
