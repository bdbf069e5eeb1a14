"""Property: whatever the sweep schedule (late, after an outage, twice at once), the rows are
those of one sweep per day exactly at each local midnight.

Each example replays one user's timeline twice on a real PostgreSQL: task completions happen at
their instants, sweeps at theirs (events before a sweep's instant are applied before it runs).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from planner_jobs.domain.days import due_at, first_date, resolve_zone
from planner_jobs.jobs.rollover import sweep
from tests.data import add_plan, add_routine, add_task, add_user, complete, history, streak

ZONES = [
    "UTC",
    "America/Santiago",
    "America/Havana",
    "Atlantic/Azores",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
    "Europe/Paris",
    "America/New_York",
    "Not/A_Zone",
]
HOUR = 3600


@dataclass(frozen=True)
class Scenario:
    zone: str
    created_at: dt.datetime
    final: dt.datetime
    carry_over: str
    threshold: int | None
    plan_tasks: list[
        list[int | None]
    ]  # per plan day: each task's completion, seconds after creation
    routine_tasks: list[int | None]
    sweeps: list[dt.datetime]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    created_at = draw(
        st.datetimes(
            dt.datetime(2024, 1, 1),  # noqa: DTZ001 (hypothesis bounds are naive)
            dt.datetime(2026, 10, 1),  # noqa: DTZ001
        )
    ).replace(tzinfo=dt.UTC, microsecond=0)
    horizon = draw(st.integers(26 * HOUR, 4 * 24 * HOUR))
    completion = st.one_of(st.none(), st.integers(0, horizon - 1))
    sweeps = draw(st.lists(st.integers(0, horizon), max_size=6))
    return Scenario(
        zone=draw(st.sampled_from(ZONES)),
        created_at=created_at,
        final=created_at + dt.timedelta(seconds=horizon),
        carry_over=draw(st.sampled_from(["next_day", "inbox", "none"])),
        threshold=draw(st.one_of(st.none(), st.integers(1, 100))),
        plan_tasks=draw(st.lists(st.lists(completion, max_size=3), max_size=4)),
        routine_tasks=draw(st.lists(completion, max_size=3)),
        sweeps=sorted(created_at + dt.timedelta(seconds=s) for s in sweeps),
    )


def on_time_sweeps(scenario: Scenario) -> list[dt.datetime]:
    zone = resolve_zone(scenario.zone)
    day = first_date(scenario.created_at, zone)
    sweeps = []
    while (at := due_at(day, zone)) <= scenario.final:
        sweeps.append(at)
        day += dt.timedelta(days=1)
    return sweeps


def play(engine: Engine, scenario: Scenario, sweeps: list[dt.datetime]) -> dict[str, Any]:
    """Replay the timeline with these sweeps (plus one at the end); return what it left."""
    zone = resolve_zone(scenario.zone)
    first = first_date(scenario.created_at, zone)
    events: list[tuple[dt.datetime, str, uuid.UUID]] = []
    with engine.begin() as c:
        user = add_user(
            c,
            created_at=scenario.created_at,
            timezone=scenario.zone,
            carry_over=scenario.carry_over,
            streak_threshold=scenario.threshold,
        )
        tasks = []
        for offset, completions in enumerate(scenario.plan_tasks):
            plan = add_plan(c, user, first + dt.timedelta(days=offset))
            for seconds in completions:
                task = add_task(c, user, plan)
                tasks.append(task)
                if seconds is not None:
                    events.append((_at(scenario, seconds), "tasks", task))
        routine = add_routine(c, user, [None] * len(scenario.routine_tasks))
        for task, seconds in zip(routine, scenario.routine_tasks, strict=True):
            if seconds is not None:
                events.append((_at(scenario, seconds), "routine_tasks", task))
    events.sort()
    for now in [*sweeps, scenario.final]:
        with engine.begin() as c:
            while events and events[0][0] < now:
                at, table, row = events.pop(0)
                complete(c, table, row, at)
        sweep(engine, now=now, default_threshold=75)
    with engine.connect() as c:
        return {
            "history": history(c, user),
            "streak": streak(c, user),
            "tasks": [
                tuple(
                    c.execute(
                        sa.text(
                            "SELECT p.plan_date, t.completed FROM tasks t"
                            " LEFT JOIN todays_plans p ON p.id = t.plan_id WHERE t.id = :t"
                        ),
                        {"t": task},
                    ).one()
                )
                for task in tasks
            ],
            "routine": [
                tuple(
                    c.execute(
                        sa.text("SELECT completed, completed_at FROM routine_tasks WHERE id = :t"),
                        {"t": task},
                    ).one()
                )
                for task in routine
            ],
            "plans": c.scalars(
                sa.text("SELECT plan_date FROM todays_plans WHERE user_id = :u ORDER BY 1"),
                {"u": user},
            ).all(),
        }


def _at(scenario: Scenario, seconds: int) -> dt.datetime:
    return scenario.created_at + dt.timedelta(seconds=seconds)


def forget_everything(engine: Engine) -> None:
    with engine.begin() as c:
        c.execute(sa.text("TRUNCATE users CASCADE"))


@settings(
    # Each example is two replays on the database; PLANNER_PROPERTY_EXAMPLES=500 digs deeper.
    max_examples=int(os.environ.get("PLANNER_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenarios())
def test_any_sweep_schedule_leaves_the_rows_of_on_time_sweeps(
    engine: Engine, scenario: Scenario
) -> None:
    try:
        expected = play(engine, scenario, on_time_sweeps(scenario))
        forget_everything(engine)
        actual = play(engine, scenario, scenario.sweeps)
    finally:
        forget_everything(engine)

    assert expected["history"], "every scenario lasts long enough to close a day"
    assert actual == expected
