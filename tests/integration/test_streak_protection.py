"""Days off, vacations and freezes on a real PostgreSQL, at the edges: days of 23, 23.5 and 25
hours, zones at +14 and +5:45, a closed date never reopened, a freeze's notification and the
effects counted in the metrics."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from planner_jobs.domain.days import due_at, resolve_zone
from planner_jobs.domain.notifications import AppLinks
from planner_jobs.domain.streaks import FreezeRules
from planner_jobs.jobs.rollover import sweep
from planner_jobs.metrics import Metrics
from tests.data import add_plan, add_task, add_user

ONE_DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


def new_user(
    engine: Engine,
    zone: str,
    first: dt.date,
    outcomes: list[str],
    *,
    current: int = 5,
    freezes: int = 0,
    **protection: object,
) -> uuid.UUID:
    """A user created at the start of `first` in `zone`, a streak of `current`, and one plan per
    day from `first` ("met": its one task done; "missed": not done; "empty": no plan)."""
    created = due_at(first - ONE_DAY, resolve_zone(zone))
    with engine.begin() as c:
        user = add_user(c, created_at=created, timezone=zone, carry_over="none")
        if protection:
            c.execute(
                sa.text(
                    "UPDATE users SET "
                    + ", ".join(f"{name} = :{name}" for name in protection)
                    + " WHERE id = :u"
                ),
                {**protection, "u": user},
            )
        c.execute(
            sa.text(
                "INSERT INTO streaks (user_id, current, longest, freezes) VALUES (:u, :c, :c, :f)"
            ),
            {"u": user, "c": current, "f": freezes},
        )
        for offset, outcome in enumerate(outcomes):
            if outcome != "empty":
                plan = add_plan(c, user, first + offset * ONE_DAY)
                add_task(c, user, plan, completed=outcome == "met")
    return user


def effects(engine: Engine, user: uuid.UUID) -> list[tuple[dt.date, str]]:
    with engine.connect() as c:
        return [
            (row.day, row.streak_effect)
            for row in c.execute(
                sa.text(
                    "SELECT day, streak_effect FROM performance_history WHERE user_id = :u"
                    " ORDER BY day"
                ),
                {"u": user},
            )
        ]


def streak_of(engine: Engine, user: uuid.UUID) -> tuple[int, int, int]:
    with engine.connect() as c:
        row = c.execute(
            sa.text("SELECT current, longest, freezes FROM streaks WHERE user_id = :u"),
            {"u": user},
        ).one()
    return (row.current, row.longest, row.freezes)


# Each zone with a date whose length is not 24 hours (or, without DST, any date): a vacation
# ending that date covers all of it, a weekday off is that weekday in the zone, and each date
# is closed at its own local midnight, not a second before.
EDGES = [
    ("Europe/London", dt.date(2026, 3, 29)),  # 23 hours
    ("Europe/London", dt.date(2026, 10, 25)),  # 25 hours
    ("America/New_York", dt.date(2026, 3, 8)),
    ("America/New_York", dt.date(2026, 11, 1)),
    ("Australia/Lord_Howe", dt.date(2026, 4, 5)),  # 24.5 hours
    ("Australia/Lord_Howe", dt.date(2026, 10, 4)),  # 23.5 hours
    ("Pacific/Kiritimati", dt.date(2026, 3, 29)),  # UTC+14
    ("Asia/Kathmandu", dt.date(2026, 3, 29)),  # UTC+5:45
]


@pytest.mark.parametrize(("zone", "edge"), EDGES, ids=[f"{z}-{d}" for z, d in EDGES])
def test_a_vacation_and_a_day_off_hold_to_the_local_midnight_around_a_dst_change(
    engine: Engine, zone: str, edge: dt.date
) -> None:
    tz = resolve_zone(zone)
    first = edge - ONE_DAY
    after = edge + ONE_DAY
    weekday_off = 1 << after.weekday()
    user = new_user(
        engine,
        zone,
        first,
        ["missed", "empty", "missed", "missed"],
        vacation_start=first,
        vacation_end=edge,
        days_off=weekday_off,
    )

    for day in (first, edge, after):
        sweep(engine, now=due_at(day, tz) - SECOND, default_threshold=75)
        assert day not in dict(effects(engine, user)), "closed before its local midnight"
        sweep(engine, now=due_at(day, tz), default_threshold=75)
        assert day in dict(effects(engine, user)), "not closed at its local midnight"
    sweep(engine, now=due_at(after + ONE_DAY, tz), default_threshold=75)

    assert effects(engine, user) == [
        (first, "vacation"),
        (edge, "vacation"),
        (after, "day_off"),
        (after + ONE_DAY, "reset"),
    ]
    assert streak_of(engine, user) == (0, 5, 0)


def test_settings_changed_after_a_date_is_closed_do_not_reopen_it(engine: Engine) -> None:
    first = dt.date(2026, 6, 1)
    tz = resolve_zone("Europe/Paris")
    user = new_user(engine, "Europe/Paris", first, ["missed", "missed"])
    sweep(engine, now=due_at(first, tz), default_threshold=75)

    with engine.begin() as c:
        c.execute(
            sa.text(
                "UPDATE users SET days_off = 127, vacation_start = :d, vacation_end = :d"
                " WHERE id = :u"
            ),
            {"d": first, "u": user},
        )
    sweep(engine, now=due_at(first + ONE_DAY, tz), default_threshold=75)

    assert effects(engine, user) == [(first, "reset"), (first + ONE_DAY, "day_off")]


def test_with_the_app_url_the_freeze_notice_is_declarative_and_leads_to_the_streak(
    engine: Engine,
) -> None:
    first = dt.date(2026, 6, 1)
    user = new_user(engine, "UTC", first, ["missed"], current=3, freezes=1)

    sweep(
        engine,
        now=due_at(first, resolve_zone("UTC")),
        default_threshold=75,
        links=AppLinks("https://planner.example"),
    )

    assert effects(engine, user) == [(first, "freeze")]
    with engine.connect() as c:
        body = c.scalar(sa.text("SELECT body FROM notifications"))
    assert json.loads(body) == {
        "web_push": 8030,
        "notification": {
            "title": "Streak freeze used",
            "body": "You missed Monday 1 June; a freeze kept your 3-day streak. 0 freezes left.",
            "tag": "streak-freeze",
            "navigate": "https://planner.example/streak",
        },
        "mutable": True,
    }


def test_a_backfill_earns_then_spends_freezes_in_date_order_and_says_so(engine: Engine) -> None:
    first = dt.date(2026, 6, 1)
    tz = resolve_zone("America/New_York")
    user = new_user(
        engine, "America/New_York", first, ["met", "met", "missed", "missed"], current=1
    )
    metrics = Metrics()

    sweep(
        engine,
        now=due_at(first + 3 * ONE_DAY, tz),
        default_threshold=75,
        freeze_rules=FreezeRules(every=3, most=2),
        metrics=metrics,
    )

    # 2, 3 (a freeze earned), then the freeze spent on June 3, and June 4 resets.
    assert [effect for _, effect in effects(engine, user)] == [
        "extended",
        "extended",
        "freeze",
        "reset",
    ]
    assert streak_of(engine, user) == (0, 3, 0)
    with engine.connect() as c:
        notice = c.execute(
            sa.text("SELECT body, urgency, topic, dedupe_key, source FROM notifications")
        ).one()
    assert (notice.urgency, notice.topic, notice.dedupe_key, notice.source) == (
        "low",
        "streak-freeze",
        "planner-streak-freeze-2026-06-03",
        "rollover",
    )
    assert json.loads(notice.body) == {
        "title": "Streak freeze used",
        "body": "You missed Wednesday 3 June; a freeze kept your 3-day streak. 0 freezes left.",
        "tag": "streak-freeze",
    }
    counted = {
        effect: metrics.registry.get_sample_value(
            "planner_jobs_rollover_streak_effects_total", {"effect": effect}
        )
        for effect in ("extended", "freeze", "reset")
    }
    assert counted == {"extended": 2.0, "freeze": 1.0, "reset": 1.0}
