"""HTML <-> text for Intercom message bodies.

Intercom hands us conversation parts as HTML and expects replies as HTML, while the
LLM and the humans reviewing drafts work best on plain text. Both directions live
here, free of I/O, so they can be tested in isolation and so there is exactly one
place that decides what customer HTML means and what markup we are willing to send.

The reader is a single compiled regular expression plus a small state machine rather
than ``html.parser``: on CPython 3.11 before 3.11.13, ``HTMLParser`` is quadratic on
some malformed input (CVE-2025-6069; ``"<!--" * 250_000`` takes over a minute), and even on
well-formed, tag-dense bodies it is several times slower than one regex scan. Customer
input is untrusted, so the reader must stay linear whatever it is fed.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Iterable, Sequence
from urllib.parse import unquote

__all__ = ["attachment_labels", "html_to_text", "text_to_html"]

# Attribute text inside a tag. A quote starts a value only right after "=", as in
# browsers, so "<img alt=don't>" does not swallow the rest of the message. Unlike
# browsers, an unterminated quoted value ends the tag at the next ">" instead of
# hiding everything up to the end of the body. Every branch may give way to the
# one-character branch, which stops only at ">", so a tag match never fails once
# started and never backtracks; only the last quote of a body can scan to its end.
_ATTRS = r"""(?:=\s*(?:"[^"]*"|'[^']*')|[^>])*"""

_TOKEN_RE = re.compile(
    # One leading literal "<" lets the regex engine skip text at C speed.
    r"<(?:"
    # Comments, including "<!-->" and unterminated ones (which swallow the rest).
    r"!--(?:-?>|.*?(?:--!?>|\Z))"
    # Raw-text elements whose content must never reach the output.
    r"|(?P<raw>script|style)(?=[\s/>]|\Z)" + _ATTRS + r"(?:>|\Z)"
    r".*?(?:</(?P=raw)(?=[\s/>]|\Z)[^>]*(?:>|\Z)|\Z)"
    # Ordinary start and end tags.
    r"|(?P<end>/?)(?P<name>[A-Za-z][^\s/>]*)(?P<attrs>" + _ATTRS + r")(?:>|\Z)"
    # Doctype, CDATA, processing instructions and other bogus comments.
    r"|[!?/][^>]*(?:>|\Z)"
    r")",
    re.DOTALL | re.IGNORECASE,
)
#: The same tokenizer for other readers of HTML (knowledge_text finds headings with it).
HTML_TOKEN_RE = _TOKEN_RE

_ATTR_RE = re.compile(r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"?|'([^']*)'?|([^\s>]*)))?""")

# Input without any of these is treated as plain text, so that a body someone typed
# without markup keeps its line breaks and "if a<b" is not taken for a tag.
_KNOWN_TAGS = (
    "a|abbr|address|article|aside|b|big|blockquote|body|br|caption|center|cite|code|"
    "col|colgroup|dd|del|details|dfn|div|dl|dt|em|figcaption|figure|font|footer|form|"
    "h[1-6]|head|header|hr|html|i|iframe|img|ins|kbd|label|li|link|main|mark|meta|"
    "nav|ol|p|pre|q|s|samp|section|small|span|strike|strong|style|script|sub|summary|"
    "sup|table|tbody|td|tfoot|th|thead|title|tr|tt|u|ul|var|wbr"
)
_HTML_HINT_RE = re.compile(
    r"<(?:!--|!doctype|/?(?:" + _KNOWN_TAGS + r")(?=[\s/>]|\Z))", re.IGNORECASE
)
_ANY_TAG_RE = re.compile(r"<[^>]*>?")

_WS_RE = re.compile(r"\s+")
_URL_CONTROL_RE = re.compile(r"[\t\n\r]")
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*:(?://)?")
_URL_AUTHORITY_RE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?//[^/]*")
_FILE_NAME_RE = re.compile(r"[^/\\]{1,120}\.[A-Za-z0-9]{1,8}")
_URL_TAIL_RE = re.compile(r"[?#]")

_PARAGRAPH_TAGS = frozenset(
    {
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "address",
        "article",
        "aside",
        "center",
        "details",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "main",
        "nav",
        "section",
        "table",
    }
)
_LINE_TAGS = frozenset({"tr", "dt", "dd", "summary", "caption", "legend"})
_CELL_TAGS = frozenset({"td", "th"})
_LIST_TAGS = frozenset({"ul", "ol"})
_STRUCTURAL_TAGS = (
    _PARAGRAPH_TAGS
    | _LINE_TAGS
    | _CELL_TAGS
    | _LIST_TAGS
    | frozenset({"a", "br", "hr", "img", "li", "pre"})
)
_TRACKING_PIXEL_SIZES = frozenset({"0", "1", "0px", "1px"})

# Indentation stops growing here: deeper nesting is still readable, and without a cap
# 100 000 unclosed <ul> would cost gigabytes of leading spaces.
_MAX_INDENT = 10
_INDENT = tuple("  " * depth for depth in range(_MAX_INDENT + 1))


def html_to_text(html: str | None) -> str:
    """Turn an Intercom body into text an LLM and a reviewer can read.

    Customer bodies are untrusted and often malformed (pasted e-mails, truncated
    parts), and one bad message must not stop the daemon, so this never raises:
    should the reader ever fail, the tags are stripped crudely instead.
    """
    if not html:
        return ""
    source = html.replace("\r\n", "\n").replace("\r", "\n")
    if _HTML_HINT_RE.search(source) is None:
        return _plain_text(source)
    try:
        return _render(source)
    except Exception:  # a safety net for the daemon, not a code path we expect
        return _plain_text(_ANY_TAG_RE.sub(" ", source))


def text_to_html(text: str) -> str:
    """Turn a draft into HTML that Intercom shows exactly as written.

    Drafts come from an LLM that may echo customer input, so every character is
    escaped: a draft can never carry markup, links or scripts into Intercom, only
    visible text. Paragraphs and line breaks are the only structure we keep, which
    is also exactly what ``html_to_text`` reads back.
    """
    paragraphs: list[str] = []
    current: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = line.strip()
        if stripped:
            current.append(_html.escape(stripped, quote=True))
        elif current:
            paragraphs.append("<p>" + "<br>".join(current) + "</p>")
            current = []
    if current:
        paragraphs.append("<p>" + "<br>".join(current) + "</p>")
    return "".join(paragraphs)


def attachment_labels(attachments: Sequence[object] | None) -> list[str]:
    """Name a part's attachments, because a message that is only a file has no body.

    Without these labels the LLM would see an empty message and guess; with them it
    (and the reviewer) knows a file was sent even though it cannot read it.
    """
    labels: list[str] = []
    for item in attachments or ():
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        clean = _WS_RE.sub(" ", name).strip() if isinstance(name, str) else ""
        labels.append(f"[attachment: {clean}]" if clean else "[attachment]")
    return labels


def _plain_text(source: str) -> str:
    """Keep a tagless body's own line breaks, which HTML rules would throw away."""
    if "&" in source:
        source = _html.unescape(source)
    return _join_lines(_WS_RE.sub(" ", line).strip() for line in source.split("\n"))


def _join_lines(lines: Iterable[str]) -> str:
    """Allow at most one blank line in a row, whatever the markup asked for."""
    out: list[str] = []
    blank = True
    for line in lines:
        if line:
            out.append(line)
            blank = False
        elif not blank:
            out.append("")
            blank = True
    return "\n".join(out).strip()


def _render(source: str) -> str:
    """Feed the tokens to a builder; text between tokens is character data."""
    builder = _TextBuilder()
    text = builder.text
    tag = builder.tag
    pos = 0
    for match in _TOKEN_RE.finditer(source):
        start, end = match.span()
        if start > pos:
            text(source[pos:start])
        pos = end
        name, closing, attrs = match.group("name", "end", "attrs")
        if name is not None:
            name = name.lower()
            if name in _STRUCTURAL_TAGS:  # most tags (span, b, font, ...) change nothing
                tag(name, bool(closing), attrs)
    if pos < len(source):
        text(source[pos:])
    return builder.finish()


def _attributes(raw: str) -> dict[str, str]:
    """Parse only when a tag's attributes matter, which is rare, to keep scans cheap."""
    found: dict[str, str] = {}
    for match in _ATTR_RE.finditer(raw):
        key, double, single, bare = match.group(1, 2, 3, 4)
        key = key.lower()
        if key in found:  # the first occurrence wins, as in browsers
            continue
        value = double or single or bare or ""
        found[key] = _html.unescape(value) if "&" in value else value
    return found


def _link_target(href: str) -> str:
    """What a reader needs from an href: the address of a mailto, nothing of a script.

    ``javascript:``/``data:`` targets and in-page anchors carry nothing a reader
    could follow, so only the label is kept for them.
    """
    if not href.isprintable():  # browsers drop tabs and newlines inside URLs
        href = _WS_RE.sub(" ", _URL_CONTROL_RE.sub("", href))
    href = href.strip()
    head = href[:11].lower()
    if head.startswith("mailto:"):
        return unquote(href[7:].split("?", 1)[0]).strip()
    if head.startswith("tel:"):
        return unquote(href[4:]).strip()
    if head.startswith(("#", "javascript:", "vbscript:", "data:")):
        return ""
    return href


def _same_link(label: str, target: str) -> bool:
    """Let "example.com" match "https://www.example.com/" so it is not shown twice."""
    if label == target:
        return True
    if not any(mark in label for mark in ".:/@"):
        return False  # plain words ("click here") never canonicalise to a URL
    return _canonical_link(label) == _canonical_link(target)


def _canonical_link(value: str) -> str:
    value = _SCHEME_RE.sub("", value.strip().lower())
    if value.startswith("www."):
        value = value[4:]
    return value.rstrip("/")


def _image_file_name(src: str) -> str:
    """A file name tells the LLM what a screenshot is about; opaque ids do not."""
    src = src.strip()
    if not src or src[:5].lower() == "data:":
        return ""
    path = _URL_AUTHORITY_RE.sub("", _URL_TAIL_RE.split(src, maxsplit=1)[0])
    name = _WS_RE.sub(" ", unquote(path.rsplit("/", 1)[-1])).strip()
    return name if _FILE_NAME_RE.fullmatch(name) else ""


class _List:
    """One open ``<ul>``/``<ol>``; nesting depth is the length of the stack."""

    __slots__ = ("count", "ordered")

    def __init__(self, ordered: bool, count: int) -> None:
        self.ordered = ordered
        self.count = count


class _TextBuilder:
    """Collects output line by line so a 1 MB body costs one join, not a quadratic concat.

    Breaks are not written when a tag asks for them but remembered in ``pending``
    (1: new line, 2: blank line) and written only before the next visible text, so
    empty paragraphs, stray end tags and trailing breaks cost nothing. Whitespace is
    collapsed once per finished line rather than once per text run, which keeps the
    per-token work small on tag-dense bodies.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.cur: list[str] = []  # text runs of the open line, not yet collapsed
        self.prefix = ""  # list marker or indent of the open line
        self.raw = False  # the open line is preformatted: keep its whitespace
        self.line_open = False
        self.pending = 0
        self.lists: list[_List] = []
        self.indent = ""  # continuation indent for the current list depth
        self.marker: str | None = None
        self.pre = 0
        self.pre_fresh = False
        self.link_href: str | None = None
        self.link_parts: list[str] | None = None

    def tag(self, name: str, closing: bool, raw_attrs: str) -> None:
        """Map the tags that shape text to breaks, markers and labels."""
        if closing:
            if name in _PARAGRAPH_TAGS:
                self._block(2)
            elif name == "a":
                self._link_end()
            elif name == "li":
                self.marker = None
                self._block(1)
            elif name in _LIST_TAGS:
                if self.lists:
                    self.lists.pop()
                    self.indent = _INDENT[min(len(self.lists), _MAX_INDENT)]
                self.marker = None
                self._block(2)
            elif name in _LINE_TAGS:
                self._block(1)
            elif name == "pre":
                if self.pre:
                    self.pre -= 1
                self._block(2)
            elif name == "br":  # browsers read a stray </br> as <br>
                self._br()
            return
        if name in _PARAGRAPH_TAGS:
            self._block(2)
        elif name == "br":
            self._br()
        elif name == "a":
            self._link_start(_attributes(raw_attrs).get("href"))
        elif name == "img":
            self._image(_attributes(raw_attrs))
        elif name == "li":
            self._item_start()
        elif name in _LIST_TAGS:
            self._list_start(name == "ol", raw_attrs)
        elif name in _LINE_TAGS:
            self._block(1)
        elif name in _CELL_TAGS:
            self._emit(" ")  # keep table cells from running into each other
        elif name == "pre":
            self._block(2)
            self.pre += 1
            self.pre_fresh = True
        elif name == "hr":
            self._block(2)

    def text(self, data: str) -> None:
        """Decode entities here, once per text run, since tags never contain them."""
        if "&" in data:
            data = _html.unescape(data)
        if self.link_parts is not None:
            self.link_parts.append(data)
        elif self.pre:
            self._pre_text(data)
        else:
            self._emit(data)

    def finish(self) -> str:
        """Close what the HTML left open; unclosed tags are normal in pasted e-mail."""
        self._link_end()
        if self.line_open:
            self._close_line()
        return _join_lines(self.lines)

    def _emit(self, data: str) -> None:
        """Add inline text; whitespace alone never opens a line, so it never indents."""
        if self.link_parts is not None:
            self.link_parts.append(data)
            return
        if self.pending or not self.line_open:
            if data.isspace():
                return
            self._open_line(self.pre > 0)
        self.cur.append(data)

    def _close_line(self) -> None:
        content = "".join(self.cur)
        if not self.raw:
            content = _WS_RE.sub(" ", content).strip()
        self.lines.append((self.prefix + content).rstrip())

    def _open_line(self, raw: bool) -> None:
        """Write the remembered break, then start the line with its list indent."""
        if self.line_open:
            self._close_line()
            if self.pending == 2:
                self.lines.append("")
        if self.marker is not None:
            self.prefix = self.marker
            self.marker = None
        else:
            self.prefix = self.indent
        self.cur = []
        self.raw = raw
        self.line_open = True
        self.pending = 0

    def _block(self, level: int) -> None:
        """Ask for a break; inside a list a paragraph only starts a new line."""
        if self.link_parts is not None:
            self.link_parts.append(" ")
            return
        if level == 2 and self.lists:
            level = 1
        if level > self.pending:
            self.pending = level

    def _br(self) -> None:
        """Count ``<br>``s, unlike blocks: ``<br><br>`` is how people write a gap."""
        if self.link_parts is not None:
            self.link_parts.append(" ")
        elif self.line_open:
            self.pending = 2 if self.pending else 1

    def _pre_text(self, data: str) -> None:
        """Keep preformatted text as written: its spacing usually means something."""
        data = data.replace("\xa0", " ")
        if self.pre_fresh:  # the newline right after <pre> is not content in HTML
            self.pre_fresh = False
            if data[:1] == "\n":
                data = data[1:]
        for index, part in enumerate(data.split("\n")):
            if index and not self.pending and self.line_open:
                # A newline before any text of the block adds nothing, hence the test.
                self._close_line()
                self.cur = []
                self.prefix = self.indent
                self.raw = True
            if part:
                if self.pending or not self.line_open:
                    self._open_line(True)
                self.cur.append(part)

    def _list_start(self, ordered: bool, raw_attrs: str) -> None:
        self._block(2)
        start = 1
        if ordered:
            try:
                start = int(_attributes(raw_attrs).get("start", "1").strip())
            except ValueError:
                start = 1
        self.lists.append(_List(ordered, start - 1))
        self.indent = _INDENT[min(len(self.lists), _MAX_INDENT)]

    def _item_start(self) -> None:
        """Number items as they come, so a list never needs to be buffered."""
        if self.link_parts is not None:
            self.link_parts.append(" ")
            return
        if self.lists:
            current = self.lists[-1]
            current.count += 1
            bullet = f"{current.count}. " if current.ordered else "- "
            depth = len(self.lists)
        else:  # an <li> outside any list still reads best as a bullet
            bullet = "- "
            depth = 1
        self.marker = _INDENT[min(depth - 1, _MAX_INDENT)] + bullet
        if self.pending < 1:
            self.pending = 1

    def _link_start(self, href: str | None) -> None:
        """Buffer the label: whether to show the URL depends on the whole label."""
        if self.link_parts is not None:  # <a> cannot nest; the old one ends here
            self._link_end()
        self.link_href = href
        self.link_parts = []

    def _link_end(self) -> None:
        parts = self.link_parts
        if parts is None:
            return
        href = self.link_href
        self.link_parts = None
        self.link_href = None
        raw = _WS_RE.sub(" ", "".join(parts))
        label = raw.strip()
        target = _link_target(href) if href else ""
        if not target:
            shown = label
        elif not label or _same_link(label, target):
            shown = target
        else:
            shown = f"{label} ({target})"
        if shown:
            lead = " " if raw[:1] == " " else ""
            trail = " " if raw[-1:] == " " else ""
            self._emit(lead + shown + trail)
        elif raw:
            self._emit(raw)

    def _image(self, attrs: dict[str, str]) -> None:
        """Say an image was there: customers often answer with only a screenshot."""
        if (
            attrs.get("width", "").strip() in _TRACKING_PIXEL_SIZES
            or attrs.get("height", "").strip() in _TRACKING_PIXEL_SIZES
        ):
            return  # e-mail tracking pixels are noise, not content
        alt = _WS_RE.sub(" ", attrs.get("alt", "")).strip()
        name = alt or _image_file_name(attrs.get("src", ""))
        self._emit(f" [image: {name}] " if name else " [image] ")
