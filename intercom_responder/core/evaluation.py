"""How good the daemon would be: the numbers of `main.py eval`, without any I/O.

An evaluation drafts answers to past customer questions exactly as the daemon would,
lets a judge model rate how well each draft agrees with what a teammate actually
answered, and keeps one `PairResult` per question. Everything that turns those results
into a report lives here, pure, so that a test can pin down every share and bucket with
numbers worked out by hand:

- `summarize`: what the daemon would have done (sent, reviewed, handed off) and how good
  the answers it would have sent alone are;
- `calibration`: whether the model's confidence means anything (does a higher confidence
  go with a higher agreement?), which is what the threshold relies on;
- `lowest_threshold`: the lowest CONFIDENCE_THRESHOLD at which the answers sent alone
  would still agree with the team well enough, and how many would then be sent;
- `parse_questions`: a hand-written test set, for a team without past conversations.

A pair that failed (the model or the judge could not be reached ...) says nothing about
the quality of the answers: it is counted apart and left out of every share and mean.
"""

from __future__ import annotations

import csv
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TypeVar

from .policy import Action
from .text import ACCENT_MARKS

#: The rules of `policy.decide` that only compare the confidence with the threshold: a pair
#: decided by any other rule (a keyword, a request for a person, a frustrated customer ...)
#: would be decided the same way at any threshold.
THRESHOLD_RULES = frozenset({"confident", "low_confidence"})

#: Slack for the float error of a mean: agreements 0.9, 0.8 and 0.7 have the mean 0.8, which
#: floats compute as 0.7999999999999999; a target of 0.8 is reached all the same.
_EPSILON = 1e-9


@dataclass(frozen=True)
class PairResult:
    """One question of an evaluation: what was asked, what the team answered, what the
    daemon drafted and decided, and what the judge made of it."""

    index: int  # position in the run, from 0
    conversation_id: str | None  # None for a hand-written question
    question: str
    expected: str  # the teammate's answer (or the test set's expected answer)
    asked_at: int | None  # Unix seconds
    draft: str = ""
    confidence: float = 0.0
    action: str = ""  # "reply", "review" or "handoff": the daemon's decision (`policy.Action`)
    rule: str = ""  # the decision's rule code ("confident", "low_confidence", ...)
    reason: str = ""
    agreement: float | None = None  # the judge's 0..1; None when not judged
    judge_reason: str = ""
    similarity: float = 0.0  # lexical_similarity(draft, expected)
    error: str | None = None  # the pair failed: counted apart, never in the shares

    @property
    def would_send(self) -> bool:
        """The daemon would have sent this draft to the customer without a person."""
        return self.action == Action.REPLY and self.error is None

    @property
    def confidence_decides(self) -> bool:
        """Only the threshold decided this pair, so another threshold could change it."""
        return self.rule in THRESHOLD_RULES

    @property
    def judged(self) -> bool:
        """The judge rated the draft, and nothing failed: the pair counts in the means."""
        return self.agreement is not None and self.error is None

    def to_json(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PairResult:
        """The inverse of `to_json`. Strict on the types (a results file that says
        otherwise is not ours, or damaged: `ValueError` naming the field), lenient on the
        fields that have a default, so a file written before a field existed still reads."""
        if not isinstance(data, Mapping):
            raise ValueError("a pair result is not an object")
        return cls(
            index=_required(data, "index", int),
            conversation_id=_optional(data, "conversation_id", str),
            question=_required(data, "question", str),
            expected=_required(data, "expected", str),
            asked_at=_optional(data, "asked_at", int),
            draft=_optional(data, "draft", str) or "",
            confidence=_number(data, "confidence") or 0.0,
            action=_optional(data, "action", str) or "",
            rule=_optional(data, "rule", str) or "",
            reason=_optional(data, "reason", str) or "",
            agreement=_number(data, "agreement"),
            judge_reason=_optional(data, "judge_reason", str) or "",
            similarity=_number(data, "similarity") or 0.0,
            error=_optional(data, "error", str),
        )


_T = TypeVar("_T", int, str)


def _optional(data: Mapping[str, object], key: str, kind: type[_T]) -> _T | None:
    value = data.get(key)
    if value is None:
        return None
    # bool is an int to Python, not to a reader of the file
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{key!r} is not {'a whole number' if kind is int else 'a string'}")
    return value


def _required(data: Mapping[str, object], key: str, kind: type[_T]) -> _T:
    value = _optional(data, key, kind)
    if value is None:
        raise ValueError(f"no {key!r}")
    return value


def _number(data: Mapping[str, object], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{key!r} is not a number")
    return float(value)


# --- lexical similarity ---------------------------------------------------------------


def _is_ideographic(char: str) -> bool:
    """Chinese characters and kana: written without spaces, so each one is a token (a whole
    sentence would otherwise be a single word, equal to nothing)."""
    code = ord(char)
    return (
        0x3040 <= code <= 0x30FF  # hiragana, katakana
        or 0x3400 <= code <= 0x4DBF  # CJK extension A
        or 0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0x20000 <= code <= 0x3FFFF  # CJK extensions B and later
    )


def _tokens(text: str) -> list[str]:
    """The casefolded words of `text`, accents folded ("Café" and "cafe" are one word):
    runs of `\\w` characters, with the marks of their script kept inside them."""
    folded = ACCENT_MARKS.sub("", unicodedata.normalize("NFKD", text)).casefold()
    tokens: list[str] = []
    word: list[str] = []
    for char in folded:
        if _is_ideographic(char):
            if word:
                tokens.append("".join(word))
                word = []
            tokens.append(char)
        elif char.isalnum() or char == "_" or (word and unicodedata.category(char)[0] == "M"):
            word.append(char)
        elif word:
            tokens.append("".join(word))
            word = []
    if word:
        tokens.append("".join(word))
    return tokens


def lexical_similarity(a: str, b: str) -> float:
    """Token F1 of two texts (the words they share, counted with repeats, against the words
    of each): 1.0 for the same words in any order, 0.0 when either has none. A cheap second
    opinion next to the judge, which needs no model and cannot be talked round."""
    first, second = _tokens(a), _tokens(b)
    if not first or not second:
        return 0.0
    shared = sum((Counter(first) & Counter(second)).values())
    return 2 * shared / (len(first) + len(second))


# --- calibration and thresholds -------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """The judged pairs whose confidence is in [low, high) (the last bucket takes 1.0)."""

    low: float
    high: float
    count: int
    mean_agreement: float | None  # None when count == 0


def _mean(values: Iterable[float]) -> float | None:
    listed = list(values)
    return math.fsum(listed) / len(listed) if listed else None


def calibration(results: Sequence[PairResult], *, buckets: int = 10) -> list[Bucket]:
    """Mean agreement by confidence, every bucket listed (empty ones with count 0), so a
    reader sees where the model's confidence stops meaning anything. Only the judged pairs
    without error count; a confidence outside 0..1 goes in the first or the last bucket."""
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    agreements: list[list[float]] = [[] for _ in range(buckets)]
    for result in results:
        if result.judged and result.agreement is not None:
            agreements[_bucket_of(result.confidence, buckets)].append(result.agreement)
    return [
        Bucket(
            low=i / buckets,
            high=(i + 1) / buckets,
            count=len(values),
            mean_agreement=_mean(values),
        )
        for i, values in enumerate(agreements)
    ]


def _bucket_of(confidence: float, buckets: int) -> int:
    """The bucket of `confidence`, by the same bounds `calibration` reports (i / buckets),
    so a confidence of exactly 0.3 is in [0.3, 0.4) whatever the float error of 0.3 * 10."""
    index = min(max(int(confidence * buckets), 0), buckets - 1)
    if index > 0 and confidence < index / buckets:
        index -= 1
    elif index < buckets - 1 and confidence >= (index + 1) / buckets:
        index += 1
    return index


def sent_at(results: Sequence[PairResult], threshold: float) -> list[PairResult]:
    """The pairs the daemon would send alone at `threshold`: those only the confidence
    decided, with a confidence at or above it (as `policy.decide` compares), no error.
    Whatever other rule decided a pair, it decides it at any threshold."""
    return [
        r for r in results if r.confidence_decides and r.error is None and r.confidence >= threshold
    ]


def lowest_threshold(results: Sequence[PairResult], target: float) -> tuple[float, int] | None:
    """The lowest threshold at which the answers sent alone agree with the team at least
    `target` on average, and how many would then be sent; None when none does.

    Tried in ascending order: 0.0, then each confidence of a pair only the threshold
    decided (between two of them the pairs sent do not change). The mean is over the
    judged pairs sent; a pair sent but not judged counts in how many, not in the mean,
    and a threshold at which no pair sent was judged says nothing, so it is passed over.
    """
    candidates = sorted(
        {0.0} | {r.confidence for r in results if r.confidence_decides and r.error is None}
    )
    for threshold in candidates:
        sent = sent_at(results, threshold)
        mean = _mean(r.agreement for r in sent if r.agreement is not None)
        if mean is not None and mean >= target - _EPSILON:
            return threshold, len(sent)
    return None


# --- the summary ----------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The report of one evaluation. The shares are of the pairs that did not fail."""

    pairs: int
    failed: int
    sent: int  # by action, failed pairs excluded
    reviewed: int
    handed_off: int
    sent_share: float  # of pairs - failed; 0.0 when none
    reviewed_share: float
    handed_off_share: float
    by_rule: dict[str, int]  # rule -> count, for the reviewed and handed-off ones
    mean_agreement_sent: float | None  # the judged would-be-sent pairs
    mean_similarity_sent: float | None  # all the would-be-sent pairs
    threshold: float  # the CONFIDENCE_THRESHOLD of the run
    target: float  # the mean agreement asked of the answers sent alone
    lowest_threshold: float | None  # see `lowest_threshold`
    sent_at_lowest: int | None

    def to_json(self) -> dict[str, object]:
        document = {f.name: getattr(self, f.name) for f in fields(self)}
        document["by_rule"] = dict(self.by_rule)
        return document


def summarize(results: Sequence[PairResult], *, threshold: float, target: float) -> Summary:
    """What the daemon would have done with these questions at `threshold`, and how good
    the answers it would have sent alone are. `by_rule` is most frequent first."""
    done = [r for r in results if r.error is None]
    counts = Counter(r.action for r in done)
    sent, reviewed, handed_off = (
        counts[Action.REPLY],
        counts[Action.REVIEW],
        counts[Action.HANDOFF],
    )
    not_sent = Counter(r.rule for r in done if r.action in (Action.REVIEW, Action.HANDOFF))
    would_send = [r for r in done if r.would_send]
    lowest = lowest_threshold(results, target)
    return Summary(
        pairs=len(results),
        failed=len(results) - len(done),
        sent=sent,
        reviewed=reviewed,
        handed_off=handed_off,
        sent_share=_share(sent, len(done)),
        reviewed_share=_share(reviewed, len(done)),
        handed_off_share=_share(handed_off, len(done)),
        by_rule=dict(sorted(not_sent.items(), key=lambda item: (-item[1], item[0]))),
        mean_agreement_sent=_mean(r.agreement for r in would_send if r.agreement is not None),
        mean_similarity_sent=_mean(r.similarity for r in would_send),
        threshold=threshold,
        target=target,
        lowest_threshold=lowest[0] if lowest else None,
        sent_at_lowest=lowest[1] if lowest else None,
    )


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def worst_sent(results: Sequence[PairResult], n: int = 5) -> list[PairResult]:
    """The judged answers the daemon would have sent alone that agree least with the team:
    the ones to read first. Ties: the lower similarity first, then the run's order."""
    judged = [r for r in results if r.would_send and r.agreement is not None]
    judged.sort(key=lambda r: (r.agreement, r.similarity, r.index))
    return judged[: max(n, 0)]


# --- a hand-written test set ----------------------------------------------------------


class QuestionsFileError(ValueError):
    """A test set that cannot be read; the message names the line ("line 4: ...")."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


_JSON_LINES_ENDINGS = (".jsonl", ".ndjson")
_CSV_ENDINGS = (".csv",)
_COLUMNS = ("question", "expected")


def parse_questions(text: str, *, name: str) -> list[tuple[str, str]]:
    """The (question, expected answer) pairs of a hand-written test set, read by the ending
    of the file's `name`: JSON Lines (".jsonl", ".ndjson": one object a line with string
    "question" and "expected", blank lines skipped) or CSV (".csv": a header row with a
    "question" and an "expected" column, other columns ignored). Both ends of each text
    are stripped; an empty question or answer is an error naming its line, since a pair
    without one would be scored as if the daemon had got it wrong."""
    text = text.removeprefix("\ufeff")  # the BOM spreadsheets put before a UTF-8 export
    ending = name.casefold()
    if ending.endswith(_JSON_LINES_ENDINGS):
        pairs = _parse_json_lines(text)
    elif ending.endswith(_CSV_ENDINGS):
        pairs = _parse_csv(text)
    else:
        understood = ", ".join((*_JSON_LINES_ENDINGS, *_CSV_ENDINGS))
        raise QuestionsFileError(f"cannot read {name}: the file name must end in {understood}")
    if not pairs:
        raise QuestionsFileError(f"no questions in {name}")
    return pairs


def _parse_json_lines(text: str) -> list[tuple[str, str]]:
    # Split on "\n" alone: str.splitlines would also split on U+2028, which JSON allows
    # inside a string, and so misnumber the lines.
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except ValueError as exc:
            raise QuestionsFileError(f"not a JSON object ({exc})", number) from None
        if not isinstance(document, dict):
            raise QuestionsFileError("not a JSON object", number)
        values: list[str] = []
        for column in _COLUMNS:
            if column not in document:
                raise QuestionsFileError(f"no {column!r} field", number)
            value = document[column]
            if not isinstance(value, str):
                raise QuestionsFileError(f"{column!r} is not a string", number)
            values.append(_nonempty(value, column, number))
        pairs.append((values[0], values[1]))
    return pairs


def _parse_csv(text: str) -> list[tuple[str, str]]:
    # csv reads any iterable of lines: the lines of the string with their ends, split on
    # "\n" alone, so a quoted cell can hold a line break (and "\r\n" ends a line as well).
    lines = [line for line in re.split(r"(?<=\n)", text) if line]
    reader = csv.reader(lines, strict=True)  # strict: an unclosed quote is an error
    columns: tuple[int, int] | None = None
    pairs: list[tuple[str, str]] = []
    while True:
        first_line = reader.line_num + 1  # where a cell over several lines starts
        try:
            row = next(reader, None)
        except csv.Error as exc:
            raise QuestionsFileError(f"not valid CSV ({exc})", first_line) from None
        if row is None:
            return pairs
        if not any(cell.strip() for cell in row):
            continue  # a blank line, or the empty rows a spreadsheet leaves at the end
        if columns is None:
            columns = _header(row, first_line)
            continue
        question, expected = (row[i] if i < len(row) else "" for i in columns)
        pairs.append(
            (
                _nonempty(question, "question", first_line),
                _nonempty(expected, "expected", first_line),
            )
        )


def _header(row: Sequence[str], line: int) -> tuple[int, int]:
    """Where the question and expected columns are (names in any case; the first of two)."""
    names = [cell.strip().casefold() for cell in row]
    found: list[int] = []
    for column in _COLUMNS:
        if column not in names:
            header = ", ".join(cell.strip() for cell in row)
            raise QuestionsFileError(f"no {column!r} column (the header row is: {header})", line)
        found.append(names.index(column))
    return found[0], found[1]


def _nonempty(value: str, column: str, line: int) -> str:
    stripped = value.strip()
    if not stripped:
        raise QuestionsFileError(f"empty {column!r}", line)
    return stripped
