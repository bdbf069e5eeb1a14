"""Routine reminders (`routine_tasks.remind_time`): once per user date at that local time, quiet
when the routine task is done, on vacation dates and days off, never late; DST-correct against
the reference model (`tests/day_model.py`)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from planner_jobs.domain.notifications import AppLinks
from planner_jobs.jobs.reminders import ReminderSummary, send_reminders
from tests import day_model
from tests.data import add_routine, add_user

GRACE = dt.timedelta(minutes=15)
MINUTE = dt.timedelta(minutes=1)


def user_with_routine(
    engine: Engine,
    *,
    zone: str = "Europe/Paris",
    remind: str = "09:00",
    boundary: str = "00:00",
    created: dt.datetime = dt.datetime(2026, 6, 1, 6, tzinfo=dt.UTC),
    **settings: object,
) -> tuple[uuid.UUID, uuid.UUID]:
    with engine.begin() as c:
        user = add_user(c, created_at=created, timezone=zone)
        c.execute(
            sa.text(
                "UPDATE users SET day_starts_at = CAST(:b AS time)"
                + "".join(f", {name} = :{name}" for name in settings)
                + " WHERE id = :u"
            ),
            {"b": boundary, "u": user, **settings},
        )
        [task] = add_routine(c, user, [None])
        c.execute(
            sa.text("UPDATE routine_tasks SET remind_time = CAST(:t AS time) WHERE id = :id"),
            {"t": remind, "id": task},
        )
    return user, task


def remind(engine: Engine, now: dt.datetime, **options: Any) -> ReminderSummary:
    return send_reminders(engine, now=now, grace=GRACE, **options)


def raised(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        return [
            dict(row._mapping)
            for row in c.execute(
                sa.text(
                    "SELECT body::jsonb AS body, topic, urgency, ttl, dedupe_key, source"
                    " FROM notifications ORDER BY id"
                )
            )
        ]


def test_a_routine_is_reminded_once_a_day_at_its_local_time(engine: Engine) -> None:
    _user, task = user_with_routine(engine)  # Paris, 09:00 (07:00 UTC in June)
    day = dt.datetime(2026, 6, 2, 7, tzinfo=dt.UTC)

    remind(engine, dt.datetime(2026, 6, 2, 6, 59, tzinfo=dt.UTC))  # plans it
    early = raised(engine)
    first = remind(engine, day)
    again = remind(engine, day + 5 * MINUTE)
    next_day = remind(engine, day + dt.timedelta(days=1))

    assert early == []
    assert (first.routine_sent, again.routine_sent, next_day.routine_sent) == (1, 0, 1)
    [one, two] = raised(engine)
    assert one["body"]["title"] == "Routine: step 0"
    assert one["body"]["data"] == {"routineTaskId": str(task), "date": "2026-06-02"}
    assert two["body"]["data"]["date"] == "2026-06-03"
    assert (one["topic"], one["urgency"], one["ttl"], one["source"]) == (
        f"routine-{task.hex[:24]}",
        "normal",
        900,
        "reminder",
    )
    assert one["dedupe_key"] == f"planner-routine-{task}-2026-06-02"


def test_done_or_away_is_skipped_and_every_one_is_planned_for_the_next_day(
    engine: Engine,
) -> None:
    due = dt.datetime(2026, 6, 2, 7, tzinfo=dt.UTC)  # 09:00 in Paris
    done, _ = user_with_routine(engine)
    with engine.begin() as c:
        c.execute(
            sa.text(
                "UPDATE routine_tasks SET completed = true, completed_at = :at"
                " WHERE routine_id IN (SELECT id FROM daily_routines WHERE user_id = :u)"
            ),
            {"at": due - dt.timedelta(hours=1), "u": done},
        )
    user_with_routine(engine, days_off=1 << dt.date(2026, 6, 2).weekday())
    user_with_routine(engine, vacation_start=dt.date(2026, 6, 1), vacation_end=dt.date(2026, 6, 2))
    user_with_routine(engine)  # the one reminded
    remind(engine, due - MINUTE)  # all planned for 2 June

    on_time = remind(engine, due, batch_size=2)
    nothing_left = remind(engine, due + GRACE + MINUTE)

    assert (on_time.routine_sent, on_time.routine_skipped) == (1, 3)
    assert (nothing_left.routine_sent, nothing_left.routine_skipped) == (0, 0)
    with engine.connect() as c:
        planned = (
            c.execute(sa.text("SELECT DISTINCT reminder_date FROM routine_tasks")).scalars().all()
        )
    assert planned == [dt.date(2026, 6, 3)]


def test_a_reminder_past_its_grace_is_skipped_not_sent_late(engine: Engine) -> None:
    user_with_routine(engine)
    remind(engine, dt.datetime(2026, 6, 2, 6, tzinfo=dt.UTC))

    late = remind(engine, dt.datetime(2026, 6, 2, 7, 16, tzinfo=dt.UTC))  # 16 min after 09:00

    assert (late.routine_sent, late.routine_skipped) == (0, 1)
    assert raised(engine) == []


def test_with_the_app_url_it_is_declarative_and_leads_to_the_routines(engine: Engine) -> None:
    user_with_routine(engine)
    remind(engine, dt.datetime(2026, 6, 2, 6, tzinfo=dt.UTC))

    remind(engine, dt.datetime(2026, 6, 2, 7, tzinfo=dt.UTC), links=AppLinks("https://p.example"))

    [notice] = raised(engine)
    assert notice["body"]["web_push"] == 8030
    assert notice["body"]["notification"]["navigate"] == "https://p.example/routines"


def test_an_unknown_zone_is_reminded_in_utc_and_reported(engine: Engine) -> None:
    user_with_routine(engine, zone="Mars/Olympus_Mons")
    remind(engine, dt.datetime(2026, 6, 2, 8, tzinfo=dt.UTC))

    summary = remind(engine, dt.datetime(2026, 6, 2, 9, tzinfo=dt.UTC))

    assert (summary.routine_sent, summary.unknown_zones) == (1, 1)


EDGES = {
    "America/New_York": "2026-03-08",
    "Europe/Paris": "2026-10-25",
    "Australia/Lord_Howe": "2026-10-04",
    "Pacific/Chatham": "2026-04-05",
    "Asia/Kathmandu": "2026-06-01",
    "America/Santiago": "2026-09-06",
    "Pacific/Apia": "2011-12-30",
}
TIMES = [dt.time(h, m) for h, m in ((0, 0), (0, 30), (1, 30), (2, 0), (2, 15), (2, 30), (9, 0))]


@settings(
    max_examples=int(os.environ.get("PLANNER_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.sampled_from(sorted(EDGES)),
    st.sampled_from(TIMES),
    st.sampled_from([dt.time(0), dt.time(2, 30), dt.time(4)]),
    st.integers(1, 14 * 60),
)
def test_each_date_is_reminded_once_at_the_models_instant_across_dst(
    engine: Engine, zone: str, remind_time: dt.time, boundary: dt.time, later: int
) -> None:
    """Around a DST change, a sweep a second before each date's reminder instant by the model
    (the time on the calendar day it falls on within the user's date; the first instant after
    a gap, the first of a fold) raises nothing, one at it raises that date's, and one `later`
    seconds after (within the grace) raises nothing more."""
    edge = dt.datetime.fromisoformat(EDGES[zone]).replace(tzinfo=dt.UTC)
    created = edge - dt.timedelta(days=1, hours=12)
    first = day_model.date_of(created, zone, boundary)
    instants: list[tuple[dt.date, dt.datetime]] = []
    for n in range(5):
        day = first + dt.timedelta(days=n)
        calendar = day if remind_time >= boundary else day + dt.timedelta(days=1)
        at = day_model.start(calendar, zone, remind_time)
        if at >= day_model.start(day + dt.timedelta(days=1), zone, boundary):
            continue  # the date ends before that time comes (Samoa's skipped day): no reminder
        instants.append((day, at))
    try:
        user_with_routine(
            engine,
            zone=zone,
            remind=remind_time.isoformat(),
            boundary=boundary.isoformat(),
            created=created,
        )
        began = remind(engine, created)
        # The user's first date, whose time may have come already: within the grace it is
        # reminded at once, as a task reminder set just after its time is.
        expected = [
            day.isoformat() for day, at in instants[:1] if at <= created and created - at <= GRACE
        ]
        assert began.routine_sent == len(expected)
        for day, at in instants:
            if at <= created:
                continue  # its time had come when the user began
            before = remind(engine, at - dt.timedelta(seconds=1))
            on_time = remind(engine, at)
            after = remind(engine, at + dt.timedelta(seconds=later))
            assert (before.routine_sent, on_time.routine_sent, after.routine_sent) == (0, 1, 0), (
                zone,
                remind_time,
                boundary,
                later,
                day,
                at,
            )
            expected.append(day.isoformat())
        with engine.connect() as c:
            dates = c.scalars(
                sa.text("SELECT body::jsonb->'data'->>'date' FROM notifications ORDER BY id")
            ).all()
        assert dates == expected
    finally:
        with engine.begin() as c:
            c.execute(sa.text("TRUNCATE users CASCADE"))
