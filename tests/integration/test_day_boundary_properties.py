"""Property: with `users.day_starts_at`, the rollover closes each date at the user's own
boundary, exactly when the reference model (`tests/day_model.py`, the clock walked a minute at a
time) says it falls due and with what the model counts inside it; across DST gaps and folds in
zones with whole-hour, 30-minute and 45-minute shifts, transitions at midnight, and the day
Samoa skipped. And changing the boundary never reopens or skips a date.

Each example replays one user's timeline on a real PostgreSQL: completions at their instants,
a sweep one second before each date's reference due instant (which must close nothing new), one
at it (which must close that date), and one at the end.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from planner_jobs.jobs.rollover import sweep
from tests import day_model
from tests.data import add_plan, add_routine, add_task, add_user, complete, history

# Zones and days where their clocks jump: gaps and folds of an hour (New York, Paris), of 30
# minutes (Lord Howe), a 45-minute offset with DST (Chatham), one without (Kathmandu),
# transitions at midnight (Santiago, Havana), and Samoa, which skipped 30 December 2011.
EDGES = {
    "America/New_York": ["2026-03-08", "2026-11-01"],
    "Europe/Paris": ["2026-03-29", "2026-10-25"],
    "Australia/Lord_Howe": ["2026-04-05", "2026-10-04"],
    "Pacific/Chatham": ["2026-04-05", "2026-09-27"],
    "Asia/Kathmandu": ["2026-06-01"],
    "America/Santiago": ["2026-04-05", "2026-09-06"],
    "America/Havana": ["2026-03-08", "2026-11-01"],
    "Pacific/Apia": ["2011-12-30"],
}
# Boundaries that fall in those gaps and folds (01:30, 02:15, 02:30), at midnight, and others.
BOUNDARIES = [dt.time(h, m) for h, m in ((0, 0), (0, 30), (1, 30), (2, 15), (2, 30), (4, 0))]
HOUR = 3600
ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Scenario:
    zone: str
    boundary: dt.time
    created_at: dt.datetime
    final: dt.datetime
    plan_tasks: list[
        list[int | None]
    ]  # per plan date from the first: completions (s after creation)
    routine_tasks: list[int | None]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    zone = draw(st.sampled_from(sorted(EDGES)))
    boundary = draw(st.sampled_from(BOUNDARIES))
    edge = dt.datetime.fromisoformat(draw(st.sampled_from(EDGES[zone]))).replace(tzinfo=dt.UTC)
    created_at = edge + dt.timedelta(seconds=draw(st.integers(-2 * 24 * HOUR, 24 * HOUR)))
    horizon = draw(st.integers(2 * 24 * HOUR, 4 * 24 * HOUR))
    # Completions anywhere, and most near a date's start by the model: where a wrong boundary
    # would count them on the wrong date.
    first = day_model.date_of(created_at, zone, boundary)
    near = [
        int((day_model.start(first + n * ONE_DAY, zone, boundary) - created_at).total_seconds())
        for n in range(1, 5)
    ]
    completion = st.one_of(
        st.none(),
        st.integers(0, horizon - 1),
        st.tuples(st.sampled_from(near), st.integers(-3 * HOUR, 3 * HOUR))
        .map(sum)
        .filter(lambda s: 0 <= s < horizon),
    )
    return Scenario(
        zone=zone,
        boundary=boundary,
        created_at=created_at,
        final=created_at + dt.timedelta(seconds=horizon),
        plan_tasks=draw(st.lists(st.lists(completion, min_size=1, max_size=3), max_size=4)),
        routine_tasks=draw(st.lists(completion, min_size=1, max_size=4)),
    )


def due_instants(engine: Engine, user: object) -> tuple[object, object]:
    with engine.connect() as c:
        row = c.execute(
            sa.text("SELECT rollover_next_date, rollover_due_at FROM users WHERE id = :u"),
            {"u": user},
        ).one()
    return row.rollover_next_date, row.rollover_due_at


@settings(
    max_examples=int(os.environ.get("PLANNER_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenarios())
def test_each_date_closes_at_the_users_boundary_with_what_happened_inside_it(
    engine: Engine, scenario: Scenario
) -> None:
    days = day_model.closed_days(
        scenario.created_at, scenario.final, scenario.zone, scenario.boundary
    )
    first = day_model.date_of(scenario.created_at, scenario.zone, scenario.boundary)
    at = [
        [None if s is None else scenario.created_at + dt.timedelta(seconds=s) for s in plan]
        for plan in scenario.plan_tasks
    ]
    routine_at = [
        None if s is None else scenario.created_at + dt.timedelta(seconds=s)
        for s in scenario.routine_tasks
    ]
    events = []
    try:
        with engine.begin() as c:
            user = add_user(
                c, created_at=scenario.created_at, timezone=scenario.zone, carry_over="none"
            )
            c.execute(
                sa.text("UPDATE users SET day_starts_at = :b WHERE id = :u"),
                {"b": scenario.boundary, "u": user},
            )
            for offset, completions in enumerate(at):
                plan = add_plan(c, user, first + offset * ONE_DAY)
                for instant in completions:
                    task = add_task(c, user, plan)
                    if instant is not None:
                        events.append((instant, "tasks", task))
            routine = add_routine(c, user, [None] * len(routine_at))
            for task, instant in zip(routine, routine_at, strict=True):
                if instant is not None:
                    events.append((instant, "routine_tasks", task))
        events.sort()

        def sweep_at(now: dt.datetime) -> None:
            with engine.begin() as c:
                while events and events[0][0] < now:
                    instant, table, row = events.pop(0)
                    complete(c, table, row, instant)
            sweep(engine, now=now, default_threshold=75)

        def closed_by(now: dt.datetime) -> list[str]:
            return [day.isoformat() for day, _, end in days if end <= now]

        # Each instant a date falls due (a date Samoa skipped falls due with the one before).
        for end in sorted({end for _, _, end in days}):
            for now in (end - dt.timedelta(seconds=1), end):
                sweep_at(now)
                with engine.connect() as c:
                    assert [row[0] for row in history(c, user)] == closed_by(now), now
            next_date, due = due_instants(engine, user)
            assert next_date == dt.date.fromisoformat(closed_by(end)[-1]) + ONE_DAY
            assert due == day_model.start(next_date + ONE_DAY, scenario.zone, scenario.boundary)
        sweep_at(scenario.final)

        plans = {first + offset * ONE_DAY: completions for offset, completions in enumerate(at)}
        with engine.connect() as c:
            actual = [row[:3] for row in history(c, user)]
        assert actual == day_model.history(days, plans, routine_at)
    finally:
        with engine.begin() as c:
            c.execute(sa.text("TRUNCATE users CASCADE"))


@settings(
    max_examples=int(os.environ.get("PLANNER_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    scenarios(),
    st.sampled_from(BOUNDARIES),
    st.lists(st.integers(0, 4 * 24 * HOUR), min_size=1, max_size=5),
    st.integers(0, 4 * 24 * HOUR),
)
def test_changing_the_boundary_never_reopens_or_skips_a_date(
    engine: Engine, scenario: Scenario, later: dt.time, sweeps: list[int], change: int
) -> None:
    """Sweeps at any instants, the boundary changed at one of them: the dates closed are each
    closed once, one after the other from the first, and the open one falls due at the new
    boundary. (The first date is the user's date when the first sweep plans them, at the
    boundary in force then: a tick a minute after the user's row is written, in service.)"""
    changed_at = scenario.created_at + dt.timedelta(seconds=change)
    try:
        with engine.begin() as c:
            user = add_user(c, created_at=scenario.created_at, timezone=scenario.zone)
            c.execute(
                sa.text("UPDATE users SET day_starts_at = :b WHERE id = :u"),
                {"b": scenario.boundary, "u": user},
            )
        boundary_changed = False
        instants = sorted(scenario.created_at + dt.timedelta(seconds=s) for s in sweeps)
        planned_at = later if instants[0] >= changed_at else scenario.boundary
        for instant in instants:
            if not boundary_changed and instant >= changed_at:
                with engine.begin() as c:
                    c.execute(
                        sa.text("UPDATE users SET day_starts_at = :b WHERE id = :u"),
                        {"b": later, "u": user},
                    )
                boundary_changed = True
            sweep(engine, now=instant, default_threshold=75)
        with engine.connect() as c:
            dates = [dt.date.fromisoformat(row[0]) for row in history(c, user)]
        first = day_model.date_of(scenario.created_at, scenario.zone, planned_at)
        assert dates == [first + n * ONE_DAY for n in range(len(dates))]
        next_date, due = due_instants(engine, user)
        if next_date is not None:
            assert next_date == (dates[-1] + ONE_DAY if dates else first)
            now_boundary = later if boundary_changed else scenario.boundary
            assert due == day_model.start(next_date + ONE_DAY, scenario.zone, now_boundary)
    finally:
        with engine.begin() as c:
            c.execute(sa.text("TRUNCATE users CASCADE"))


@pytest.mark.parametrize("boundary", ["12:00", "13:30", "23:59"])
def test_a_boundary_out_of_range_is_refused_by_the_database(engine: Engine, boundary: str) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as c:
        c.execute(
            sa.text("UPDATE users SET day_starts_at = CAST(:b AS time) WHERE id = :u"),
            {"b": boundary, "u": user},
        )
