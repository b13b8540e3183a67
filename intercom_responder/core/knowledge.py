"""Knowledge sources in the answer memory: what a piece carries, and what a sync changes.

A document (a help-center article, a file of the team's folder) is stored as pieces,
each one memory entry whose metadata says where it comes from. The sync compares what
a source has now with what the memory holds and changes only the difference: a
document whose version is complete in the memory is left alone; any other is added
piece by piece (a piece already there is not added again) and then its other pieces
(an older version, a duplicate) are removed; a document the source no longer has is
removed. Adding before removing, and planning from what is stored, is what lets an
interrupted sync end, on the next run, with the memory one uninterrupted run leaves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from .knowledge_text import (
    Piece,
    cut_pieces,
    heading_label,
    html_sections,
    markdown_sections,
    plain_sections,
)

ARTICLE = "article"
DOCUMENT = "document"
SOURCES = (ARTICLE, DOCUMENT)


@dataclass(frozen=True)
class KnowledgeDocument:
    source: str  # ARTICLE or DOCUMENT
    doc_id: str  # the article id, or the path relative to the documents folder
    title: str
    url: str | None
    version: str  # changes whenever the content does: updated_at, or a content hash
    updated_at: str  # as the source gives it (seconds since 1970, or the file's mtime)
    pieces: tuple[Piece, ...]

    def entries(self) -> list[tuple[str, dict[str, str]]]:
        """Each piece as (text to embed, metadata): the title and headings are embedded
        with the text, so a question about the subject finds the piece."""
        count = str(len(self.pieces))
        entries = []
        for piece in self.pieces:
            heading = heading_label(piece.heading_path)
            metadata = {
                "source": self.source,
                "doc_id": self.doc_id,
                "title": self.title,
                "url": self.url or "",
                "heading": heading,
                "doc_updated_at": self.updated_at,  # not "updated_at": Mem0 owns that key
                "version": self.version,
                "index": str(piece.index),
                "count": count,
                "text": piece.text,
                "piece_key": piece_key(self, piece),
            }
            embedded = "\n".join(part for part in (self.title, heading) if part)
            entries.append((f"{embedded}\n\n{piece.text}" if embedded else piece.text, metadata))
        return entries


def piece_key(document: KnowledgeDocument, piece: Piece) -> str:
    """Names one piece of one version: the same key is never stored twice."""
    payload = "\x00".join(
        (document.source, document.doc_id, document.version, str(piece.index), piece.text)
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


class StoredLike(Protocol):
    """What the plan needs of a stored piece (the adapter's `StoredPiece`)."""

    @property
    def id(self) -> str: ...
    @property
    def metadata(self) -> Mapping[str, str]: ...


@dataclass
class DocumentPlan:
    """The changes one document needs: entries to add, stored pieces to remove."""

    doc_id: str
    status: str  # "added", "replaced", "unchanged", "removed"
    add: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)  # memory ids


def plan_document(document: KnowledgeDocument, stored: Sequence[StoredLike]) -> DocumentPlan:
    """What to change so that the memory holds exactly this version of the document."""
    wanted = document.entries()
    wanted_keys = {metadata["piece_key"] for _, metadata in wanted}
    kept: set[str] = set()
    remove: list[str] = []
    for piece in stored:
        key = piece.metadata.get("piece_key", "")
        if key in wanted_keys and key not in kept:
            kept.add(key)
        else:  # another version, or a second copy of a piece
            remove.append(piece.id)
    add = [(text, metadata) for text, metadata in wanted if metadata["piece_key"] not in kept]
    if not add and not remove:
        status = "unchanged"
    elif not stored:
        status = "added"
    else:
        status = "replaced"
    return DocumentPlan(document.doc_id, status, add, remove)


def group_by_document(stored: Iterable[StoredLike]) -> dict[str, list[StoredLike]]:
    grouped: dict[str, list[StoredLike]] = {}
    for piece in stored:
        grouped.setdefault(piece.metadata.get("doc_id", ""), []).append(piece)
    return grouped


# --------------------------------------------------------------------------- in drafts


class PieceLike(Protocol):
    """What the prompt and the notes need of a knowledge hit (the adapter's `KnowledgeHit`)."""

    @property
    def text(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def source(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def heading(self) -> str: ...


P = TypeVar("P", bound=PieceLike)


def used_pieces(pieces: Sequence[P], sources: Iterable[int]) -> list[P]:
    """The pieces the model says it used: numbers from 1; one it was not given is ignored."""
    used: list[P] = []
    for number in sources:
        if 1 <= number <= len(pieces) and pieces[number - 1] not in used:
            used.append(pieces[number - 1])
    return used


def cite(answer: str, used: Sequence[PieceLike]) -> str:
    """The reply, ending with the link of each article it used that it does not name yet."""
    links: list[str] = []
    for piece in used:
        if piece.source == ARTICLE and piece.url and piece.url not in links:
            links.append(piece.url)
    if not links or not answer.strip():
        return answer
    missing = [url for url in links if url not in answer]
    if not missing:
        return answer
    # no label: the reply is in the customer's language, a link is in every language
    return answer.rstrip() + "\n\n" + "\n".join(missing)


def piece_label(title: str | None, heading: str | None) -> str:
    """ "Refunds > How to ask for a refund": where a piece stands, for people and the model."""
    return " > ".join(part for part in (title, heading) if part) or "(untitled)"


def describe_pieces(pieces: Sequence[PieceLike], sources: Iterable[int]) -> list[str]:
    """One line per piece a draft was given, marked when the draft used it (for people)."""
    used = used_pieces(pieces, sources)
    lines = []
    for number, piece in enumerate(pieces, start=1):
        where = piece_label(piece.title, piece.heading)
        link = f" {piece.url}" if piece.url else ""
        mark = "used" if piece in used else "given"
        lines.append(f"[{number}] {mark}: {where} ({piece.source}, {piece.score:.2f}){link}")
    return lines


# --------------------------------------------------------------------------- sources


def article_document(data: Mapping[str, object]) -> KnowledgeDocument | str:
    """A help-center article as pieces, or why it is not for customer answers.

    Only published articles: a draft is not what the team tells customers yet. An
    article the team switched off for AI chatbots (`ai_chatbot_availability: false`),
    or one shown to a restricted audience, is left out too: the daemon must not tell
    every customer what only some may read. Multilingual articles: the default
    language only (what the list gives).
    """
    if data.get("state") != "published":
        return "not published"
    if data.get("ai_chatbot_availability") is False:
        return "switched off for AI chatbots"
    if data.get("help_center_audience") == "restricted":
        return "restricted audience"
    article_id = data.get("id")
    if article_id in (None, ""):
        return "no id"
    body = data.get("body")
    title = str(data.get("title") or "").strip()
    pieces = [
        _without_title(piece, title)
        for piece in cut_pieces(html_sections(body if isinstance(body, str) else ""))
    ]
    if not pieces:
        return "empty"
    updated_at = data.get("updated_at")
    url = data.get("url")
    return KnowledgeDocument(
        source=ARTICLE,
        doc_id=str(article_id),
        title=title or f"article {article_id}",
        url=url if isinstance(url, str) and url else None,
        version=str(updated_at),
        updated_at=str(updated_at),
        pieces=tuple(pieces),
    )


def _without_title(piece: Piece, title: str) -> Piece:
    """An article body often opens with its own title as a heading: named once is enough."""
    path = piece.heading_path
    if path and path[0].casefold() == title.casefold():
        return replace(piece, heading_path=path[1:])
    return piece


#: File endings read as Markdown or HTML; any other text file is read as plain text.
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".mkd"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})


def file_document(relative_path: str, text: str, *, updated_at: str) -> KnowledgeDocument | str:
    """A document of the team's folder as pieces (keyed by its path and content hash)."""
    suffix = "." + relative_path.rsplit(".", 1)[-1].lower() if "." in relative_path else ""
    if suffix in MARKDOWN_SUFFIXES:
        sections = markdown_sections(text)
    elif suffix in HTML_SUFFIXES:
        sections = html_sections(text)
    else:
        sections = plain_sections(text)
    pieces = cut_pieces(sections)
    if not pieces:
        return "empty"
    first_heading = next((s.heading_path[0] for s in sections if s.heading_path), "")
    stem = relative_path.rsplit("/", 1)[-1]
    return KnowledgeDocument(
        source=DOCUMENT,
        doc_id=relative_path,
        title=first_heading or stem,
        url=None,
        version=hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
        updated_at=updated_at,
        pieces=tuple(pieces),
    )
