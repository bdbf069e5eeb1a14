from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner_jobs.domain.days import resolve_zone
from planner_jobs.domain.quiet_hours import quiet_until, sent_at_once


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def t(text: str) -> dt.time:
    return dt.time.fromisoformat(text)


@pytest.mark.parametrize(
    ("zone", "window", "now", "until"),
    [
        # An ordinary night in London, the window wrapping midnight: until 07:00 BST.
        ("Europe/London", ("22:00", "07:00"), "2026-06-10T22:00", "2026-06-11T06:00"),
        # Clocks go forward at 01:00 GMT over 01:30: the window ends at the jump (02:00 BST).
        ("Europe/London", ("00:30", "01:30"), "2026-03-29T00:45", "2026-03-29T01:00"),
        # Clocks go back at 02:00 BST: 01:15 happens twice, and so does 01:30.
        ("Europe/London", ("00:30", "01:30"), "2026-10-25T00:15", "2026-10-25T00:30"),
        ("Europe/London", ("00:30", "01:30"), "2026-10-25T01:15", "2026-10-25T01:30"),
        # New York jumps from 02:00 EST to 03:00 EDT over 02:30.
        ("America/New_York", ("22:00", "02:30"), "2026-03-08T04:00", "2026-03-08T07:00"),
        # ...and back from 02:00 EDT to 01:00 EST: 07:00 is after it (EST).
        ("America/New_York", ("23:00", "07:00"), "2026-11-01T04:00", "2026-11-01T12:00"),
        # Lord Howe moves by half an hour, 02:00 -> 02:30 (+10:30 -> +11) over 02:15.
        ("Australia/Lord_Howe", ("21:00", "02:15"), "2026-10-03T11:30", "2026-10-03T15:30"),
        # ...and back, 02:00 -> 01:30 (+11 -> +10:30): 01:45 happens twice.
        ("Australia/Lord_Howe", ("01:00", "01:45"), "2026-04-04T14:20", "2026-04-04T14:45"),
        ("Australia/Lord_Howe", ("01:00", "01:45"), "2026-04-04T15:05", "2026-04-04T15:15"),
        # UTC+14: 23:00 on the 29th is 09:00 UTC; 06:00 on the 30th is 16:00 UTC the 29th.
        ("Pacific/Kiritimati", ("22:00", "06:00"), "2026-03-29T09:00", "2026-03-29T16:00"),
        # UTC+5:45: 21:45 local; 06:15 the next day is 00:30 UTC.
        ("Asia/Kathmandu", ("21:30", "06:15"), "2026-03-29T16:00", "2026-03-30T00:30"),
        # A window within the day.
        ("Asia/Kathmandu", ("12:00", "14:00"), "2026-03-29T06:30", "2026-03-29T08:15"),
    ],
)
def test_a_notification_inside_quiet_hours_waits_for_their_end(
    zone: str, window: tuple[str, str], now: str, until: str
) -> None:
    assert quiet_until(utc(now), resolve_zone(zone), t(window[0]), t(window[1])) == utc(until)


@pytest.mark.parametrize(
    ("window", "now"),
    [
        (("22:00", "07:00"), "2026-06-10T06:00"),  # 07:00 BST: the window just ended
        (("22:00", "07:00"), "2026-06-10T20:59"),  # 21:59 BST
        (("09:00", "17:00"), "2026-06-10T16:00"),  # 17:00 BST
        (("09:00", "09:00"), "2026-06-10T08:00"),  # an empty window
        ((None, "07:00"), "2026-06-10T01:00"),  # one bound only
        (("22:00", None), "2026-06-10T23:00"),
    ],
)
def test_outside_quiet_hours_or_without_them_nothing_waits(
    window: tuple[str | None, str | None], now: str
) -> None:
    start, end = (None if w is None else t(w) for w in window)
    assert quiet_until(utc(now), resolve_zone("Europe/London"), start, end) is None


def test_an_unknown_zone_reads_the_window_in_utc() -> None:
    assert quiet_until(
        utc("2026-06-10T23:00"), resolve_zone("Not/A_Zone"), t("22:00"), t("07:00")
    ) == utc("2026-06-11T07:00")


def test_urgent_notifications_and_reminders_are_never_held() -> None:
    assert sent_at_once(urgency="high", source="http")
    assert sent_at_once(urgency="normal", source="reminder")
    assert not sent_at_once(urgency="low", source="rollover")
    assert not sent_at_once(urgency="normal", source="sql")


ZONES = [
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
    "Asia/Kathmandu",
    "America/Havana",
    "UTC",
]


@given(
    zone=st.sampled_from(ZONES),
    now=st.datetimes(
        dt.datetime(2026, 1, 1),  # noqa: DTZ001 (hypothesis bounds are naive)
        dt.datetime(2027, 1, 1),  # noqa: DTZ001
    ),
    start=st.times(),
    end=st.times(),
)
def test_a_held_notification_waits_only_while_the_wall_clock_is_in_the_window(
    zone: str, now: dt.datetime, start: dt.time, end: dt.time
) -> None:
    instant = now.replace(tzinfo=dt.UTC)
    tz = resolve_zone(zone)
    until = quiet_until(instant, tz, start, end)
    if until is None:
        return
    assert instant < until <= instant + dt.timedelta(hours=25)
    # Each minute of the wait (sampled) the wall clock is inside the window...
    step = max((until - instant) / 50, dt.timedelta(seconds=1))
    moment = instant
    while moment < until - dt.timedelta(seconds=1):
        assert quiet_until(moment, tz, start, end) is not None, moment
        moment += step
    # ...and at its end the window is over (unless the clocks jumped over its end straight
    # into its next start, in a window that wraps midnight).
    wall = until.astimezone(tz.tzinfo).time().replace(tzinfo=None)
    assert quiet_until(until, tz, start, end) is None or (start > end and wall >= start)
