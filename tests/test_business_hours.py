"""Business hours: the parser, and open/closed questions in real time zones with DST."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest

from intercom_responder.core.business_hours import (
    BusinessHours,
    BusinessHoursError,
    Window,
    parse_business_hours,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600.0

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def local(tz: tzinfo, y: int, m: int, d: int, hour: int = 0, minute: int = 0) -> float:
    """Unix seconds of a local wall time (2025-03-07 is a Friday)."""
    return datetime(y, m, d, hour, minute, tzinfo=tz).timestamp()


def hours(text: str, tz: tzinfo = BERLIN) -> BusinessHours:
    return BusinessHours(parse_business_hours(text), tz)


def w(weekday: int, start: str, end: str) -> Window:
    def minutes(clock: str) -> int:
        h, m = clock.split(":")
        return int(h) * 60 + int(m)

    return Window(weekday, minutes(start), minutes(end))


# --- parsing ------------------------------------------------------------------------------


def test_a_day_range_and_a_single_day() -> None:
    assert parse_business_hours("mon-fri 09:00-17:30; sat 10:00-14:00") == (
        w(MON, "09:00", "17:30"),
        w(TUE, "09:00", "17:30"),
        w(WED, "09:00", "17:30"),
        w(THU, "09:00", "17:30"),
        w(FRI, "09:00", "17:30"),
        w(SAT, "10:00", "14:00"),
    )


def test_a_wrapping_range_runs_over_the_weekend() -> None:
    days = [window.weekday for window in parse_business_hours("fri-mon 10:00-12:00")]
    assert days == [MON, FRI, SAT, SUN]


def test_comma_lists_may_hold_ranges_and_full_names_in_any_case() -> None:
    assert [x.weekday for x in parse_business_hours("Monday,WED-thu, Saturday 9:00-12:00")] == [
        MON,
        WED,
        THU,
        SAT,
    ]


def test_new_lines_separate_segments_and_blank_ones_are_skipped() -> None:
    assert parse_business_hours("mon 09:00-10:00\n\n tue 11:00-12:00 ;") == (
        w(MON, "09:00", "10:00"),
        w(TUE, "11:00", "12:00"),
    )


def test_several_ranges_a_day_by_comma_or_space() -> None:
    expected = (w(MON, "09:00", "12:00"), w(MON, "13:00", "17:00"))
    assert parse_business_hours("mon 09:00-12:00, 13:00-17:00") == expected
    assert parse_business_hours("mon 09:00-12:00 13:00-17:00") == expected
    assert parse_business_hours("mon 09:00 - 12:00,13:00–17:00") == expected


def test_an_overnight_range_continues_on_the_next_day() -> None:
    assert parse_business_hours("fri 22:00-02:00") == (
        w(FRI, "22:00", "24:00"),
        w(SAT, "00:00", "02:00"),
    )
    assert parse_business_hours("sun 23:00-01:00") == (
        w(MON, "00:00", "01:00"),
        w(SUN, "23:00", "24:00"),
    )


def test_24_00_and_00_00_end_the_day() -> None:
    assert parse_business_hours("mon 18:00-24:00") == (w(MON, "18:00", "24:00"),)
    assert parse_business_hours("mon 18:00-00:00") == (w(MON, "18:00", "24:00"),)
    assert parse_business_hours("mon 00:00-24:00") == (Window(MON, 0, 1440),)


def test_overlapping_and_touching_windows_are_merged() -> None:
    assert parse_business_hours("mon-fri 09:00-13:00; mon 12:00-18:00, 18:00-19:00")[0] == w(
        MON, "09:00", "19:00"
    )
    assert parse_business_hours("mon 09:00-17:00; mon 10:00-11:00") == (w(MON, "09:00", "17:00"),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "mon-fry 09:00-17:00",
            "'mon-fry 09:00-17:00': unknown day 'fry' (use mon, tue, wed, thu, fri, sat, sun)",
        ),
        ("mon 25:00-26:00", "'mon 25:00-26:00': bad time '25:00'"),
        ("mon 09:60-10:00", "'mon 09:60-10:00': bad time '09:60'"),
        ("mon 24:00-02:00", "starts at 24:00"),
        ("mon-fri 9-17", "'mon-fri 9-17': bad time range '9-17' (expected HH:MM-HH:MM"),
        ("mon 09:00-09:00", "'mon 09:00-09:00': range '09:00-09:00' starts and ends at the same"),
        ("mon 09:00-17:00 closed", "bad time range 'closed'"),
        ("mon 09:00-17:00; holidays", "'holidays': no time range"),
        ("09:00-17:00", "'09:00-17:00': no days before the times"),
        ("mon tue 09:00-17:00", "'mon tue' is not a day"),
        ("mon,,tue 09:00-17:00", "an empty day in the list"),
        ("mon-tue-wed 09:00-17:00", "'mon-tue-wed' has more than two days"),
        ("mon- 09:00-17:00", "missing a day"),
    ],
)
def test_errors_name_the_segment_and_the_bad_part(text: str, message: str) -> None:
    with pytest.raises(BusinessHoursError) as caught:
        parse_business_hours(text)
    assert message in str(caught.value)


@pytest.mark.parametrize("text", ["", "   ", "\n ; \n"])
def test_blank_text_is_empty(text: str) -> None:
    with pytest.raises(BusinessHoursError, match=r"^empty$"):
        parse_business_hours(text)


def test_a_window_checks_itself() -> None:
    with pytest.raises(BusinessHoursError, match="weekday 7"):
        Window(7, 0, 60)
    with pytest.raises(BusinessHoursError, match="start < end"):
        Window(MON, 600, 600)


def test_describe_is_the_normalised_form_and_parses_back() -> None:
    business = hours("Friday 22:00-02:00; mon-thu 9:00-12:00,13:00-17:30; wed,sat 11:00-12:30")
    text = business.describe()
    assert text == (
        "mon,tue,thu 09:00-12:00, 13:00-17:30; wed 09:00-12:30, 13:00-17:30; "
        "fri 22:00-24:00; sat 00:00-02:00, 11:00-12:30 (Europe/Berlin)"
    )
    assert parse_business_hours(text.removesuffix(" (Europe/Berlin)")) == business.windows
    assert hours("mon-fri 09:00-17:30; sat 10:00-14:00").describe() == (
        "mon-fri 09:00-17:30; sat 10:00-14:00 (Europe/Berlin)"
    )


# --- open and closed ------------------------------------------------------------------------

OFFICE = hours("mon-fri 09:00-17:30")
FRIDAY_EVENING = local(BERLIN, 2025, 3, 7, 18)  # Friday 2025-03-07
MONDAY_MORNING = local(BERLIN, 2025, 3, 10, 9)


def test_start_is_open_and_end_is_closed() -> None:
    assert not OFFICE.is_open(local(BERLIN, 2025, 3, 7, 8, 59) + 59.999)
    assert OFFICE.is_open(local(BERLIN, 2025, 3, 7, 9))
    assert OFFICE.is_open(local(BERLIN, 2025, 3, 7, 17, 30) - 0.001)
    assert not OFFICE.is_open(local(BERLIN, 2025, 3, 7, 17, 30))
    assert not OFFICE.is_open(local(BERLIN, 2025, 3, 8, 12))  # Saturday


def test_a_friday_evening_hand_off_waits_for_monday() -> None:
    assert OFFICE.next_open(FRIDAY_EVENING) == MONDAY_MORNING
    assert OFFICE.describe_next_open(FRIDAY_EVENING) == "Monday 09:00"
    assert OFFICE.next_close(FRIDAY_EVENING) is None


def test_while_open_next_open_is_now_and_next_close_is_the_end_of_the_day() -> None:
    noon = local(BERLIN, 2025, 3, 7, 12)
    assert OFFICE.next_open(noon) == noon
    assert OFFICE.next_close(noon) == local(BERLIN, 2025, 3, 7, 17, 30)
    assert OFFICE.closed_since(noon) is None


def test_today_and_tomorrow_are_said_as_such() -> None:
    business = hours("mon-fri 09:00-12:00, 14:00-17:00")
    assert business.describe_next_open(local(BERLIN, 2025, 3, 4, 12, 30)) == "today 14:00"
    assert business.describe_next_open(local(BERLIN, 2025, 3, 4, 20)) == "tomorrow 09:00"
    assert business.describe_next_open(local(BERLIN, 2025, 3, 5, 1)) == "today 09:00"


def test_a_closed_period_has_one_identity() -> None:
    friday_close = local(BERLIN, 2025, 3, 7, 17, 30)
    assert OFFICE.closed_since(FRIDAY_EVENING) == friday_close
    assert OFFICE.closed_since(local(BERLIN, 2025, 3, 8, 12)) == friday_close
    assert OFFICE.closed_since(MONDAY_MORNING - 1) == friday_close
    monday_evening = local(BERLIN, 2025, 3, 10, 18)
    assert OFFICE.closed_since(monday_evening) == local(BERLIN, 2025, 3, 10, 17, 30)


def test_windows_touching_at_midnight_are_one_open_period() -> None:
    late = hours("fri 22:00-02:00")
    assert late.next_close(local(BERLIN, 2025, 3, 7, 23)) == local(BERLIN, 2025, 3, 8, 2)
    assert late.is_open(local(BERLIN, 2025, 3, 8, 0))
    assert late.next_open(local(BERLIN, 2025, 3, 8, 3)) == local(BERLIN, 2025, 3, 14, 22)
    assert late.closed_since(local(BERLIN, 2025, 3, 8, 3)) == local(BERLIN, 2025, 3, 8, 2)
    # and the week-end: Sunday 23:00 to Monday 01:00 across the week boundary
    week_end = hours("sun 23:00-01:00")
    assert week_end.next_close(local(BERLIN, 2025, 3, 9, 23, 30)) == local(BERLIN, 2025, 3, 10, 1)


def test_open_seconds_across_a_weekend() -> None:
    assert OFFICE.open_seconds_between(FRIDAY_EVENING, MONDAY_MORNING) == 0
    friday_noon = local(BERLIN, 2025, 3, 7, 12)
    monday_ten = local(BERLIN, 2025, 3, 10, 10)
    assert OFFICE.open_seconds_between(friday_noon, monday_ten) == 5.5 * HOUR + 1 * HOUR
    week = OFFICE.open_seconds_between(local(BERLIN, 2025, 3, 3), local(BERLIN, 2025, 3, 10))
    assert week == 5 * 8.5 * HOUR
    assert OFFICE.open_seconds_between(monday_ten, friday_noon) == 0


def test_a_review_at_23_00_expires_two_open_hours_later() -> None:
    business = hours("mon-fri 09:00-17:00")
    tuesday_night = local(BERLIN, 2025, 3, 4, 23)
    expires = business.after_open_seconds(tuesday_night, 120 * 60)
    assert expires == local(BERLIN, 2025, 3, 5, 11)
    assert business.open_seconds_between(tuesday_night, expires) == 2 * HOUR


def test_open_time_carries_over_days_and_weekends() -> None:
    thursday_four = local(BERLIN, 2025, 3, 6, 16)
    # 1.5 h on Thursday, 8.5 h on Friday, then 1 h on Monday
    assert OFFICE.after_open_seconds(thursday_four, 11 * HOUR) == local(BERLIN, 2025, 3, 10, 10)
    # ending exactly at a close is that close, not the next opening
    assert OFFICE.after_open_seconds(thursday_four, 10 * HOUR) == local(BERLIN, 2025, 3, 7, 17, 30)
    assert OFFICE.after_open_seconds(FRIDAY_EVENING, 0) == FRIDAY_EVENING
    long = OFFICE.after_open_seconds(MONDAY_MORNING, 100 * 8.5 * HOUR)  # twenty weeks
    assert OFFICE.open_seconds_between(MONDAY_MORNING, long) == pytest.approx(100 * 8.5 * HOUR)


@pytest.mark.parametrize(("month", "day"), [(3, 30), (10, 26)])  # the DST Sundays of 2025
def test_a_working_day_on_a_dst_switch_is_as_long_as_its_clock_says(month: int, day: int) -> None:
    business = hours("mon-sun 09:00-17:00")
    start, end = local(BERLIN, 2025, month, day), local(BERLIN, 2025, month, day + 1)
    assert business.open_seconds_between(start, end) == 8 * HOUR
    assert business.next_open(start) == local(BERLIN, 2025, month, day, 9)
    assert business.next_close(local(BERLIN, 2025, month, day, 12)) == local(
        BERLIN, 2025, month, day, 17
    )


def test_a_whole_dst_day_is_23_or_25_hours() -> None:
    sunday = hours("sun 00:00-24:00")
    spring = sunday.open_seconds_between(local(BERLIN, 2025, 3, 29), local(BERLIN, 2025, 4, 1))
    autumn = sunday.open_seconds_between(local(BERLIN, 2025, 10, 25), local(BERLIN, 2025, 10, 28))
    assert (spring, autumn) == (23 * HOUR, 25 * HOUR)


def test_skipped_and_repeated_local_times() -> None:
    # 02:00-03:00 does not exist on 2025-03-30: that Sunday it is not open at all.
    gap = hours("sun 02:00-03:00")
    spring_sunday = local(BERLIN, 2025, 3, 30)
    assert gap.open_seconds_between(spring_sunday, spring_sunday + 24 * HOUR) == 0
    assert gap.next_open(spring_sunday) == local(BERLIN, 2025, 4, 6, 2)
    # 02:30 happens twice on 2025-10-26: the first one (summer time) ends the window.
    repeat = hours("sun 01:00-02:30")
    autumn_sunday = local(BERLIN, 2025, 10, 26)
    assert repeat.open_seconds_between(autumn_sunday, autumn_sunday + 25 * HOUR) == 1.5 * HOUR
    first_0230 = datetime(2025, 10, 26, 0, 30, tzinfo=UTC).timestamp()
    assert repeat.next_close(autumn_sunday + 1.5 * HOUR) == first_0230


def test_new_york_hours_are_new_york_instants() -> None:
    office = hours("mon-fri 09:00-17:00", NEW_YORK)
    friday_evening = datetime(2025, 3, 7, 23, 0, tzinfo=UTC).timestamp()  # 18:00 EST
    # Monday 2025-03-10 09:00 is daylight time (EDT, UTC-4), after the switch on the 9th.
    monday = datetime(2025, 3, 10, 13, 0, tzinfo=UTC).timestamp()
    assert office.next_open(friday_evening) == monday
    assert office.describe_next_open(friday_evening) == "Monday 09:00"
    assert (
        office.closed_since(friday_evening) == datetime(2025, 3, 7, 22, 0, tzinfo=UTC).timestamp()
    )
    assert office.is_open(datetime(2025, 3, 10, 20, 59, tzinfo=UTC).timestamp())
    assert not office.is_open(datetime(2025, 3, 10, 21, 0, tzinfo=UTC).timestamp())
    # the same wall times in Berlin are other instants
    assert hours("mon-fri 09:00-17:00").next_open(friday_evening) != monday


# --- always open ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "business",
    [
        BusinessHours.always_open(),
        BusinessHours((), BERLIN),
        hours("mon-sun 00:00-24:00"),
    ],
    ids=["always_open", "no windows", "every minute"],
)
def test_always_open(business: BusinessHours) -> None:
    now = FRIDAY_EVENING
    assert business.always
    assert business.is_open(now)
    assert business.next_open(now) == now
    assert business.next_close(now) is None
    assert business.closed_since(now) is None
    assert business.open_seconds_between(now, now + 90) == 90
    assert business.open_seconds_between(now, now - 90) == 0
    assert business.after_open_seconds(now, 7200) == now + 7200
    assert business.describe_next_open(now).startswith("today ")


def test_always_open_describes_itself() -> None:
    assert BusinessHours.always_open().describe() == "always open"
    assert not OFFICE.always
