"""Business hours: when the team is there, so a hand-off or a review can say when (pure).

The hours are written the way a person says them, ``mon-fri 09:00-17:30; sat 10:00-14:00``,
in the team's local time; the caller builds the time zone (a `zoneinfo.ZoneInfo`) and this
module only computes with it, so it needs neither the clock nor the zone database files.

Every instant in and out is Unix seconds. Local times are turned into instants one local
day at a time, through tz-aware datetimes, so a day with a daylight-saving switch is as
long as it really is: 09:00-17:00 is eight hours on the day the clocks change, and a week
is not 168 hours twice a year. A local time the switch skips (02:30 when the clocks jump
from 02:00 to 03:00) or repeats (02:30 when they fall back) is read with ``fold=0``: the
offset before the switch, which moves a skipped time on by the gap (02:30 becomes 03:30
summer time) and takes a repeated time at its first occurrence. A window the gap swallows
whole is not open that day.

Windows that touch across midnight (fri 22:00-24:00 and sat 00:00-02:00, which is what
``fri 22:00-02:00`` becomes) are one open period: nobody leaves at midnight, so
`BusinessHours.next_close` says 02:00 and the closed period before it began on Friday.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

MINUTES_PER_DAY = 24 * 60

#: Days looked at on each side of an instant. Any open or closed period is shorter than a
#: week unless the hours are always open; the margin is for a week whose only window a
#: daylight-saving gap swallowed.
_SEARCH_DAYS = 15

_DAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAYS = {code: i for i, code in enumerate(_DAY_CODES)} | {
    name.lower(): i for i, name in enumerate(_DAY_NAMES)
}
_DAY_HELP = f"(use {', '.join(_DAY_CODES)})"

_RANGE = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")
_RANGE_HELP = "(expected HH:MM-HH:MM, e.g. 09:00-17:30)"


class BusinessHoursError(ValueError):
    """The business hours cannot be read; the message quotes the segment and the bad part."""


@dataclass(frozen=True)
class Window:
    """One stretch of one local weekday when the team is there; never crosses midnight."""

    weekday: int  # 0 = Monday ... 6 = Sunday, as datetime.weekday()
    start: int  # minutes after local midnight, 0..1439
    end: int  # minutes after local midnight, 1..1440 (1440 is "24:00"); end > start

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise BusinessHoursError(f"weekday {self.weekday} is not 0 (Monday) to 6 (Sunday)")
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise BusinessHoursError(
                f"window {self.start}-{self.end} on {_DAY_CODES[self.weekday]}: minutes must "
                f"satisfy 0 <= start < end <= {MINUTES_PER_DAY}"
            )

    def __str__(self) -> str:
        return f"{_DAY_CODES[self.weekday]} {_clock(self.start)}-{_clock(self.end)}"


def parse_business_hours(text: str) -> tuple[Window, ...]:
    """``"mon-fri 09:00-17:30; sat 10:00-14:00"`` -> merged windows, by weekday and start.

    Segments are separated by ``;`` or new lines; each is DAYS RANGES. DAYS is a day (mon,
    or Monday, any case), a range (mon-fri; fri-mon wraps over the weekend) or a comma list
    whose items may be ranges (mon,wed-fri). RANGES is one or more HH:MM-HH:MM separated by
    commas or spaces; 24:00 may end a range, and a range ending before it starts runs over
    midnight into the next day. Overlapping and touching windows of a day are merged.
    Blank text is an error ("empty"): the caller decides what *unset* means.
    """
    windows: list[Window] = []
    for raw in re.split(r"[;\n]", text):
        segment = raw.strip()
        if segment:
            windows.extend(_parse_segment(segment))
    if not windows:
        raise BusinessHoursError("empty")
    return _merge(windows)


def _parse_segment(segment: str) -> list[Window]:
    normalised = re.sub(r"\s*[-–—]\s*", "-", segment)  # "09:00 – 17:00" is a range too
    first_digit = re.search(r"\d", normalised)
    if first_digit is None:
        raise BusinessHoursError(f"{segment!r}: no time range {_RANGE_HELP}")
    days_text = normalised[: first_digit.start()].strip()
    if not days_text:
        raise BusinessHoursError(f"{segment!r}: no days before the times (e.g. mon-fri)")
    days = _parse_days(segment, days_text)
    windows: list[Window] = []
    for token in re.split(r"[,\s]+", normalised[first_digit.start() :].strip()):
        if token:
            for weekday in days:
                windows.extend(_parse_range(segment, token, weekday))
    return windows


def _parse_days(segment: str, text: str) -> list[int]:
    days: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise BusinessHoursError(f"{segment!r}: an empty day in the list {text!r}")
        if re.search(r"\s", item):
            raise BusinessHoursError(
                f"{segment!r}: {item!r} is not a day, a range like mon-fri or a comma list "
                "like mon,wed,fri"
            )
        ends = item.split("-")
        if len(ends) > 2:
            raise BusinessHoursError(f"{segment!r}: day range {item!r} has more than two days")
        first, last = (_day(segment, end) for end in (ends[0], ends[-1]))
        days.extend((first + i) % 7 for i in range((last - first) % 7 + 1))
    return list(dict.fromkeys(days))


def _day(segment: str, name: str) -> int:
    if not name:
        raise BusinessHoursError(f"{segment!r}: a day range is missing a day {_DAY_HELP}")
    try:
        return _DAYS[name.lower()]
    except KeyError:
        raise BusinessHoursError(f"{segment!r}: unknown day {name!r} {_DAY_HELP}") from None


def _parse_range(segment: str, token: str, weekday: int) -> list[Window]:
    match = _RANGE.fullmatch(token)
    if match is None:
        raise BusinessHoursError(f"{segment!r}: bad time range {token!r} {_RANGE_HELP}")
    opens_at, closes_at = token.split("-")
    start = _minutes(segment, opens_at, int(match[1]), int(match[2]))
    end = _minutes(segment, closes_at, int(match[3]), int(match[4]))
    if start == MINUTES_PER_DAY:
        raise BusinessHoursError(f"{segment!r}: range {token!r} starts at 24:00 (use 00:00)")
    if start == end:
        raise BusinessHoursError(f"{segment!r}: range {token!r} starts and ends at the same time")
    if end == 0:  # "22:00-00:00": until midnight
        end = MINUTES_PER_DAY
    if end > start:
        return [Window(weekday, start, end)]
    # Over midnight: the rest of this day and the beginning of the next.
    return [Window(weekday, start, MINUTES_PER_DAY), Window((weekday + 1) % 7, 0, end)]


def _minutes(segment: str, text: str, hours: int, minutes: int) -> int:
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise BusinessHoursError(
            f"{segment!r}: bad time {text!r} (hours 00-23, minutes 00-59; 24:00 only as an end)"
        )
    return hours * 60 + minutes


def _merge(windows: Iterable[Window]) -> tuple[Window, ...]:
    merged: list[Window] = []
    for window in sorted(windows, key=lambda w: (w.weekday, w.start, w.end)):
        last = merged[-1] if merged else None
        if last and last.weekday == window.weekday and window.start <= last.end:
            merged[-1] = Window(last.weekday, last.start, max(last.end, window.end))
        else:
            merged.append(window)
    return tuple(merged)


class BusinessHours:
    """Weekly windows in a time zone, asked in Unix seconds.

    No windows means open all the time (the caller's *unset*), as does a week with every
    minute in a window: then nothing ever closes, and `next_close` and `closed_since` say
    None. Every question walks a bounded number of local days, never minutes.
    """

    def __init__(self, windows: Sequence[Window], tz: tzinfo) -> None:
        self.windows: tuple[Window, ...] = _merge(windows)
        self.tz: tzinfo = tz
        by_day: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        for window in self.windows:
            by_day[window.weekday].append((window.start, window.end))
        self._by_day: tuple[tuple[tuple[int, int], ...], ...] = tuple(map(tuple, by_day))
        self._always = not self.windows or all(
            day == ((0, MINUTES_PER_DAY),) for day in self._by_day
        )

    @classmethod
    def always_open(cls) -> BusinessHours:
        """No business hours configured: the team is treated as always there."""
        return cls((), UTC)

    @property
    def always(self) -> bool:
        return self._always

    def __repr__(self) -> str:
        return f"BusinessHours({self.describe()!r})"

    def is_open(self, at: float) -> bool:
        return self._always or any(s <= at < e for s, e in self._around(at))

    def next_open(self, at: float) -> float:
        """`at` itself when open, else the next opening instant."""
        if self._always:
            return at
        for opens, closes in self._around(at):
            if closes > at:
                return max(opens, at)
        raise BusinessHoursError(f"no opening within {_SEARCH_DAYS} days after {at}")

    def next_close(self, at: float) -> float | None:
        """When the open period containing `at` ends; None when closed or always open."""
        if self._always:
            return None
        return next((e for s, e in self._around(at) if s <= at < e), None)

    def closed_since(self, at: float) -> float | None:
        """When the closed period containing `at` began; None when open.

        The value names the closed period: a hand-off on Friday evening and a customer's
        follow-up on Saturday share it, Monday evening's does not.
        """
        if self._always:
            return None
        since = None
        for opens, closes in self._around(at):
            if opens > at:
                break
            if at < closes:
                return None
            since = closes
        return since

    def open_seconds_between(self, start: float, end: float) -> float:
        """Open time within [start, end); 0 when end <= start."""
        if end <= start:
            return 0.0
        if self._always:
            return float(end - start)
        first, last = self._local_date(start), self._local_date(end)
        periods = self._periods(first - timedelta(days=1), last + timedelta(days=1))
        return float(sum(max(0.0, min(e, end) - max(s, start)) for s, e in periods))

    def after_open_seconds(self, start: float, seconds: float) -> float:
        """The instant when `seconds` of open time have passed since `start`.

        A review posted at 23:00 with two hours to go expires two open hours later: 11:00
        the next day when the team starts at 09:00. `start` itself for no time at all.
        """
        if not math.isfinite(seconds):
            raise BusinessHoursError(f"open seconds must be a finite number, not {seconds}")
        if self._always:
            return start + seconds
        if seconds <= 0:
            return start
        remaining = float(seconds)
        cursor = start  # open time before the cursor is counted already
        day = self._local_date(start) - timedelta(days=1)
        while True:  # a week at a time; every week has open time, so this ends
            for opens, closes in self._periods(day, day + timedelta(days=6)):
                opens = max(opens, cursor)
                if closes <= opens:
                    continue
                if closes - opens >= remaining:
                    return opens + remaining
                remaining -= closes - opens
                cursor = closes
            day += timedelta(days=7)

    def describe_next_open(self, at: float) -> str:
        """ "Monday 09:00", or "today 14:00" / "tomorrow 09:00" by `at`'s local date."""
        opens = datetime.fromtimestamp(self.next_open(at), self.tz)
        today = self._local_date(at)
        if opens.date() == today:
            day = "today"
        elif opens.date() == today + timedelta(days=1):
            day = "tomorrow"
        else:
            day = _DAY_NAMES[opens.weekday()]
        return f"{day} {opens:%H:%M}"

    def describe(self) -> str:
        """One line in the parser's syntax with the zone: "mon-fri 09:00-17:30 (Europe/Berlin)"."""
        if not self.windows:
            return "always open"
        groups: dict[tuple[tuple[int, int], ...], list[int]] = {}
        for weekday, ranges in enumerate(self._by_day):
            if ranges:
                groups.setdefault(ranges, []).append(weekday)
        segments = [
            f"{_describe_days(days)} {', '.join(f'{_clock(s)}-{_clock(e)}' for s, e in ranges)}"
            for ranges, days in groups.items()
        ]
        return f"{'; '.join(segments)} ({self.tz})"

    def _local_date(self, at: float) -> date:
        return datetime.fromtimestamp(at, self.tz).date()

    def _around(self, at: float) -> list[tuple[float, float]]:
        day = self._local_date(at)
        span = timedelta(days=_SEARCH_DAYS)
        return self._periods(day - span, day + span)

    def _periods(self, first: date, last: date) -> list[tuple[float, float]]:
        """The open periods of the local days first..last as instants, touching ones joined."""
        periods: list[tuple[float, float]] = []
        day = first
        while day <= last:
            for start, end in self._by_day[day.weekday()]:
                opens, closes = self._instant(day, start), self._instant(day, end)
                if closes <= opens:  # swallowed by a daylight-saving gap
                    continue
                if periods and opens <= periods[-1][1]:
                    periods[-1] = (periods[-1][0], max(periods[-1][1], closes))
                else:
                    periods.append((opens, closes))
            day += timedelta(days=1)
        return periods

    def _instant(self, day: date, minute: int) -> float:
        """Local `day` at `minute` as Unix seconds; 24:00 is the next day's 00:00."""
        if minute == MINUTES_PER_DAY:
            day, minute = day + timedelta(days=1), 0
        hour, minute = divmod(minute, 60)
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.tz, fold=0)
        return local.astimezone(UTC).timestamp()


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _describe_days(days: Sequence[int]) -> str:
    """[0, 1, 2, 3, 4] -> "mon-fri"; [0, 2, 4] -> "mon,wed,fri"; [0, 1, 2, 5] -> "mon-wed,sat"."""
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        f"{_DAY_CODES[run[0]]}-{_DAY_CODES[run[-1]]}"
        if len(run) > 2
        else ",".join(_DAY_CODES[d] for d in run)
        for run in runs
    )
