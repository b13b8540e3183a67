"""Help-center articles and a team's documents, cut into pieces for the knowledge memory.

An embedding finds a passage best when the passage is about one thing and small enough
to be embedded whole, and a person checking an answer wants to see which part of which
article it came from. So a document is first split at its headings into sections, each
remembering the headings above it, and each section is then cut into pieces of about
``PIECE_CHARS`` characters at the most natural boundary there is: paragraphs, then
sentences, then words. A piece never spans two sections, so its heading path always
says where it came from.

Anyone who can edit an article or drop a file in the folder can feed us anything, so
every reader here is linear in its input and none of them raises on malformed markup.
That is also why HTML headings are found with ``markup``'s tokenizer rather than
``html.parser``: on CPython 3.11 before 3.11.13 ``HTMLParser`` is quadratic on some
malformed input (CVE-2025-6069; 200 kB of ``"<!--"`` takes 18 s on 3.11.7), and one
tokenizer means headings and section text agree on where every tag begins and ends.
The text of a section is ``markup.html_to_text`` of the HTML between its headings, so
lists, links and tables read exactly as the rest of the daemon shows them.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from .markup import HTML_TOKEN_RE, html_to_text

__all__ = [
    "PIECE_CHARS",
    "Piece",
    "Section",
    "cut_pieces",
    "heading_label",
    "html_sections",
    "markdown_sections",
    "plain_sections",
]

#: Target size of a piece: a few paragraphs, small enough to embed as one subject.
PIECE_CHARS = 1500

# A heading longer than this is almost always an unclosed tag that swallowed the text
# after it: the path gets a cut of it, and its text is kept as body text, not lost.
_MAX_HEADING_CHARS = 200

_NON_SPACE_RE = re.compile(r"\S")
_BLANK_LINE_RE = re.compile(r"\n\s*\n")
_INVISIBLE = dict.fromkeys(map(ord, "\xad\u200b\u2060\ufeff"))


@dataclass(frozen=True)
class Section:
    """The text under one heading, with the headings above it, outermost first."""

    heading_path: tuple[str, ...]
    text: str  # plain text, no heading line; paragraphs separated by a blank line


@dataclass(frozen=True)
class Piece:
    """One memory entry's worth of a section; ``index`` counts over the whole document."""

    index: int
    heading_path: tuple[str, ...]
    text: str


def heading_label(heading_path: Sequence[str]) -> str:
    """How a piece's place is shown to people and embedded: "Billing > Refunds"."""
    return " > ".join(heading_path)


# --------------------------------------------------------------------------------------
# Sections and heading paths, whatever the format
# --------------------------------------------------------------------------------------


def _enter(stack: list[tuple[int, str]], level: int, title: str) -> tuple[str, ...]:
    """A heading ends every open heading of its level or deeper, then opens its own.

    An empty heading still ends the deeper ones (it starts a new part of the document)
    but adds no entry, so the path never shows a blank step.
    """
    while stack and stack[-1][0] >= level:
        stack.pop()
    if title:
        stack.append((level, title))
    return tuple(entry for _, entry in stack)


def _add(sections: list[Section], path: tuple[str, ...], text: str) -> None:
    """Keep only sections with text: a heading alone has nothing to recall."""
    if text:
        sections.append(Section(path, text))


def _lines(text: str) -> list[str]:
    """Lines with every kind of line ending, and no byte-order mark to hide a heading."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _tidy(lines: Iterable[str]) -> str:
    """Trailing spaces off, at most one blank line in a row, nothing blank at the ends."""
    out: list[str] = []
    blank = True
    for line in lines:
        line = line.rstrip()
        if line:
            out.append(line)
            blank = False
        elif not blank:
            out.append("")
            blank = True
    return "\n".join(out).strip()


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _title_text(text: str) -> str:
    """One line of visible words: soft hyphens and zero-width marks are not shown."""
    return _collapse(text.translate(_INVISIBLE))


def _cut_title(title: str) -> str:
    """Shorten an over-long heading at a word, and say that it was shortened."""
    cut = title[:_MAX_HEADING_CHARS]
    space = cut.rfind(" ")
    if space > _MAX_HEADING_CHARS // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


# --------------------------------------------------------------------------------------
# Plain text
# --------------------------------------------------------------------------------------


def plain_sections(text: str) -> list[Section]:
    """A text file has no headings to go by: one section, tidied."""
    tidy = _tidy(_lines(text)) if text else ""
    return [Section((), tidy)] if tidy else []


# --------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------

_HEADING_LEVELS = {f"h{level}": level for level in range(1, 7)}
# Block start tags that end a heading someone forgot to close, once it has text: without
# this, "<h2>Refunds<p>All of the article..." would put the article in the path.
_HEADING_BREAKERS = frozenset(
    {
        "article",
        "blockquote",
        "div",
        "dl",
        "hr",
        "li",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "ul",
    }
)
# Tags that separate words inside a heading; inline tags ("Bil<b>ling</b>") do not.
_WORD_BREAK_TAGS = _HEADING_BREAKERS | frozenset({"br", "dd", "dt", "td", "th", "tr"})


@dataclass(frozen=True)
class _Heading:
    level: int
    title: str
    start: int  # where the heading's start tag begins: the body before it ends here
    body_start: int  # where the body under it begins


class _OpenHeading:
    """A heading whose end has not been seen yet; its text is gathered run by run."""

    __slots__ = ("content_start", "has_text", "level", "parts", "start")

    def __init__(self, level: int, start: int, content_start: int) -> None:
        self.level = level
        self.start = start
        self.content_start = content_start
        self.parts: list[str] = []
        self.has_text = False

    def add(self, data: str) -> None:
        self.parts.append(data)
        if not self.has_text and not data.isspace():
            self.has_text = True

    def close(self, body_start: int) -> _Heading:
        """Entities decoded, tags gone, whitespace collapsed, as a browser shows it."""
        title = _title_text(_html.unescape("".join(self.parts)))
        if len(title) > _MAX_HEADING_CHARS:
            return _Heading(self.level, _cut_title(title), self.start, self.content_start)
        return _Heading(self.level, title, self.start, body_start)


def html_sections(html: str) -> list[Section]:
    """Split an article at its ``<h1>``..``<h6>``; text before the first has no path.

    Never raises, like ``html_to_text``: should the heading scan ever fail, the whole
    article becomes one section rather than stopping a sync.
    """
    if not html:
        return []
    try:
        return _html_sections(html)
    except Exception:  # a safety net for the sync, not a code path we expect
        return plain_sections(html_to_text(html))


def _html_sections(source: str) -> list[Section]:
    headings = _find_headings(source)
    if not headings:
        return plain_sections(html_to_text(source))
    sections: list[Section] = []
    _add(sections, (), _html_text(source[: headings[0].start]))
    stack: list[tuple[int, str]] = []
    for number, heading in enumerate(headings):
        end = headings[number + 1].start if number + 1 < len(headings) else len(source)
        path = _enter(stack, heading.level, heading.title)
        _add(sections, path, _html_text(source[heading.body_start : end]))
    return sections


def _html_text(chunk: str) -> str:
    """The text of a piece of a document known to be HTML.

    The wrapper keeps ``html_to_text`` from taking a chunk without tags of its own
    ("<h2>A</h2>text") for plain text, whose line breaks HTML would not show.
    """
    if not chunk or chunk.isspace():
        return ""
    return html_to_text("<div>" + chunk + "</div>")


def _find_headings(source: str) -> list[_Heading]:
    """One pass over the tokens; comments, scripts and styles are single tokens.

    So a heading inside a comment or script is never seen, a ``>`` inside a quoted
    attribute does not end a tag, and nested tags inside a heading only add their text.
    A heading ends at any heading end tag (as in browsers), at the next heading, or
    at a block tag once it has text; one left open at the end runs to the end.
    """
    found: list[_Heading] = []
    heading: _OpenHeading | None = None
    pos = 0
    for match in HTML_TOKEN_RE.finditer(source):
        start, end = match.span()
        if heading is not None and start > pos:
            heading.add(source[pos:start])
        pos = end
        name = match.group("name")
        if name is None:  # comment, script, style, doctype: no text, no heading
            continue
        name = name.lower()
        closing = bool(match.group("end"))
        level = _HEADING_LEVELS.get(name)
        if level is not None:
            if heading is not None:
                found.append(heading.close(end if closing else start))
                heading = None
            if not closing:
                heading = _OpenHeading(level, start, end)
        elif heading is not None:
            if not closing and name in _HEADING_BREAKERS and heading.has_text:
                found.append(heading.close(start))
                heading = None
            elif name in _WORD_BREAK_TAGS:
                heading.add(" ")
    if heading is not None:
        if pos < len(source):
            heading.add(source[pos:])
        found.append(heading.close(len(source)))
    return found


# --------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------

_ATX_RE = re.compile(r" {0,3}(#{1,6})(?=[ \t]|$)")
_SETEXT_RE = re.compile(r" {0,3}(=+|-+)[ \t]*$")
_THEMATIC_BREAK_RE = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_FENCE_RE = re.compile(r"( {0,3})(`{3,}(?=[^`]*$)|~{3,})")
# A line that cannot be the text of a setext heading: list item, quote, indented code.
_NOT_SETEXT_TEXT_RE = re.compile(r"(?: {0,3}(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)| {0,3}>| {4}|\t)")
_FRONT_MATTER_KEY_RE = re.compile(r"[A-Za-z0-9_-]+[ \t]*[:=]")

# Each pattern's scan stops at the character that would start another match ("*", "_",
# "[", "`"), so no stretch of a line is scanned twice: linear on any input.
_CODE_SPAN_RE = re.compile(r"(`[^`\n]*`)")
_STRONG_RE = re.compile(r"\*\*(?=\S)([^*\n]+?)(?<=\S)\*\*|(?<!\w)__(?=\S)([^_\n]+?)(?<=\S)__(?!\w)")
_EMPHASIS_RE = re.compile(r"\*(?=\S)([^*\n]+?)(?<=\S)\*|(?<!\w)_(?=\S)([^_\n]+?)(?<=\S)_(?!\w)")
_LINK_RE = re.compile(
    r"(!?)\[([^\[\]\n]*)\]\(\s*<?([^\s()<>\[\]]*)>?(?:\s+\"[^\"\n]*\"|\s+'[^'\n]*')?\s*\)"
)
_AUTOLINK_RE = re.compile(r"<((?:https?|mailto):[^\s<>]+)>")
_ESCAPE_RE = re.compile(r"\\([!-/:-@\[-`{-~])")


@dataclass(frozen=True)
class _Line:
    """A Markdown line as the sections see it: body text, or a heading (level > 0)."""

    level: int
    text: str


@dataclass(frozen=True)
class _Fence:
    mark: str
    length: int

    def closed_by(self, line: str) -> bool:
        """Only the same mark, at least as long, and nothing after it closes a fence."""
        match = _FENCE_RE.match(line)
        if match is None or line[match.end() :].strip():
            return False
        mark = match.group(2)
        return mark[0] == self.mark and len(mark) >= self.length


def markdown_sections(text: str) -> list[Section]:
    """Split a Markdown document at its ATX and setext headings; code is never split."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    path: tuple[str, ...] = ()
    body: list[str] = []
    for line in _markdown_lines(_without_front_matter(_lines(text))):
        if not line.level:
            body.append(line.text)
            continue
        _add(sections, path, _tidy(body))
        body = []
        title = _markdown_title(line.text)
        if len(title) > _MAX_HEADING_CHARS:
            body.append(_clean_markdown_line(line.text))
            title = _cut_title(title)
        path = _enter(stack, line.level, title)
    _add(sections, path, _tidy(body))
    return sections


def _without_front_matter(lines: list[str]) -> list[str]:
    """Drop a YAML (``---``) or TOML (``+++``) block at the very top: metadata, not text.

    Its first line must look like a key, so a document that merely opens with a rule
    and has another one further down keeps everything between them.
    """
    if not lines or lines[0].rstrip() not in ("---", "+++"):
        return lines
    fence = lines[0].rstrip()
    closers = ("---", "...") if fence == "---" else ("+++",)
    for number in range(1, len(lines)):
        if lines[number].rstrip() in closers:
            inside = [line for line in lines[1:number] if line.strip()]
            if inside and _FRONT_MATTER_KEY_RE.match(inside[0]):
                return lines[number + 1 :]
            return lines
    return lines


def _markdown_lines(lines: Iterable[str]) -> Iterator[_Line]:
    """Classify lines; a paragraph line is held back until the next line shows whether
    it is the text of a setext heading.

    ``===`` can only be an underline, so it makes a heading of the line above it. ``---``
    under a line that continues a paragraph is taken for the rule it was surely meant
    to be, rather than turning the whole paragraph into a heading as CommonMark would.
    """
    fence: _Fence | None = None
    held: str | None = None
    held_alone = False  # the held line is a paragraph of its own
    after_break = True  # the line before ended a paragraph (blank line, heading, start)
    for line in lines:
        if fence is not None:
            yield _Line(0, line.rstrip())
            if fence.closed_by(line):
                fence = None
                after_break = True
            continue
        if held is not None:
            text, held = held, None
            underline = _SETEXT_RE.match(line)
            if underline is not None and (held_alone or underline.group(1)[0] == "="):
                yield _Line(1 if underline.group(1)[0] == "=" else 2, text)
                after_break = True
                continue
            yield _Line(0, _clean_markdown_line(text))
        opener = _FENCE_RE.match(line)
        if opener is not None:
            group = opener.group(2)
            fence = _Fence(group[0], len(group))
            yield _Line(0, line.rstrip())
            after_break = False
            continue
        atx = _ATX_RE.match(line)
        if atx is not None:
            yield _Line(len(atx.group(1)), _atx_title(line[atx.end() :]))
            after_break = True
        elif not line.strip() or _THEMATIC_BREAK_RE.match(line):
            yield _Line(0, "")  # a rule reads best as the paragraph break it is
            after_break = True
        elif not _NOT_SETEXT_TEXT_RE.match(line):
            held, held_alone = line.strip(), after_break
            after_break = False
        else:
            yield _Line(0, _clean_markdown_line(line))
            after_break = False
    if held is not None:
        yield _Line(0, _clean_markdown_line(held))


def _atx_title(rest: str) -> str:
    """Drop an optional closing run of ``#``; "C#" keeps its sign, "Title ##" does not."""
    rest = rest.strip()
    bare = rest.rstrip("#")
    if not bare or bare[-1] in " \t":
        return bare.rstrip()
    return rest


def _clean_markdown_line(line: str) -> str:
    """Markdown a person reads easily: no ``**``, links as "label (url)", code as is."""
    line = line.rstrip()
    if not any(mark in line for mark in "*_[<"):
        return line
    parts = _CODE_SPAN_RE.split(line)
    for number in range(0, len(parts), 2):  # the odd parts are code spans
        part = _STRONG_RE.sub(_strong_text, parts[number])
        part = _LINK_RE.sub(_link_text, part)
        parts[number] = _AUTOLINK_RE.sub(r"\1", part)
    return "".join(parts)


def _markdown_title(raw: str) -> str:
    """A heading as plain words: no emphasis, code marks or link targets."""
    if not any(mark in raw for mark in "*_[<`\\&"):
        return _title_text(raw)
    title = _STRONG_RE.sub(_strong_text, raw)
    title = _EMPHASIS_RE.sub(_strong_text, title)
    title = _LINK_RE.sub(lambda match: match.group(2), title)
    title = _AUTOLINK_RE.sub(r"\1", title).replace("`", "")
    return _title_text(_html.unescape(_ESCAPE_RE.sub(r"\1", title)))


def _strong_text(match: re.Match[str]) -> str:
    return match.group(1) if match.group(1) is not None else match.group(2)


def _link_text(match: re.Match[str]) -> str:
    """Links read as ``html_to_text`` shows them; images as a label, like screenshots."""
    image, label, target = match.group(1, 2, 3)
    label = label.strip()
    if image:
        return f"[image: {label}]" if label else "[image]"
    if not target or target.startswith("#"):
        return label
    if not label or label == target:
        return target
    return f"{label} ({target})"


# --------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------

_SENTENCE_ENDS = (". ", ".\n", ".\t", "! ", "!\n", "!\t", "? ", "?\n", "?\t")
_WIDE_SENTENCE_ENDS = ("。", "！", "？")  # they need no space after
_SPACES = (" ", "\n", "\t", "\u3000")


def cut_pieces(sections: Sequence[Section], *, size: int = PIECE_CHARS) -> list[Piece]:
    """Cut each section into pieces of at most ``size`` characters, in order.

    Small sections are not merged: a piece per heading is what a person expects to see
    cited. Pieces never start or end with whitespace and are never empty.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, not {size}")
    pieces: list[Piece] = []
    for section in sections:
        for text in _section_pieces(section.text, size):
            pieces.append(Piece(len(pieces), section.heading_path, text))
    return pieces


def _section_pieces(text: str, size: int) -> Iterator[str]:
    """Fill each piece with whole paragraphs while they fit; cut only those that don't.

    The last part of a cut paragraph starts the next piece, so the paragraphs after it
    can join it instead of leaving a scrap on its own.
    """
    text = text.strip()
    if len(text) <= size:
        if text:
            yield text
        return
    group: list[str] = []
    length = 0
    for paragraph in _paragraphs(text):
        if len(paragraph) > size:
            if group:
                yield "\n\n".join(group)
            *whole, last = _cut_paragraph(paragraph, size)
            yield from whole
            group, length = [last], len(last)
            continue
        if group and length + 2 + len(paragraph) > size:
            yield "\n\n".join(group)
            group, length = [], 0
        length += len(paragraph) + (2 if group else 0)
        group.append(paragraph)
    if group:
        yield "\n\n".join(group)


def _paragraphs(text: str) -> Iterator[str]:
    for paragraph in _BLANK_LINE_RE.split(text):
        paragraph = paragraph.strip()
        if paragraph:
            yield paragraph


def _cut_paragraph(text: str, size: int) -> list[str]:
    """Cut a stripped paragraph longer than ``size``: at sentences, words, or hard.

    Each cut looks only at the next ``size`` characters, and a short piece is only ever
    followed by a long one, so the whole paragraph is scanned a bounded number of times.
    """
    parts: list[str] = []
    start = 0
    while len(text) - start > size:
        end = _cut_point(text, start, size)
        parts.append(text[start:end].rstrip())
        match = _NON_SPACE_RE.search(text, end)
        start = match.start() if match else len(text)
    parts.append(text[start:])
    return parts


def _cut_point(text: str, start: int, size: int) -> int:
    """Where the piece starting at ``start`` ends, at most ``size`` characters on.

    A sentence end is preferred while it leaves the piece at least half full, then a
    space; failing that the later of the two, however early; a word longer than the
    piece, and only that, is cut where the piece is full.
    """
    limit = start + size
    half = start + size // 2
    sentence = _last_sentence_end(text, start, limit)
    if sentence > half:
        return sentence
    space = max(text.rfind(mark, start + 1, limit + 1) for mark in _SPACES)
    if space > half:
        return space
    best = max(sentence, space)
    return best if best > start else limit


def _last_sentence_end(text: str, start: int, limit: int) -> int:
    """The end (just after the mark) of the last sentence within ``text[start:limit]``."""
    best = -1
    for mark in _SENTENCE_ENDS:  # the space after the mark may lie just past the limit
        found = text.rfind(mark, start, limit + 1)
        if found >= 0:
            best = max(best, found + 1)
    for mark in _WIDE_SENTENCE_ENDS:
        found = text.rfind(mark, start, limit)
        if found >= 0:
            best = max(best, found + 1)
    return best
