"""Local days in every kind of time zone (standard library and the functions under test only)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner_jobs.domain.days import (
    date_at,
    day_bounds,
    day_start,
    days_to_close,
    due_at,
    due_dates,
    local_date,
    require_aware,
    resolve_zone,
)

UTC = dt.UTC
ZONES = sorted(zoneinfo.available_timezones())
# hypothesis draws naive datetimes between naive bounds; the tests make them UTC.
FROM_2018 = dt.datetime(2018, 1, 1)  # noqa: DTZ001
TO_2027 = dt.datetime(2026, 12, 31)  # noqa: DTZ001
TO_MID_2026 = dt.datetime(2026, 6, 30)  # noqa: DTZ001


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def hours(day: dt.date, zone: str) -> float:
    start, end = day_bounds(day, resolve_zone(zone))
    return (end - start).total_seconds() / 3600


@pytest.mark.parametrize(
    ("zone", "day", "first_instant_utc", "length_hours"),
    [
        # Midnight does not exist: the day starts at the first instant that does.
        ("America/Santiago", "2024-09-08", "2024-09-08T04:00", 23),
        ("America/Asuncion", "2024-10-06", "2024-10-06T04:00", 23),
        ("Asia/Beirut", "2024-03-31", "2024-03-30T22:00", 23),
        ("Africa/Cairo", "2024-04-26", "2024-04-25T22:00", 23),
        # Midnight happens twice: the day starts at the first one and lasts 25 hours.
        ("America/Havana", "2024-11-03", "2024-11-03T04:00", 25),
        ("Atlantic/Azores", "2024-10-27", "2024-10-27T00:00", 25),
        # Odd offsets.
        ("Asia/Kathmandu", "2026-03-08", "2026-03-07T18:15", 24),
        ("Pacific/Chatham", "2026-06-08", "2026-06-07T11:15", 24),
        ("Pacific/Kiritimati", "2026-03-08", "2026-03-07T10:00", 24),
        ("Etc/GMT+12", "2026-03-08", "2026-03-08T12:00", 24),
        # Half-hour DST shift.
        ("Australia/Lord_Howe", "2024-10-06", "2024-10-05T13:30", 23.5),
        ("Australia/Lord_Howe", "2024-04-07", "2024-04-06T13:00", 24.5),
        # Ordinary DST days elsewhere.
        ("Europe/Paris", "2026-03-29", "2026-03-28T23:00", 23),
        ("America/New_York", "2026-11-01", "2026-11-01T04:00", 25),
    ],
)
def test_day_bounds_in_zone_traps(
    zone: str, day: str, first_instant_utc: str, length_hours: float
) -> None:
    date = dt.date.fromisoformat(day)

    assert day_start(date, resolve_zone(zone)) == utc(first_instant_utc)
    assert hours(date, zone) == length_hours


def test_a_skipped_date_is_an_empty_day_that_is_still_closed() -> None:
    apia = resolve_zone("Pacific/Apia")  # 2011-12-30 never happened there
    skipped = dt.date(2011, 12, 30)

    assert hours(skipped, "Pacific/Apia") == 0
    assert due_dates(dt.date(2011, 12, 29), utc("2011-12-30T10:00"), apia) == [
        dt.date(2011, 12, 29),
        skipped,
    ]


@given(st.sampled_from(ZONES), st.dates(dt.date(2018, 1, 1), dt.date(2026, 12, 31)))
def test_day_start_is_the_first_instant_of_the_local_date(zone_name: str, day: dt.date) -> None:
    zone = resolve_zone(zone_name)
    start = day_start(day, zone)

    assert start.tzinfo is UTC
    assert local_date(start, zone) >= day
    assert local_date(start - dt.timedelta(microseconds=1), zone) < day
    assert day_start(day + dt.timedelta(days=1), zone) >= start


@given(st.sampled_from(ZONES), st.datetimes(FROM_2018, TO_2027))
def test_every_instant_lies_within_the_bounds_of_its_local_date(
    zone_name: str, naive: dt.datetime
) -> None:
    zone = resolve_zone(zone_name)
    instant = naive.replace(tzinfo=UTC)
    start, end = day_bounds(local_date(instant, zone), zone)

    assert start <= instant < end


def test_a_day_is_due_exactly_at_the_next_local_midnight() -> None:
    zone = resolve_zone("Asia/Kathmandu")
    day = dt.date(2026, 3, 7)
    midnight = utc("2026-03-07T18:15")

    assert due_at(day, zone) == midnight
    assert due_dates(day, midnight - dt.timedelta(microseconds=1), zone) == []
    assert due_dates(day, midnight, zone) == [day]


def test_after_an_outage_every_missed_date_is_due_in_order() -> None:
    zone = resolve_zone("Europe/Paris")
    first = dt.date(2026, 3, 27)

    days = due_dates(first, utc("2026-03-30T09:00"), zone)

    assert days == [dt.date(2026, 3, 27), dt.date(2026, 3, 28), dt.date(2026, 3, 29)]
    assert due_dates(first, utc("2026-03-30T09:00"), zone, limit=2) == days[:2]


def test_unknown_zones_fall_back_to_utc() -> None:
    for name in ("Mars/Olympus_Mons", "", "../../etc/passwd", "Europe/Paris "):
        zone = resolve_zone(name)
        assert not zone.valid
        assert zone.tzinfo is UTC
        assert zone.name == name
    assert resolve_zone("Europe/Paris").valid


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        require_aware(dt.datetime(2026, 1, 1))  # noqa: DTZ001 (the point of the test)
    with pytest.raises(ValueError, match="naive"):
        due_dates(dt.date(2026, 1, 1), dt.datetime(2026, 1, 2), resolve_zone("UTC"))  # noqa: DTZ001


def test_a_new_user_starts_at_the_local_date_of_their_creation() -> None:
    created = utc("2026-03-07T20:00")  # already 2026-03-08 in Tokyo

    plan = days_to_close(
        timezone="Asia/Tokyo", created_at=created, next_date=None, now=utc("2026-03-08T15:00")
    )

    assert plan.days == [dt.date(2026, 3, 8)]
    assert plan.next_date == dt.date(2026, 3, 9)
    assert plan.next_due_at == utc("2026-03-09T15:00")


@pytest.mark.parametrize(
    ("new_zone", "now", "closes"),
    [
        # Moving east: the open date (03-08) is due sooner, at Tokyo's midnight.
        ("Asia/Tokyo", "2026-03-08T15:00", ["2026-03-08"]),
        # Moving west: it is due later; it is still 03-08 in Honolulu, nothing closes.
        ("Pacific/Honolulu", "2026-03-09T00:30", []),
        ("Pacific/Honolulu", "2026-03-09T10:00", ["2026-03-08"]),
    ],
)
def test_a_zone_change_moves_when_the_open_date_is_due_never_which_date(
    new_zone: str, now: str, closes: list[str]
) -> None:
    plan = days_to_close(
        timezone=new_zone,
        created_at=utc("2026-01-01T00:00"),
        next_date=dt.date(2026, 3, 8),
        now=utc(now),
    )

    assert [day.isoformat() for day in plan.days] == closes


@given(
    st.sampled_from(ZONES),
    st.datetimes(FROM_2018, TO_MID_2026),
    st.lists(st.integers(0, 10 * 24 * 3600), max_size=8),
    st.integers(1, 10 * 24 * 3600),
)
def test_any_sequence_of_sweeps_closes_the_dates_of_one_sweep_per_day_in_order(
    zone_name: str, created: dt.datetime, offsets: list[int], horizon: int
) -> None:
    created_at = created.replace(tzinfo=UTC)
    final = created_at + dt.timedelta(seconds=horizon)
    sweeps = sorted(created_at + dt.timedelta(seconds=s) for s in offsets if s <= horizon)
    closed: list[dt.date] = []
    next_date = None
    for now in [*sweeps, final]:
        plan = days_to_close(
            timezone=zone_name, created_at=created_at, next_date=next_date, now=now, limit=3
        )
        closed += plan.days
        next_date = plan.next_date
    # Catch up what the limit left open, as the sweep's next batches do.
    while True:
        plan = days_to_close(
            timezone=zone_name, created_at=created_at, next_date=next_date, now=final, limit=3
        )
        if not plan.days:
            break
        closed += plan.days
        next_date = plan.next_date

    zone = resolve_zone(zone_name)
    first = local_date(created_at, zone)
    expected = [
        first + dt.timedelta(days=n)
        for n in range((final.date() - first).days + 2)
        if due_at(first + dt.timedelta(days=n), zone) <= final
    ]
    assert closed == expected


@pytest.mark.parametrize(
    ("zone", "day", "boundary", "local_start"),
    [
        # New York springs forward at 02:00: 02:00 and 02:30 do not exist that day.
        ("America/New_York", "2026-03-08", "02:30", "2026-03-08T03:00:00-04:00"),
        ("America/New_York", "2026-03-08", "02:00", "2026-03-08T03:00:00-04:00"),
        ("America/New_York", "2026-03-08", "01:59", "2026-03-08T01:59:00-05:00"),
        # ...and falls back at 02:00: 01:30 happens twice, the first counts.
        ("America/New_York", "2026-11-01", "01:30", "2026-11-01T01:30:00-04:00"),
        # Lord Howe moves 30 minutes: 02:15 does not exist.
        ("Australia/Lord_Howe", "2026-10-04", "02:15", "2026-10-04T02:30:00+11:00"),
        # Santiago springs forward at midnight: the day starts at 01:00.
        ("America/Santiago", "2026-09-06", "00:00", "2026-09-06T01:00:00-03:00"),
        # Samoa skipped 30 December 2011: that date starts where 31 December does.
        ("Pacific/Apia", "2011-12-30", "04:00", "2011-12-31T00:00:00+14:00"),
        ("Asia/Kathmandu", "2026-06-01", "04:00", "2026-06-01T04:00:00+05:45"),
    ],
)
def test_a_day_starts_at_the_users_boundary_or_the_first_instant_after_it(
    zone: str, day: str, boundary: str, local_start: str
) -> None:
    start = day_start(
        dt.date.fromisoformat(day), resolve_zone(zone), dt.time.fromisoformat(boundary)
    )

    assert start == dt.datetime.fromisoformat(local_start)


def test_a_night_owls_date_runs_until_the_boundary_of_the_next_morning() -> None:
    zone = resolve_zone("Europe/Paris")
    four = dt.time(4)

    assert date_at(dt.datetime.fromisoformat("2026-06-02T03:59:59+02:00"), zone, four) == dt.date(
        2026, 6, 1
    )
    assert date_at(dt.datetime.fromisoformat("2026-06-02T04:00:00+02:00"), zone, four) == dt.date(
        2026, 6, 2
    )
    assert due_at(dt.date(2026, 6, 1), zone, four) == dt.datetime.fromisoformat(
        "2026-06-02T04:00:00+02:00"
    )
