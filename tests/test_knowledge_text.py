"""Tests for intercom_responder.core.knowledge_text: documents -> sections -> pieces."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable

import pytest

from intercom_responder.core.knowledge_text import (
    PIECE_CHARS,
    Piece,
    Section,
    cut_pieces,
    heading_label,
    html_sections,
    markdown_sections,
    plain_sections,
)


def paths(sections: list[Section]) -> list[tuple[str, ...]]:
    return [section.heading_path for section in sections]


def check_pieces(pieces: list[Piece], size: int) -> None:
    """What every caller may rely on, whatever the input."""
    assert [piece.index for piece in pieces] == list(range(len(pieces)))
    for piece in pieces:
        assert piece.text
        assert piece.text == piece.text.strip()
        assert len(piece.text) <= size


# --------------------------------------------------------------------------------------
# heading_label, the dataclasses
# --------------------------------------------------------------------------------------


def test_heading_label() -> None:
    assert heading_label(("Billing", "Refunds")) == "Billing > Refunds"
    assert heading_label(["Billing"]) == "Billing"
    assert heading_label(()) == ""


def test_sections_and_pieces_are_frozen() -> None:
    section = Section(("A",), "text")
    piece = Piece(0, ("A",), "text")
    with pytest.raises(dataclasses.FrozenInstanceError):
        section.text = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        piece.index = 1  # type: ignore[misc]


def test_piece_chars() -> None:
    assert PIECE_CHARS == 1500


# --------------------------------------------------------------------------------------
# html_sections
# --------------------------------------------------------------------------------------


def test_nested_html_headings_make_a_stack() -> None:
    sections = html_sections(
        "<h1>Billing</h1><p>About billing.</p>"
        "<h2>Refunds</h2><p>About refunds.</p>"
        "<h3>Partial</h3><p>About partial refunds.</p>"
        "<h2>Invoices</h2><p>About invoices.</p>"
        "<h1>Account</h1><p>About the account.</p>"
    )
    assert sections == [
        Section(("Billing",), "About billing."),
        Section(("Billing", "Refunds"), "About refunds."),
        Section(("Billing", "Refunds", "Partial"), "About partial refunds."),
        Section(("Billing", "Invoices"), "About invoices."),
        Section(("Account",), "About the account."),
    ]


def test_a_skipped_level_still_nests() -> None:
    sections = html_sections("<h1>A</h1><h3>C</h3><p>c</p><h2>B</h2><p>b</p>")
    assert paths(sections) == [("A", "C"), ("A", "B")]


def test_inline_markup_and_entities_in_headings() -> None:
    sections = html_sections(
        '<h2 id="h_1" class="intercom-align-left"><b>Bil</b><i>ling</i> &amp;\n'
        '   <a href="https://example.com/pay">pay&shy;ments</a>&nbsp;<span>now</span></h2>'
        "<p>x</p>"
        "<h2>Line<br>break</h2><p>y</p>"
        "<H2>Upper <!-- a comment --> case</H2><p>z</p>"
    )
    assert paths(sections) == [("Billing & payments now",), ("Line break",), ("Upper case",)]


def test_text_before_the_first_heading_has_no_path() -> None:
    sections = html_sections("<p>Welcome to the guide.</p><h2>Setup</h2><p>Install it.</p>")
    assert sections == [
        Section((), "Welcome to the guide."),
        Section(("Setup",), "Install it."),
    ]
    assert html_sections("Bare intro text<h2>Setup</h2>Steps") == [
        Section((), "Bare intro text"),
        Section(("Setup",), "Steps"),
    ]


def test_empty_sections_are_dropped_but_their_headings_count() -> None:
    sections = html_sections(
        "<h1>Guide</h1>  <p> </p>"
        "<h2>Empty</h2><div><br></div>"
        "<h3>Deep</h3><p>deep text</p>"
        "<h2>Full</h2><p>full text</p>"
    )
    assert sections == [
        Section(("Guide", "Empty", "Deep"), "deep text"),
        Section(("Guide", "Full"), "full text"),
    ]


def test_an_empty_heading_ends_the_previous_one_but_adds_no_entry() -> None:
    sections = html_sections("<h1>A</h1><h2>B</h2><p>b</p><h2> </h2><p>after</p>")
    assert sections == [Section(("A", "B"), "b"), Section(("A",), "after")]


def test_section_text_comes_from_html_to_text() -> None:
    sections = html_sections(
        "<h2>Steps</h2>"
        "<p>First <b>read</b> this.</p>"
        "<ol><li>Open <a href='https://app.example.com/export'>the export page</a></li>"
        "<li>Click <i>Export</i></li></ol>"
        "<table><tr><th>Plan</th><th>Price</th></tr><tr><td>Pro</td><td>$10</td></tr></table>"
    )
    assert sections == [
        Section(
            ("Steps",),
            "First read this.\n\n"
            "1. Open the export page (https://app.example.com/export)\n"
            "2. Click Export\n\n"
            "Plan Price\n"
            "Pro $10",
        )
    ]


def test_text_between_headings_is_read_as_html() -> None:
    # No tag of its own: still HTML, so its line breaks are not kept.
    assert html_sections("<h2>A</h2>one\ntwo") == [Section(("A",), "one two")]


def test_html_without_headings_is_one_section() -> None:
    assert html_sections("<p>a</p><p>b</p>") == [Section((), "a\n\nb")]
    assert html_sections("just text\nwith a break") == [Section((), "just text\nwith a break")]
    assert html_sections("") == []
    assert html_sections("<p> </p>") == []


def test_script_and_style_are_dropped() -> None:
    sections = html_sections(
        "<style>h2 { color: red } p::after { content: '<h2>x</h2>' }</style>"
        "<h2>Real<script>document.write('<h3>fake</h3>')</script></h2>"
        "<p>text<script type='text/javascript'>var x = '<h2>no</h2>';</script> after</p>"
        "<!-- <h2>commented</h2> -->"
        "<script>unclosed <h2>never</h2> to the end"
    )
    assert sections == [Section(("Real",), "text after")]


def test_a_quoted_greater_than_does_not_end_a_heading_tag() -> None:
    sections = html_sections('<h2 title="a > b">Title</h2><p>text</p>')
    assert sections == [Section(("Title",), "text")]


def test_an_unclosed_heading_ends_at_the_next_block_or_heading() -> None:
    sections = html_sections("<h2>Refunds<p>All about refunds.</p><h2>Next<h3>Deep</h3>d")
    assert sections == [
        Section(("Refunds",), "All about refunds."),
        Section(("Next", "Deep"), "d"),
    ]


def test_a_block_inside_a_heading_before_its_text_is_part_of_it() -> None:
    sections = html_sections("<h2><div>Title</div></h2><p>text</p>")
    assert sections == [Section(("Title",), "text")]


def test_an_over_long_heading_keeps_its_text_in_the_body() -> None:
    words = " ".join(f"word{n}" for n in range(100))
    sections = html_sections(f"<h1>Guide</h1><h2>{words}<b> end</b>")
    assert len(sections) == 1
    (section,) = sections
    assert section.heading_path[0] == "Guide"
    label = section.heading_path[1]
    assert label.endswith("…")
    assert len(label) <= 201
    assert words in section.text


@pytest.mark.parametrize(
    "body",
    [
        "<h2>unclosed",
        "<h2",
        "<h2 class='x",
        "</h2></h3><h1>",
        "<h2><h3><h4>",
        "a < b and c > d <h2>x < y</h2> z",
        "<<<h2>>>title<</h2>>>",
        "<h2>a</h1>b</h6>c",
        "<!-- never closed <h2>x</h2>",
        "<![CDATA[<h2>x</h2>]]>",
        "<h2><script>",
        "<style>",
        "<h2>&#xZZZ;&amp&#99999999;</h2>text",
        "<h2>\x00\ud800</h2>\x00",
        "<h7>not a heading</h7><header>nor this</header>",
        "<table><tr><td><h2>In a cell</h2>cell text",
        "<ul><li><h3>In a list</h3>item</li></ul>",
    ],
)
def test_malformed_html_never_raises(body: str) -> None:
    sections = html_sections(body)
    for section in sections:
        assert section.text
        assert all(entry for entry in section.heading_path)
    check_pieces(cut_pieces(sections, size=10), 10)


def test_odd_but_common_html() -> None:
    assert html_sections("<h2>a</h1>b") == [Section(("a",), "b")]
    assert html_sections("<h7>x</h7><header>y</header>") == [Section((), "x\n\ny")]
    assert html_sections("<ul><li><h3>In a list</h3>item</li></ul>") == [
        Section(("In a list",), "item")
    ]


# --------------------------------------------------------------------------------------
# markdown_sections
# --------------------------------------------------------------------------------------


def test_markdown_atx_headings() -> None:
    sections = markdown_sections(
        "Intro line.\n"
        "\n"
        "# Billing\n"
        "About billing.\n"
        "## Refunds ##\n"
        "About refunds.\n"
        "### Partial\n"
        "Partial.\n"
        "## C#\n"
        "Sharp.\n"
        "#hashtag is text\n"
        "####### seven is text\n"
        "    # indented code is text\n"
    )
    assert sections == [
        Section((), "Intro line."),
        Section(("Billing",), "About billing."),
        Section(("Billing", "Refunds"), "About refunds."),
        Section(("Billing", "Refunds", "Partial"), "Partial."),
        Section(
            ("Billing", "C#"),
            "Sharp.\n#hashtag is text\n####### seven is text\n    # indented code is text",
        ),
    ]


def test_markdown_setext_headings() -> None:
    sections = markdown_sections(
        "Guide\n=====\nWelcome.\n\nSetup\n-----\nInstall it.\n\nUsage  \n---\nUse it.\n"
    )
    assert sections == [
        Section(("Guide",), "Welcome."),
        Section(("Guide", "Setup"), "Install it."),
        Section(("Guide", "Usage"), "Use it."),
    ]


def test_markdown_rules_are_not_setext_headings() -> None:
    sections = markdown_sections(
        "# Top\nfirst line\nsecond line\n---\n- a list item\n---\n\n***\nend\n"
    )
    assert sections == [Section(("Top",), "first line\nsecond line\n\n- a list item\n\nend")]


def test_markdown_fenced_code_is_text_never_headings() -> None:
    sections = markdown_sections(
        "# Install\n"
        "Run:\n"
        "```bash\n"
        "# not a heading\n"
        "## nor this\n"
        "Title\n"
        "=====\n"
        "echo **kept** [as](is)\n"
        "```\n"
        "~~~\n"
        "# tilde fence\n"
        "```\n"
        "# still code: a backtick fence does not close a tilde one\n"
        "~~~\n"
        "## After\n"
        "done\n"
    )
    assert sections == [
        Section(
            ("Install",),
            "Run:\n```bash\n# not a heading\n## nor this\nTitle\n=====\n"
            "echo **kept** [as](is)\n```\n~~~\n# tilde fence\n```\n"
            "# still code: a backtick fence does not close a tilde one\n~~~",
        ),
        Section(("Install", "After"), "done"),
    ]


def test_an_unclosed_fence_runs_to_the_end() -> None:
    sections = markdown_sections("# A\n```\n# code\n")
    assert sections == [Section(("A",), "```\n# code")]


def test_markdown_front_matter_is_dropped() -> None:
    sections = markdown_sections("---\ntitle: Refunds\ntags: [billing]\n---\n# Refunds\nText.\n")
    assert sections == [Section(("Refunds",), "Text.")]
    toml = markdown_sections('+++\ntitle = "x"\n+++\nBody.\n')
    assert toml == [Section((), "Body.")]


def test_a_rule_at_the_top_is_not_front_matter() -> None:
    sections = markdown_sections("---\nNot metadata, a paragraph.\n---\nMore.\n")
    assert [section.text for section in sections] == ["More."]
    assert paths(sections) == [("Not metadata, a paragraph.",)]
    assert markdown_sections("---\ntitle: never closed\nBody") == [
        Section((), "title: never closed\nBody")
    ]


def test_markdown_light_clean_up() -> None:
    sections = markdown_sections(
        "# **Bold** _heading_ with `code` and [a link](https://x.example)\n"
        "Some **bold** and __strong__ text, *emphasis* kept.\n"
        'See [the guide](https://help.example.com/guide "Guide") or <https://example.com>.\n'
        "![screenshot](shot.png) and ![](blank.png)\n"
        "Code `**stays**` and snake_case__names stay.\n"
        "- list item\n"
        "1. numbered\n"
        "> quoted\n"
    )
    assert sections == [
        Section(
            ("Bold heading with code and a link",),
            "Some bold and strong text, *emphasis* kept.\n"
            "See the guide (https://help.example.com/guide) or https://example.com.\n"
            "[image: screenshot] and [image]\n"
            "Code `**stays**` and snake_case__names stay.\n"
            "- list item\n"
            "1. numbered\n"
            "> quoted",
        )
    ]


def test_markdown_blank_lines_and_line_endings() -> None:
    sections = markdown_sections("\ufeff# A\r\n\r\n\r\n\r\none   \r\n\r\n\r\ntwo\rthree\n\n\n")
    assert sections == [Section(("A",), "one\n\ntwo\nthree")]


def test_markdown_empty_sections_are_dropped() -> None:
    sections = markdown_sections("# A\n\n## B\n\n### C\ntext\n## D\n\n")
    assert sections == [Section(("A", "B", "C"), "text")]
    assert markdown_sections("") == []
    assert markdown_sections("\n\n# only a heading\n") == []


# --------------------------------------------------------------------------------------
# plain_sections
# --------------------------------------------------------------------------------------


def test_plain_text_is_one_tidy_section() -> None:
    text = "First line   \r\nsecond line\r\n\r\n\r\n\r\n\r\nNext paragraph\t\n\n\n\nLast\r"
    assert plain_sections(text) == [
        Section((), "First line\nsecond line\n\nNext paragraph\n\nLast")
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\r\n", " \t \n "])
def test_empty_plain_text_gives_no_section(text: str) -> None:
    assert plain_sections(text) == []


def test_plain_text_keeps_markup_as_written() -> None:
    assert plain_sections("# not a heading\n<b>x</b>") == [Section((), "# not a heading\n<b>x</b>")]


# --------------------------------------------------------------------------------------
# cut_pieces
# --------------------------------------------------------------------------------------


def paragraph(number: int, words: int) -> str:
    return " ".join(f"p{number}w{n}" for n in range(words)) + "."


def test_a_short_section_is_one_piece() -> None:
    sections = [Section(("A",), "  short text\n\nin two paragraphs  ")]
    assert cut_pieces(sections) == [Piece(0, ("A",), "short text\n\nin two paragraphs")]


def test_a_section_of_exactly_size_is_one_piece() -> None:
    text = "x" * 50
    assert cut_pieces([Section((), text)], size=50) == [Piece(0, (), text)]


def test_small_sections_are_not_merged_and_indices_run_over_the_document() -> None:
    sections = [Section((), "intro"), Section(("A",), "a"), Section(("A", "B"), "b")]
    assert cut_pieces(sections) == [
        Piece(0, (), "intro"),
        Piece(1, ("A",), "a"),
        Piece(2, ("A", "B"), "b"),
    ]


def test_empty_sections_give_no_piece() -> None:
    sections = [Section(("A",), "  \n\n "), Section(("B",), "b")]
    assert cut_pieces(sections) == [Piece(0, ("B",), "b")]
    assert cut_pieces([]) == []


def test_long_sections_are_cut_at_paragraphs() -> None:
    paragraphs = [" ".join([f"p{n:02d}w"] * 60) for n in range(12)]  # 299 characters each
    text = "\n\n".join(paragraphs)
    sections = [Section(("Long",), text), Section(("Other",), "other")]
    pieces = cut_pieces(sections, size=700)
    check_pieces(pieces, 700)
    long_pieces = [piece for piece in pieces if piece.heading_path == ("Long",)]
    assert len(long_pieces) == 6
    for piece in long_pieces:
        # Whole paragraphs only: each piece is some of them, joined as they were.
        assert all(part in paragraphs for part in piece.text.split("\n\n"))
    assert "\n\n".join(piece.text for piece in long_pieces) == text
    assert pieces[-1] == Piece(6, ("Other",), "other")


def test_paragraphs_are_packed_greedily() -> None:
    text = "\n\n".join(["a" * 40, "b" * 40, "c" * 40, "d" * 90, "e" * 5])
    pieces = cut_pieces([Section((), text)], size=100)
    assert [piece.text for piece in pieces] == [
        "a" * 40 + "\n\n" + "b" * 40,
        "c" * 40,
        "d" * 90 + "\n\n" + "e" * 5,
    ]


def test_an_over_long_paragraph_is_cut_at_sentences() -> None:
    sentences = [f"Sentence number {n} says something useful about refunds." for n in range(40)]
    text = " ".join(sentences)
    pieces = cut_pieces([Section(("Refunds",), text)], size=300)
    check_pieces(pieces, 300)
    assert len(pieces) > 1
    for piece in pieces:
        assert piece.text.startswith("Sentence number ")
        assert piece.text.endswith("refunds.")
        assert len(piece.text) > 150  # at least half full
    assert " ".join(piece.text for piece in pieces) == text


@pytest.mark.parametrize("mark", ["!", "?"])
def test_exclamation_and_question_marks_end_sentences(mark: str) -> None:
    text = " ".join(f"Is this sentence {n} long enough{mark}" for n in range(30))
    pieces = cut_pieces([Section((), text)], size=200)
    check_pieces(pieces, 200)
    assert all(piece.text.endswith(mark) for piece in pieces)


def test_wide_full_stops_end_sentences_without_a_space() -> None:
    text = "这是一个很长的句子。" * 40
    pieces = cut_pieces([Section((), text)], size=95)
    check_pieces(pieces, 95)
    assert all(piece.text.endswith("。") for piece in pieces)
    assert "".join(piece.text for piece in pieces) == text


def test_a_paragraph_without_sentences_is_cut_at_words() -> None:
    text = " ".join(f"word{n}" for n in range(400))
    pieces = cut_pieces([Section((), text)], size=100)
    check_pieces(pieces, 100)
    assert all(re.fullmatch(r"word\d+( word\d+)*", piece.text) for piece in pieces)
    assert " ".join(piece.text for piece in pieces) == text


def test_a_sentence_end_too_early_gives_way_to_a_space() -> None:
    text = "Short. " + " ".join(["word"] * 60)
    pieces = cut_pieces([Section((), text)], size=100)
    check_pieces(pieces, 100)
    assert len(pieces[0].text) > 50
    assert " ".join(piece.text for piece in pieces) == text


def test_a_single_long_word_is_cut_hard() -> None:
    word = "".join(chr(ord("a") + n % 26) for n in range(5000))
    pieces = cut_pieces([Section(("Hard",), word)], size=PIECE_CHARS)
    check_pieces(pieces, PIECE_CHARS)
    assert [len(piece.text) for piece in pieces] == [1500, 1500, 1500, 500]
    assert "".join(piece.text for piece in pieces) == word


def test_a_long_word_among_words_is_cut_only_where_it_must_be() -> None:
    text = "before " + "x" * 250 + " after"
    pieces = cut_pieces([Section((), text)], size=100)
    check_pieces(pieces, 100)
    assert [piece.text for piece in pieces] == ["before", "x" * 100, "x" * 100, "x" * 50 + " after"]


def test_the_rest_of_a_cut_paragraph_joins_the_next_one() -> None:
    text = " ".join(["word"] * 30) + "\n\nnext"
    pieces = cut_pieces([Section((), text)], size=100)
    assert [piece.text for piece in pieces] == [
        " ".join(["word"] * 20),
        " ".join(["word"] * 10) + "\n\nnext",
    ]


def test_pieces_lose_no_word() -> None:
    paragraphs = []
    for n in range(30):
        body = " ".join(f"Fact {n}.{m} is true!" for m in range(n * 3)) or f"lone{n}"
        paragraphs.append(f"- item {n}\n  {body}" if n % 2 else body)
    text = "\n\n".join(paragraphs)
    for size in (40, 100, 333, PIECE_CHARS):
        pieces = cut_pieces([Section(("All",), text)], size=size)
        check_pieces(pieces, size)
        assert " ".join(piece.text for piece in pieces).split() == text.split()


def test_pieces_of_real_documents() -> None:
    article = "".join(
        f"<h2>Topic {n}</h2>"
        + "".join(f"<p>{paragraph(n * 10 + m, 20 + 7 * m)}</p>" for m in range(6))
        + "<ul>"
        + "".join(f"<li>Point {m} of topic {n}</li>" for m in range(5))
        + "</ul>"
        for n in range(10)
    )
    sections = html_sections(article)
    assert len(sections) == 10
    pieces = cut_pieces(sections, size=300)
    check_pieces(pieces, 300)
    for section in sections:
        own = [piece.text for piece in pieces if piece.heading_path == section.heading_path]
        assert " ".join(own).split() == section.text.split()


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        cut_pieces([Section((), "x")], size=0)


def test_size_one() -> None:
    pieces = cut_pieces([Section((), "ab c")], size=1)
    assert [piece.text for piece in pieces] == ["a", "b", "c"]


# --------------------------------------------------------------------------------------
# Linear time
# --------------------------------------------------------------------------------------


def timed(function: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    function(text)
    return time.perf_counter() - started


def test_five_megabytes_of_words_are_cut_quickly() -> None:
    started = time.perf_counter()
    pieces = cut_pieces(plain_sections("word " * 1_000_000))
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"{elapsed:.2f}s"
    check_pieces(pieces, PIECE_CHARS)
    assert sum(piece.text.count("word") for piece in pieces) == 1_000_000


def test_a_two_megabyte_article_is_split_quickly() -> None:
    article = "".join(
        f'<h2 id="h_{n}">Section <b>{n}</b></h2>'
        f"<p>Some text with a <a href='https://example.com/{n}'>link</a> &amp; "
        "<strong>bold</strong> words. Another sentence here!</p>"
        "<ul><li>item one</li><li>item two</li></ul>"
        "<table><tr><td>a</td><td>b</td></tr></table>"
        + (f"<h3>Detail {n}</h3><p>{'More detail. ' * 20}</p>" if n % 3 == 0 else "")
        for n in range(7000)
    )
    assert len(article) >= 2_000_000
    started = time.perf_counter()
    sections = html_sections(article)
    pieces = cut_pieces(sections)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"{elapsed:.2f}s"
    assert len(sections) == 7000 + 7000 // 3 + 1
    assert sections[1].heading_path == ("Section 0", "Detail 0")
    check_pieces(pieces, PIECE_CHARS)


# Each of these is quadratic in a naive reader (the first two, and the unclosed quotes,
# are in html.parser on Python 3.11.7); linear means a few seconds at most.
_ADVERSARIAL_HTML = {
    "unclosed comments": "<!--" * 250_000,
    "lone less-than signs": "<h2>" + "<" * 1_000_000,
    "unclosed tags": "<h2>" + "<a" * 500_000,
    "unterminated quotes": '<h2 x="' * 166_000,
    "only headings": "<h1>" * 250_000,
    "headings with text": "<h1>x" * 200_000,
    "unclosed heading with text": "<h1>" + "x " * 500_000,
    "stray end tags": "</h2>" * 200_000,
    "unclosed headings and paragraphs": "<h3>a<p>b" * 100_000,
    "unclosed scripts": "<h2><script>" * 80_000,
}


@pytest.mark.parametrize("name", list(_ADVERSARIAL_HTML))
def test_adversarial_html_takes_linear_time(name: str) -> None:
    elapsed = timed(html_sections, _ADVERSARIAL_HTML[name])
    assert elapsed < 3.0, f"{name}: {elapsed:.2f}s"


_ADVERSARIAL_MARKDOWN = {
    "unclosed strong": "**a " * 250_000,
    "unclosed underscores": "__a " * 250_000,
    "open brackets": "[" * 1_000_000,
    "unclosed links": "[a](x " * 160_000,
    "backticks": "`" * 1_000_000,
    "only headings": "# x\n" * 250_000,
    "setext headings": "a\n=\n" * 250_000,
    "fences": "```\n" * 250_000,
    "rules": "---\n" * 250_000,
    "unclosed autolinks": "<http:" * 160_000,
}


@pytest.mark.parametrize("name", list(_ADVERSARIAL_MARKDOWN))
def test_adversarial_markdown_takes_linear_time(name: str) -> None:
    elapsed = timed(markdown_sections, _ADVERSARIAL_MARKDOWN[name])
    assert elapsed < 3.0, f"{name}: {elapsed:.2f}s"


_ADVERSARIAL_TEXT = {
    "sentences": "a. " * 1_600_000,
    "one long word": "x" * 5_000_000,
    "short paragraphs": "word word\n\n" * 400_000,
    "blank lines of spaces": "a" + "\n " * 2_000_000 + "b",
    "tiny then long": ("a " + "x" * 1499 + " ") * 3000,
    "wide full stops": "文。" * 2_000_000,
}


@pytest.mark.parametrize("name", list(_ADVERSARIAL_TEXT))
def test_adversarial_text_is_cut_in_linear_time(name: str) -> None:
    started = time.perf_counter()
    pieces = cut_pieces([Section((), _ADVERSARIAL_TEXT[name])])
    elapsed = time.perf_counter() - started
    assert elapsed < 3.0, f"{name}: {elapsed:.2f}s"
    check_pieces(pieces, PIECE_CHARS)
