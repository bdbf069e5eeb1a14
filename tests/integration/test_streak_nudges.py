"""The streak-at-risk nudge (`users.streak_reminder_at`): once per user date at that local time,
only while a streak is at stake and the day does not meet the goal so far, saying how many tasks
remain; held by quiet hours; DST-correct against the reference model (`tests/day_model.py`)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from planner_jobs.domain.days import resolve_zone
from planner_jobs.domain.notifications import AppLinks
from planner_jobs.domain.quiet_hours import quiet_until
from planner_jobs.jobs.reminders import ReminderSummary, send_reminders
from planner_jobs.runtime import Runtime
from tests import day_model
from tests.data import add_plan, add_routine, add_task, add_user
from tests.integration.conftest import subscribe, work
from tests.push_receiver import PushReceiver

GRACE = dt.timedelta(minutes=15)
MINUTE = dt.timedelta(minutes=1)
DUE = dt.datetime(2026, 6, 2, 18, tzinfo=dt.UTC)  # 20:00 in Paris on 2 June


def user_at_stake(
    engine: Engine,
    *,
    zone: str = "Europe/Paris",
    nudge: str = "20:00",
    boundary: str = "00:00",
    streak: int = 4,
    created: dt.datetime = dt.datetime(2026, 6, 1, 6, tzinfo=dt.UTC),
    **settings: object,
) -> uuid.UUID:
    """A user with a streak of `streak` days and a nudge at `nudge` local time."""
    with engine.begin() as c:
        user = add_user(c, created_at=created, timezone=zone)
        c.execute(
            sa.text(
                "UPDATE users SET day_starts_at = CAST(:b AS time),"
                " streak_reminder_at = CAST(:n AS time)"
                + "".join(f", {name} = :{name}" for name in settings)
                + " WHERE id = :u"
            ),
            {"b": boundary, "n": nudge, "u": user, **settings},
        )
        c.execute(
            sa.text("INSERT INTO streaks (user_id, current, longest) VALUES (:u, :s, :s)"),
            {"u": user, "s": streak},
        )
    return user


def plan_day(
    engine: Engine, user: uuid.UUID, day: dt.date, done: int, undone: int
) -> list[uuid.UUID]:
    """The user's plan for `day`: `done` tasks completed an hour before DUE, `undone` open."""
    with engine.begin() as c:
        plan = add_plan(c, user, day)
        return [
            add_task(c, user, plan, completed_at=DUE - dt.timedelta(hours=1) if n < done else None)
            for n in range(done + undone)
        ]


def sweep(engine: Engine, now: dt.datetime, **options: Any) -> ReminderSummary:
    return send_reminders(engine, now=now, grace=GRACE, **options)


def raised(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        return [
            dict(row._mapping)
            for row in c.execute(
                sa.text(
                    "SELECT user_id, body::jsonb AS body, topic, urgency, ttl, dedupe_key, source"
                    " FROM notifications ORDER BY id"
                )
            )
        ]


def test_a_streak_at_risk_is_nudged_once_a_day_with_the_tasks_that_remain(
    engine: Engine,
) -> None:
    user = user_at_stake(engine)  # 4-day streak, 20:00 in Paris (18:00 UTC in June)
    plan_day(engine, user, dt.date(2026, 6, 2), done=1, undone=3)  # 1 of 4: 2 more make 75 %
    sweep(engine, DUE - MINUTE)  # plans it

    on_time = sweep(engine, DUE)
    again = sweep(engine, DUE + 5 * MINUTE)

    assert (on_time.streak_sent, again.streak_sent) == (1, 0)
    [notice] = raised(engine)
    assert notice["body"]["title"] == "Your 4-day streak is at risk"
    assert notice["body"]["body"] == "Complete 2 more tasks today to keep it going."
    assert notice["body"]["data"] == {"date": "2026-06-02", "streak": 4, "tasksRemaining": 2}
    assert (notice["topic"], notice["urgency"], notice["dedupe_key"], notice["source"]) == (
        "streak-risk",
        "normal",
        "planner-streak-risk-2026-06-02",
        "streak",
    )
    # Worth showing until the date ends: midnight in Paris, 22:00 UTC.
    assert notice["ttl"] == 4 * 3600


def test_the_next_date_is_nudged_again(engine: Engine) -> None:
    user_at_stake(engine)
    sweep(engine, DUE - MINUTE)

    first = sweep(engine, DUE)
    second = sweep(engine, DUE + dt.timedelta(days=1))

    assert (first.streak_sent, second.streak_sent) == (1, 1)
    dates = [n["body"]["data"]["date"] for n in raised(engine)]
    assert dates == ["2026-06-02", "2026-06-03"]


def test_none_when_the_goal_is_met_there_is_no_streak_or_the_day_is_protected(
    engine: Engine,
) -> None:
    met = user_at_stake(engine)
    plan_day(engine, met, dt.date(2026, 6, 2), done=3, undone=1)  # 75 %
    user_at_stake(engine, streak=0)
    user_at_stake(engine, days_off=1 << dt.date(2026, 6, 2).weekday())
    user_at_stake(engine, vacation_start=dt.date(2026, 6, 1), vacation_end=dt.date(2026, 6, 2))
    own_bar = user_at_stake(engine, streak_threshold=100)  # 3 of 4 is not enough for this one
    plan_day(engine, own_bar, dt.date(2026, 6, 2), done=3, undone=1)
    sweep(engine, DUE - MINUTE)  # all planned for 2 June

    on_time = sweep(engine, DUE, batch_size=2)
    nothing_left = sweep(engine, DUE + GRACE + MINUTE)

    assert (on_time.streak_sent, on_time.streak_skipped) == (1, 4)
    assert (nothing_left.streak_sent, nothing_left.streak_skipped) == (0, 0)
    [notice] = raised(engine)
    assert notice["user_id"] == own_bar
    assert notice["body"]["data"]["tasksRemaining"] == 1
    with engine.connect() as c:
        planned = c.scalars(
            sa.text(
                "SELECT DISTINCT streak_nudge_date FROM users WHERE streak_reminder_at IS NOT NULL"
            )
        ).all()
    assert planned == [dt.date(2026, 6, 3)]


def test_the_default_threshold_is_the_setting(engine: Engine) -> None:
    user = user_at_stake(engine)
    plan_day(engine, user, dt.date(2026, 6, 2), done=3, undone=1)  # 75 %
    sweep(engine, DUE - MINUTE)

    summary = sweep(engine, DUE, default_threshold=80)

    assert summary.streak_sent == 1
    [notice] = raised(engine)
    assert notice["body"]["data"]["tasksRemaining"] == 1


def test_a_day_with_nothing_planned_has_not_met_the_goal(engine: Engine) -> None:
    user_at_stake(engine, streak=9)
    sweep(engine, DUE - MINUTE)

    sweep(engine, DUE)

    [notice] = raised(engine)
    assert notice["body"]["title"] == "Your 9-day streak is at risk"
    assert notice["body"]["body"].startswith("Nothing is planned today")
    assert notice["body"]["data"]["tasksRemaining"] == 1


def test_tasks_are_counted_by_the_rollovers_rule(engine: Engine) -> None:
    """Routine tasks count every date, done only when completed inside it (one still checked
    from yesterday is not); the plan's tasks count for their plan's date only."""
    user = user_at_stake(engine, boundary="04:00")  # 2 June runs 04:00 to 04:00 in Paris
    plan_day(engine, user, dt.date(2026, 6, 2), done=1, undone=1)
    plan_day(engine, user, dt.date(2026, 6, 1), done=0, undone=5)  # another date's plan
    day_start = dt.datetime(2026, 6, 2, 2, tzinfo=dt.UTC)
    with engine.begin() as c:
        add_routine(
            c,
            user,
            [day_start + MINUTE, day_start - MINUTE, True, None],  # today, yesterday, no time, no
        )
    sweep(engine, DUE - MINUTE)

    sweep(engine, DUE)

    # 2 plan tasks (1 done) + 4 routine tasks (2 done: today's and the one without a time):
    # 3 of 6; 75 % of 6 is 4.5, so 2 more.
    [notice] = raised(engine)
    assert notice["body"]["data"]["tasksRemaining"] == 2


def test_a_nudge_past_its_grace_is_skipped_and_a_new_one_waits_for_tomorrow(
    engine: Engine,
) -> None:
    user_at_stake(engine)
    sweep(engine, DUE - dt.timedelta(hours=1))
    late = sweep(engine, DUE + GRACE + MINUTE)
    user_at_stake(engine)  # its time today has passed when it is first planned
    new = sweep(engine, DUE + GRACE + 2 * MINUTE)

    assert (late.streak_sent, late.streak_skipped) == (0, 1)
    assert (new.streak_sent, new.streak_skipped) == (0, 0)
    assert raised(engine) == []
    with engine.connect() as c:
        planned = c.scalars(sa.text("SELECT DISTINCT streak_nudge_date FROM users")).all()
    assert planned == [dt.date(2026, 6, 3)]


def test_a_changed_time_is_planned_again(engine: Engine) -> None:
    user = user_at_stake(engine, nudge="21:00")
    sweep(engine, DUE - MINUTE)  # planned for 21:00
    with engine.begin() as c:
        c.execute(
            sa.text("UPDATE users SET streak_reminder_at = '20:00' WHERE id = :u"), {"u": user}
        )

    summary = sweep(engine, DUE)

    assert summary.streak_sent == 1


def test_with_the_app_url_it_is_declarative_and_leads_to_the_streak(engine: Engine) -> None:
    user_at_stake(engine)
    sweep(engine, DUE - MINUTE)

    sweep(engine, DUE, links=AppLinks("https://p.example"))

    [notice] = raised(engine)
    assert notice["body"]["web_push"] == 8030
    assert notice["body"]["notification"]["navigate"] == "https://p.example/streak"


def test_an_unknown_zone_is_nudged_in_utc_and_reported(engine: Engine) -> None:
    user_at_stake(engine, zone="Mars/Olympus_Mons")
    sweep(engine, dt.datetime(2026, 6, 2, 19, tzinfo=dt.UTC))

    summary = sweep(engine, dt.datetime(2026, 6, 2, 20, tzinfo=dt.UTC))

    assert (summary.streak_sent, summary.unknown_zones) == (1, 1)


def test_a_nudge_inside_quiet_hours_waits_for_their_end(
    push_runtime: Runtime, receiver: PushReceiver
) -> None:
    """Unlike reminders, which the user timed themselves, the nudge obeys quiet hours."""
    zone = resolve_zone("Asia/Kathmandu")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    local = now.astimezone(zone.tzinfo)
    start = (local - dt.timedelta(hours=1)).time().replace(second=0)
    end = (local + dt.timedelta(hours=2)).time().replace(second=0)
    user = user_at_stake(
        push_runtime.engine,
        zone="Asia/Kathmandu",
        nudge=(local - MINUTE).time().replace(second=0).isoformat(),
        created=now - dt.timedelta(days=2),
        quiet_hours_start=start,
        quiet_hours_end=end,
    )
    subscribe(push_runtime, user, receiver, "phone")

    summary = send_reminders(push_runtime.engine, now=now, grace=GRACE)
    work(push_runtime)

    if local.date() != (local - MINUTE).date():
        return  # a minute past local midnight: the nudge time belongs to yesterday's date
    assert summary.streak_sent == 1
    assert receiver.payloads("phone") == []
    with push_runtime.engine.connect() as c:
        held = c.scalar(sa.text("SELECT next_attempt_at FROM push_deliveries"))
    expected = quiet_until(now, zone, start, end)
    assert expected is not None
    assert held is not None
    assert abs(held - expected) < dt.timedelta(minutes=1)


EDGES = {
    "America/New_York": "2026-03-08",
    "Europe/Paris": "2026-10-25",
    "Australia/Lord_Howe": "2026-10-04",
    "Pacific/Chatham": "2026-04-05",
    "America/Santiago": "2026-09-06",
    "Pacific/Apia": "2011-12-30",
}
TIMES = [dt.time(h, m) for h, m in ((0, 0), (1, 30), (2, 0), (2, 30), (3, 45), (21, 0))]


@settings(
    max_examples=int(os.environ.get("PLANNER_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.sampled_from(sorted(EDGES)),
    st.sampled_from(TIMES),
    st.sampled_from([dt.time(0), dt.time(2, 30), dt.time(4)]),
    st.booleans(),
)
def test_each_date_at_stake_is_nudged_once_at_the_models_instant_across_dst(
    engine: Engine, zone: str, nudge_time: dt.time, boundary: dt.time, checked_in_time: bool
) -> None:
    """Around a DST change, with one routine task and a goal of 100 %: before each date's nudge
    the routine task is checked either at the date's first instant by the model (the goal is
    met: no nudge) or a second before it (yesterday's check: one nudge, one task remaining). A
    sweep a second before the model's nudge instant raises nothing; one at it raises that
    date's, if any; one a minute after raises nothing more."""
    edge = dt.datetime.fromisoformat(EDGES[zone]).replace(tzinfo=dt.UTC)
    created = edge - dt.timedelta(days=1, hours=12)
    first = day_model.date_of(created, zone, boundary)
    slots: list[tuple[dt.date, dt.datetime]] = []
    for n in range(1, 5):
        day = first + dt.timedelta(days=n)
        calendar = day if nudge_time >= boundary else day + dt.timedelta(days=1)
        at = day_model.start(calendar, zone, nudge_time)
        if at >= day_model.start(day + dt.timedelta(days=1), zone, boundary):
            continue  # the date ends before that time comes (Samoa's skipped day): no nudge
        slots.append((day, at))
    try:
        user = user_at_stake(
            engine,
            zone=zone,
            nudge=nudge_time.isoformat(),
            boundary=boundary.isoformat(),
            created=created,
            streak_threshold=100,
        )
        with engine.begin() as c:
            [task] = add_routine(c, user, [None])
        sweep(engine, slots[0][1] - dt.timedelta(hours=1))  # plans the first one
        expected = []
        for day, at in slots:
            begins = day_model.start(day, zone, boundary)
            checked = begins if checked_in_time else begins - dt.timedelta(seconds=1)
            with engine.begin() as c:
                c.execute(
                    sa.text(
                        "UPDATE routine_tasks SET completed = true, completed_at = :at"
                        " WHERE id = :id"
                    ),
                    {"at": checked, "id": task},
                )
            before = sweep(engine, at - dt.timedelta(seconds=1))
            on_time = sweep(engine, at)
            after = sweep(engine, at + MINUTE)
            sent = (before.streak_sent, on_time.streak_sent, after.streak_sent)
            assert sent == (0, 0 if checked_in_time else 1, 0), (zone, nudge_time, boundary, day)
            assert on_time.streak_skipped == (1 if checked_in_time else 0)
            if not checked_in_time:
                expected.append(day.isoformat())
        with engine.connect() as c:
            notices = c.execute(
                sa.text(
                    "SELECT body::jsonb->'data'->>'date', body::jsonb->'data'->>'tasksRemaining'"
                    " FROM notifications ORDER BY id"
                )
            ).all()
        assert [date for date, _ in notices] == expected
        assert {remaining for _, remaining in notices} <= {"1"}
    finally:
        with engine.begin() as c:
            c.execute(sa.text("TRUNCATE users CASCADE"))
