"""Property: whatever the days (met, missed, empty), the days off, the vacation, the freezes held
and the sweeps' times, the rollover leaves what the contract's five rules say, day by day: each
date read with the user's settings as they were when it was closed (settings changed between
sweeps never reopen a closed date), freezes earned and spent in date order through a backfill,
and one notification for each freeze spent.

Each example replays one user's days on a real PostgreSQL and compares them with
`tests.streak_model.reference`, written apart from the domain code.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from planner_jobs.domain.days import due_at, first_date, resolve_zone
from planner_jobs.domain.streaks import FreezeRules
from planner_jobs.jobs.rollover import sweep
from tests.data import add_plan, add_task, add_user
from tests.streak_model import Day, reference

ZONES = [
    "UTC",
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Kiritimati",
    "Asia/Kathmandu",
    "America/Santiago",
]
Vacation = tuple[int, int] | None  # (first day's offset, length - 1) from the first date


@dataclass(frozen=True)
class Settings:
    days_off: int
    vacation: Vacation


@dataclass(frozen=True)
class Scenario:
    zone: str
    created_at: dt.datetime
    outcomes: list[str]
    current: int
    freezes: int
    every: int
    most: int
    # Before each sweep, the user's settings (the first applies from the start); the sweep
    # instants are offsets in seconds after the last date's end, in order; most close several
    # dates at once, as after an outage.
    settings: list[Settings]
    sweeps: list[int]


vacations = st.one_of(st.none(), st.tuples(st.integers(-2, 10), st.integers(0, 6)))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    outcomes = draw(st.lists(st.sampled_from(["met", "missed", "empty"]), min_size=1, max_size=9))
    sweeps = sorted(draw(st.lists(st.integers(-9 * 86400, 3600), min_size=1, max_size=4)))
    return Scenario(
        zone=draw(st.sampled_from(ZONES)),
        created_at=draw(
            st.datetimes(
                dt.datetime(2026, 1, 1),  # noqa: DTZ001 (hypothesis bounds are naive)
                dt.datetime(2026, 12, 1),  # noqa: DTZ001
            )
        ).replace(tzinfo=dt.UTC, microsecond=0),
        outcomes=outcomes,
        current=draw(st.integers(0, 8)),
        freezes=draw(st.integers(0, 3)),
        every=draw(st.integers(1, 5)),
        most=draw(st.integers(0, 3)),
        settings=[Settings(draw(st.integers(0, 127)), draw(vacations)) for _ in range(len(sweeps))],
        sweeps=sweeps,
    )


def dates_of(scenario: Scenario) -> list[dt.date]:
    first = first_date(scenario.created_at, resolve_zone(scenario.zone))
    return [first + dt.timedelta(days=i) for i in range(len(scenario.outcomes))]


def vacation_dates(first: dt.date, vacation: Vacation) -> tuple[dt.date, dt.date] | None:
    if vacation is None:
        return None
    start = first + dt.timedelta(days=vacation[0])
    return start, start + dt.timedelta(days=vacation[1])


def play(engine: Engine, scenario: Scenario, rules: FreezeRules) -> tuple[Day, ...]:
    """Set the user up, run the sweeps (changing the settings before each); return the days as
    the reference model must read them: each with the settings of the sweep that closed it."""
    zone = resolve_zone(scenario.zone)
    dates = dates_of(scenario)
    with engine.begin() as c:
        user = add_user(
            c, created_at=scenario.created_at, timezone=scenario.zone, carry_over="none"
        )
        c.execute(
            sa.text(
                "INSERT INTO streaks (user_id, current, longest, freezes) VALUES (:u, :c, :c, :f)"
            ),
            {"u": user, "c": scenario.current, "f": scenario.freezes},
        )
        for day, outcome in zip(dates, scenario.outcomes, strict=True):
            if outcome == "empty":
                continue
            plan = add_plan(c, user, day)
            add_task(c, user, plan, completed=outcome == "met")
    closed_with: dict[dt.date, Settings] = {}
    last_end = due_at(dates[-1], zone)
    instants = [last_end + dt.timedelta(seconds=s) for s in scenario.sweeps]
    for at, chosen in zip(
        [*instants, last_end], [*scenario.settings, scenario.settings[-1]], strict=True
    ):
        with engine.begin() as c:
            start_end = vacation_dates(dates[0], chosen.vacation)
            c.execute(
                sa.text(
                    "UPDATE users SET days_off = :off, vacation_start = :vs, vacation_end = :ve"
                    " WHERE id = :u"
                ),
                {
                    "off": chosen.days_off,
                    "vs": start_end and start_end[0],
                    "ve": start_end and start_end[1],
                    "u": user,
                },
            )
        sweep(engine, now=at, default_threshold=75, freeze_rules=rules)
        for day in dates:
            if day not in closed_with and due_at(day, zone) <= at:
                closed_with[day] = chosen
    return tuple(
        Day(
            day,
            outcome,
            closed_with[day].days_off,
            vacation_dates(dates[0], closed_with[day].vacation),
        )
        for day, outcome in zip(dates, scenario.outcomes, strict=True)
    )


@settings(
    max_examples=int(os.environ.get("PLANNER_PROPERTY_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenarios())
def test_the_rollover_applies_the_five_streak_rules_as_the_reference_model(
    engine: Engine, scenario: Scenario
) -> None:
    rules = FreezeRules(every=scenario.every, most=scenario.most)
    try:
        days = play(engine, scenario, rules)
        with engine.connect() as c:
            effects = c.scalars(
                sa.text("SELECT streak_effect FROM performance_history ORDER BY day")
            ).all()
            current, longest, freezes = c.execute(
                sa.text("SELECT current, longest, freezes FROM streaks")
            ).one()
            notified = c.scalars(
                sa.text(
                    "SELECT dedupe_key FROM notifications"
                    " WHERE topic = 'streak-freeze' AND urgency = 'low' ORDER BY id"
                )
            ).all()
    finally:
        with engine.begin() as c:
            c.execute(sa.text("TRUNCATE users CASCADE"))

    expected = reference(
        list(days),
        freezes=scenario.freezes,
        every=scenario.every,
        most=scenario.most,
        current=scenario.current,
    )
    assert effects == expected.effects
    assert (current, longest, freezes) == (expected.current, expected.longest, expected.freezes)
    assert notified == [
        f"planner-streak-freeze-{day.isoformat()}" for day in expected.freezes_spent_on
    ]
