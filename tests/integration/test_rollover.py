"""The rollover on a real PostgreSQL: the contract's rules, the zone traps, the failure modes."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from planner_jobs.db import rollover as rollover_db
from planner_jobs.jobs.rollover import SweepSummary, sweep
from planner_jobs.logs import fields_of
from tests.data import (
    add_plan,
    add_routine,
    add_task,
    add_user,
    history,
    routine_states,
    streak,
    task_place,
    utc,
)

MICROSECOND = dt.timedelta(microseconds=1)


def run(engine: Engine, now: str | dt.datetime, **options: int) -> SweepSummary:
    at = utc(now) if isinstance(now, str) else now
    return sweep(engine, now=at, default_threshold=75, **options)


def test_a_day_is_scored_recorded_and_extends_the_streak(engine: Engine) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-07T08:00"))
        plan = add_plan(c, user, "2026-03-07")
        for _ in range(3):
            add_task(c, user, plan, completed_at=utc("2026-03-07T10:00"))
        unfinished = add_task(c, user, plan)
        routine = add_routine(c, user, [utc("2026-03-07T09:00"), True])

    summary = run(engine, "2026-03-08T00:00")

    assert summary.line().startswith("closed 1 user-days for 1 users in ")
    with engine.connect() as c:
        assert history(c, user) == [("2026-03-07", 5, 6, Decimal("83.33"), 75)]
        assert streak(c, user) == (1, 1, "2026-03-07")
        assert routine_states(c, routine) == [False, False]
        assert task_place(c, unfinished) == "2026-03-08"


def test_a_backfill_makes_the_history_partitions_of_the_months_it_reaches(
    engine: Engine,
) -> None:
    """The history is partitioned by month (migration 0024): a sweep makes the partitions of
    the dates around its `now` first, and a backfill that reaches older months makes theirs
    between batches, in transactions of their own: nothing fails, every day is recorded."""
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-01-30T08:00"))

    summary = run(engine, "2026-03-02T00:00")

    assert (summary.user_days, summary.failed) == (31, 0)
    with engine.connect() as c:
        placed = c.execute(
            sa.text(
                "SELECT tableoid::regclass::text, count(*), min(day)::text, max(day)::text"
                " FROM performance_history WHERE user_id = :u GROUP BY 1 ORDER BY 3"
            ),
            {"u": user},
        ).all()
        months = c.scalars(
            sa.text(
                "SELECT inhrelid::regclass::text FROM pg_inherits"
                " WHERE inhparent = 'performance_history'::regclass ORDER BY 1"
            )
        ).all()
    assert placed == [
        ("performance_history_2026_01", 2, "2026-01-30", "2026-01-31"),
        ("performance_history_2026_02", 28, "2026-02-01", "2026-02-28"),
        ("performance_history_2026_03", 1, "2026-03-01", "2026-03-01"),
    ]
    assert months == [
        "performance_history_2026_01",
        "performance_history_2026_02",
        "performance_history_2026_03",
    ]


def test_making_a_history_partition_gives_way_to_a_transaction_writing_users(
    engine: Engine,
) -> None:
    """Attaching a partition takes SHARE ROW EXCLUSIVE on users (for its foreign key): while
    the main app's transaction writes a user, each attempt gives up after 100 ms instead of
    holding up the main app's next writes behind it."""
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-01-30T08:00"))
    with engine.connect() as main_app:
        main_app.execute(sa.text("UPDATE users SET timezone = 'UTC' WHERE id = :u"), {"u": user})
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
            rollover_db.make_history_months(engine, [dt.date(2026, 5, 4)], attempts=2)
        gave_up_after = time.monotonic() - started
        main_app.commit()

    rollover_db.make_history_months(engine, [dt.date(2026, 5, 4)])

    assert gave_up_after < 1.0
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT to_regclass('performance_history_2026_05')")) is not None


def test_two_processes_making_one_month_at_once_make_it_once(engine: Engine) -> None:
    errors: list[BaseException] = []
    for month in range(1, 13):
        day = dt.date(2027, month, 15)
        ready = threading.Barrier(2)

        def make(day: dt.date = day, ready: threading.Barrier = ready) -> None:
            ready.wait()
            try:
                rollover_db.make_history_months(engine, [day])
            except BaseException as exc:
                errors.append(exc)

        makers = [threading.Thread(target=make) for _ in range(2)]
        for maker in makers:
            maker.start()
        for maker in makers:
            maker.join()

    assert errors == []
    with engine.connect() as c:
        assert (
            c.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_inherits"
                    " WHERE inhparent = 'performance_history'::regclass"
                )
            )
            == 12
        )


def test_nothing_closes_before_local_midnight_and_a_second_sweep_closes_nothing(
    engine: Engine,
) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-07T08:00"), timezone="Europe/Paris")

    assert run(engine, utc("2026-03-07T23:00") - MICROSECOND).user_days == 0
    assert run(engine, "2026-03-07T23:00").user_days == 1
    assert run(engine, "2026-03-07T23:00").user_days == 0
    assert run(engine, "2026-03-08T22:00").user_days == 0
    with engine.connect() as c:
        assert [row[0] for row in history(c, user)] == ["2026-03-07"]


def test_a_day_whose_history_row_is_there_already_is_left_as_it_is(engine: Engine) -> None:
    """The row is the day's record: its streak moved when it was written, so neither the row,
    the streak nor the day's unfinished tasks move again; the calendar goes on."""
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-07T08:00"))
        plan = add_plan(c, user, "2026-03-07")
        add_task(c, user, plan, completed_at=utc("2026-03-07T10:00"))
        unfinished = add_task(c, user, plan)
        c.execute(
            sa.text(
                "INSERT INTO streaks (user_id, current, longest, last_activity_date)"
                " VALUES (:u, 4, 9, '2026-03-07')"
            ),
            {"u": user},
        )
        c.execute(sa.text("SELECT planner_history_months(ARRAY[DATE '2026-03-07'])"))
        c.execute(
            sa.text(
                "INSERT INTO performance_history (user_id, day, completed_tasks, total_tasks,"
                " score, threshold, streak_effect) VALUES (:u, '2026-03-07', 2, 2, 100, 75,"
                " 'extended')"
            ),
            {"u": user},
        )

    assert run(engine, "2026-03-08T00:00").user_days == 0
    assert run(engine, "2026-03-09T00:00").user_days == 1

    with engine.connect() as c:
        assert history(c, user) == [
            ("2026-03-07", 2, 2, Decimal("100.00"), 75),
            ("2026-03-08", 0, 0, None, 75),
        ]
        assert streak(c, user) == (0, 9, "2026-03-07")  # reset by the empty 8th alone
        assert task_place(c, unfinished) == "2026-03-07"


def test_an_empty_day_has_no_score_and_resets_the_streak(engine: Engine) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-07T08:00"))
        plan = add_plan(c, user, "2026-03-07")
        add_task(c, user, plan, completed_at=utc("2026-03-07T09:00"))

    run(engine, "2026-03-08T00:00")
    run(engine, "2026-03-09T00:00")

    with engine.connect() as c:
        assert history(c, user) == [
            ("2026-03-07", 1, 1, Decimal("100.00"), 75),
            ("2026-03-08", 0, 0, None, 75),
        ]
        assert streak(c, user) == (0, 1, "2026-03-07")


def test_the_user_threshold_overrides_the_setting(engine: Engine) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-07T08:00"), streak_threshold=50)
        plan = add_plan(c, user, "2026-03-07")
        add_task(c, user, plan, completed_at=utc("2026-03-07T09:00"))
        add_task(c, user, plan)

    run(engine, "2026-03-08T00:00")

    with engine.connect() as c:
        assert history(c, user) == [("2026-03-07", 1, 2, Decimal("50.00"), 50)]
        assert streak(c, user) == (1, 1, "2026-03-07")


@pytest.mark.parametrize(
    ("mode", "place"),
    [(None, "2026-03-08"), ("next_day", "2026-03-08"), ("inbox", None), ("none", "2026-03-07")],
)
def test_unfinished_tasks_go_where_the_user_said(
    engine: Engine, mode: str | None, place: str | None
) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-07T08:00"), carry_over=mode)
        plan = add_plan(c, user, "2026-03-07")
        done = add_task(c, user, plan, completed_at=utc("2026-03-07T09:00"))
        open_task = add_task(c, user, plan)

    run(engine, "2026-03-08T00:00")

    with engine.connect() as c:
        assert task_place(c, open_task) == place
        assert task_place(c, done) == "2026-03-07"


def test_carried_tasks_join_an_existing_next_day_plan(engine: Engine) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-07T08:00"))
        today = add_plan(c, user, "2026-03-07")
        tomorrow = add_plan(c, user, "2026-03-08")
        carried = add_task(c, user, today)

    run(engine, "2026-03-08T00:00")

    with engine.connect() as c:
        assert (
            c.scalar(sa.text("SELECT plan_id FROM tasks WHERE id = :t"), {"t": carried}) == tomorrow
        )
        plans = c.scalar(
            sa.text("SELECT count(*) FROM todays_plans WHERE user_id = :u"), {"u": user}
        )
        assert plans == 2


def test_a_routine_task_completed_after_midnight_keeps_its_state_through_a_late_sweep(
    engine: Engine,
) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-07T08:00"))
        early, late = add_routine(c, user, [utc("2026-03-07T09:00"), utc("2026-03-08T01:00")])

    run(engine, "2026-03-08T03:00")  # three hours late

    with engine.connect() as c:
        assert history(c, user) == [("2026-03-07", 1, 2, Decimal("50.00"), 75)]
        assert routine_states(c, [early, late]) == [False, True]

    run(engine, "2026-03-09T00:00")

    with engine.connect() as c:
        assert history(c, user)[1] == ("2026-03-08", 1, 2, Decimal("50.00"), 75)
        assert routine_states(c, [early, late]) == [False, False]


def test_a_task_completed_after_midnight_counts_for_the_next_day(engine: Engine) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-07T08:00"))
        plan = add_plan(c, user, "2026-03-07")
        late = add_task(c, user, plan, completed_at=utc("2026-03-08T01:00"))

    run(engine, "2026-03-08T03:00")
    with engine.connect() as c:
        assert history(c, user) == [("2026-03-07", 0, 1, Decimal("0.00"), 75)]
        assert task_place(c, late) == "2026-03-08"

    run(engine, "2026-03-09T00:00")
    with engine.connect() as c:
        assert history(c, user)[1] == ("2026-03-08", 1, 1, Decimal("100.00"), 75)


def three_day_user(connection: sa.Connection, email: str) -> tuple:
    user = add_user(connection, created_at=utc("2026-03-05T08:00"), email=email)
    plan = add_plan(connection, user, "2026-03-05")
    carried = add_task(connection, user, plan)
    add_task(connection, user, plan, completed_at=utc("2026-03-05T11:00"))
    routine = add_routine(connection, user, [utc("2026-03-05T10:00"), None])
    return user, carried, routine


def test_a_three_day_outage_is_caught_up_in_order_as_if_on_time(engine: Engine) -> None:
    with engine.begin() as c:
        on_time, on_time_task, on_time_routine = three_day_user(c, "on-time@example.com")
    for day in ("2026-03-06", "2026-03-07", "2026-03-08"):
        run(engine, f"{day}T00:00")
    with engine.begin() as c:
        late, late_task, late_routine = three_day_user(c, "late@example.com")

    summary = run(engine, "2026-03-08T09:00")  # back after three days

    assert (summary.users, summary.user_days) == (1, 3)
    with engine.connect() as c:
        assert (
            history(c, late)
            == history(c, on_time)
            == [
                ("2026-03-05", 2, 4, Decimal("50.00"), 75),
                ("2026-03-06", 0, 3, Decimal("0.00"), 75),
                ("2026-03-07", 0, 3, Decimal("0.00"), 75),
            ]
        )
        assert streak(c, late) == streak(c, on_time) == (0, 0, None)
        assert task_place(c, late_task) == task_place(c, on_time_task) == "2026-03-08"
        assert routine_states(c, late_routine) == routine_states(c, on_time_routine)


@pytest.mark.parametrize(
    ("zone", "day", "due"),
    [
        ("America/Santiago", "2024-09-07", "2024-09-08T04:00"),  # no midnight on 09-08
        ("America/Havana", "2024-11-02", "2024-11-03T04:00"),  # first of two midnights
        ("Atlantic/Azores", "2024-10-26", "2024-10-27T00:00"),
        ("Asia/Kathmandu", "2026-03-07", "2026-03-07T18:15"),
        ("Pacific/Chatham", "2026-06-07", "2026-06-07T11:15"),
        ("Pacific/Kiritimati", "2026-03-07", "2026-03-07T10:00"),
        ("Etc/GMT+12", "2026-03-07", "2026-03-08T12:00"),
        ("Australia/Lord_Howe", "2024-10-05", "2024-10-05T13:30"),
    ],
)
def test_each_zone_closes_its_day_at_its_first_instant_of_the_next(
    engine: Engine, zone: str, day: str, due: str
) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc(due) - dt.timedelta(hours=20), timezone=zone)
        plan = add_plan(c, user, day)
        add_task(c, user, plan, completed_at=utc(due) - MICROSECOND)
        add_task(c, user, plan, completed_at=utc(due))

    assert run(engine, utc(due) - MICROSECOND).user_days == 0
    assert run(engine, due).user_days == 1

    with engine.connect() as c:
        assert history(c, user) == [(day, 1, 2, Decimal("50.00"), 75)]


@pytest.mark.parametrize(
    ("zone", "day", "starts", "length_hours"),
    [
        ("America/New_York", "2026-11-01", "2026-11-01T04:00", 25),
        ("Europe/Paris", "2026-03-29", "2026-03-28T23:00", 23),
    ],
)
def test_a_long_or_short_day_counts_every_one_of_its_hours(
    engine: Engine, zone: str, day: str, starts: str, length_hours: int
) -> None:
    start = utc(starts)
    end = start + dt.timedelta(hours=length_hours)
    with engine.begin() as c:
        user = add_user(c, created_at=start + dt.timedelta(hours=1), timezone=zone)
        add_routine(c, user, [end - dt.timedelta(minutes=30), end])
        add_routine(c, user, [start], name="evening")

    assert run(engine, end - MICROSECOND).user_days == 0
    run(engine, end)

    with engine.connect() as c:
        assert history(c, user) == [(day, 2, 3, Decimal("66.67"), 75)]


def test_a_zone_change_east_closes_the_open_date_sooner_and_never_reopens_one(
    engine: Engine,
) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-07T12:00"), timezone="America/Los_Angeles")
    run(engine, "2026-03-08T08:00")  # Los Angeles midnight: 03-07 closed
    with engine.begin() as c:
        c.execute(sa.text("UPDATE users SET timezone = 'Asia/Tokyo' WHERE id = :u"), {"u": user})

    run(engine, "2026-03-08T14:59")
    run(engine, "2026-03-08T15:00")  # Tokyo midnight: 03-08 closed, 16 hours sooner

    with engine.connect() as c:
        assert [row[0] for row in history(c, user)] == ["2026-03-07", "2026-03-08"]


def test_a_zone_change_west_waits_for_the_new_midnight_and_skips_nothing(engine: Engine) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-03-07T01:00"), timezone="Asia/Tokyo")
    run(engine, "2026-03-07T15:00")  # Tokyo midnight: 03-07 closed
    with engine.begin() as c:
        c.execute(
            sa.text("UPDATE users SET timezone = 'Pacific/Honolulu' WHERE id = :u"), {"u": user}
        )

    run(engine, "2026-03-08T15:00")  # Tokyo's midnight again, but 03-08 05:00 in Honolulu
    with engine.connect() as c:
        assert [row[0] for row in history(c, user)] == ["2026-03-07"]

    run(engine, "2026-03-09T10:00")  # Honolulu midnight
    with engine.connect() as c:
        assert [row[0] for row in history(c, user)] == ["2026-03-07", "2026-03-08"]


def test_an_unknown_zone_is_rolled_over_in_utc_reported_and_stops_nobody(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with engine.begin() as c:
        lost = add_user(c, created_at=utc("2026-03-07T08:00"), timezone="Mars/Olympus_Mons")
        fine = add_user(c, created_at=utc("2026-03-07T08:00"), timezone="Europe/Paris")

    with caplog.at_level(logging.WARNING):
        summary = run(engine, "2026-03-08T00:00")

    assert (summary.users, summary.user_days, summary.unknown_zones) == (2, 2, 1)
    assert "unknown time zone" in summary.line()
    assert [fields_of(r)["timezone"] for r in caplog.records if fields_of(r)] == [
        "Mars/Olympus_Mons"
    ]
    with engine.connect() as c:
        assert [row[0] for row in history(c, lost)] == ["2026-03-07"]
        assert [row[0] for row in history(c, fine)] == ["2026-03-07"]


def test_a_broken_row_fails_its_user_alone_and_is_retried_later(engine: Engine) -> None:
    with engine.begin() as c:
        broken = add_user(c, created_at=utc("2026-03-07T08:00"))
        others = [add_user(c, created_at=utc("2026-03-07T08:00")) for _ in range(5)]
        # Another program's constraint that this user's row violates.
        c.execute(
            sa.text(
                f"ALTER TABLE performance_history ADD CONSTRAINT test_refuses_one_user"
                f" CHECK (user_id <> '{broken}')"
            )
        )

    summary = run(engine, "2026-03-08T00:00")

    assert (summary.users, summary.failed) == (5, 1)
    with engine.connect() as c:
        assert all(history(c, user) for user in others)
        assert history(c, broken) == []
        error = c.scalar(sa.text("SELECT rollover_error FROM users WHERE id = :u"), {"u": broken})
        assert "test_refuses_one_user" in error
    assert run(engine, "2026-03-08T00:05").failed == 0  # backing off, not hammering

    with engine.begin() as c:
        c.execute(sa.text("ALTER TABLE performance_history DROP CONSTRAINT test_refuses_one_user"))
    assert run(engine, "2026-03-08T00:11").user_days == 1
    with engine.connect() as c:
        assert [row[0] for row in history(c, broken)] == ["2026-03-07"]
        assert (
            c.scalar(sa.text("SELECT rollover_error FROM users WHERE id = :u"), {"u": broken})
            is None
        )


def test_two_sweeps_started_together_share_the_work_and_close_each_day_once(
    engine: Engine,
) -> None:
    with engine.begin() as c:
        users = [
            add_user(c, created_at=utc("2026-03-05T08:00"), timezone="Europe/Paris")
            for _ in range(300)
        ]
    summaries: list[SweepSummary] = []
    barrier = threading.Barrier(2)

    def sweeper() -> None:
        barrier.wait()
        summaries.append(run(engine, "2026-03-08T09:00", batch_size=25))

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(s.user_days for s in summaries) == 900
    assert sum(s.users for s in summaries) == 300
    with engine.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT user_id, count(*), count(DISTINCT day) FROM performance_history GROUP BY 1"
            )
        ).all()
    assert len(rows) == len(users)
    assert all(count == distinct == 3 for _, count, distinct in rows)


def test_a_long_backfill_goes_a_month_at_a_time_and_finishes(engine: Engine) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2025-12-01T08:00"))

    summary = run(engine, "2026-03-08T00:00", batch_size=10)

    assert summary.user_days == (dt.date(2026, 3, 8) - dt.date(2025, 12, 1)).days
    with engine.connect() as c:
        assert len(history(c, user)) == summary.user_days


def lag_seconds(engine: Engine, *, now: dt.datetime) -> float:
    with engine.connect() as c:
        return rollover_db.lag_seconds(c, now=now)


def test_the_lag_is_the_age_of_the_oldest_due_day(engine: Engine) -> None:
    with engine.begin() as c:
        add_user(c, created_at=utc("2026-03-07T08:00"))
    run(engine, "2026-03-07T09:00")  # plans the user: 03-07 due at midnight

    assert lag_seconds(engine, now=utc("2026-03-07T23:00")) == 0
    assert lag_seconds(engine, now=utc("2026-03-08T00:01:30")) == 90
    run(engine, "2026-03-08T00:01:30")
    assert lag_seconds(engine, now=utc("2026-03-08T00:01:31")) == 0


def test_a_backfill_longer_than_a_claim_counts_each_user_once(engine: Engine) -> None:
    """After an outage of 97 days each user is claimed four times (31 days a claim)."""
    with engine.begin() as c:
        for _ in range(12):
            add_user(c, created_at=utc("2025-12-01T08:00"))

    summary = run(engine, "2026-03-08T00:00")

    assert (summary.users, summary.user_days) == (12, 12 * 97)
    assert " for 12 users " in summary.line()


def users_with_streaks(engine: Engine, n: int) -> list:
    with engine.begin() as c:
        users = [add_user(c, created_at=utc("2026-03-07T08:00")) for _ in range(n)]
        c.execute(
            sa.text("INSERT INTO streaks (user_id, current, longest) SELECT unnest(:u), 3, 3"),
            {"u": users},
        )
    return users


def closed_users(engine: Engine) -> set:
    with engine.connect() as c:
        return set(c.scalars(sa.text("SELECT user_id FROM performance_history")))


def test_a_streak_row_held_by_the_main_app_holds_up_no_one_and_closes_once_released(
    engine: Engine,
) -> None:
    users = users_with_streaks(engine, 2000)
    held = users[1234]
    main_app = engine.connect()
    transaction = main_app.begin()
    main_app.execute(
        sa.text("SELECT * FROM streaks WHERE user_id = :u FOR UPDATE"), {"u": held}
    )  # a long transaction granting a freeze, say
    try:
        started = time.monotonic()
        summary = run(engine, "2026-03-08T00:00")
        took = time.monotonic() - started
    finally:
        transaction.commit()
        main_app.close()

    assert took < 10
    assert closed_users(engine) == set(users) - {held}
    assert summary.held == {held}
    assert "1 left for the next sweep: another transaction holds their rows" in summary.line()
    again = run(engine, "2026-03-08T00:01")
    assert (again.user_days, again.users, again.held) == (1, 1, set())
    assert closed_users(engine) == set(users)
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM performance_history")) == 2000
        assert set(c.scalars(sa.text("SELECT current FROM streaks"))) == {0}  # empty days


def test_any_row_held_by_another_transaction_delays_only_its_user(engine: Engine) -> None:
    """Not only streaks: a task row locked by the main app makes the batch's update wait; it
    gives up after a short lock timeout and closes the others one by one."""
    with engine.begin() as c:
        users = [add_user(c, created_at=utc("2026-03-07T08:00")) for _ in range(30)]
        plans = {user: add_plan(c, user, "2026-03-07") for user in users}
        tasks = {user: add_task(c, user, plans[user]) for user in users}  # unfinished: moved
    held = users[7]
    main_app = engine.connect()
    transaction = main_app.begin()
    main_app.execute(sa.text("SELECT * FROM tasks WHERE id = :t FOR UPDATE"), {"t": tasks[held]})
    try:
        summary = run(engine, "2026-03-08T00:00")
    finally:
        transaction.commit()
        main_app.close()

    assert closed_users(engine) == set(users) - {held}
    assert summary.held == {held}
    assert summary.failed == 0
    assert run(engine, "2026-03-08T00:01").user_days == 1
    with engine.connect() as c:
        assert task_place(c, tasks[held]) == "2026-03-08"


def test_a_claimed_user_is_held_from_other_sweeps_and_updates_not_from_inserts_about_them(
    engine: Engine,
) -> None:
    """A batch holds its users' rows for its whole transaction: against another sweep and any
    change of the row (a zone, days off), but not against the main app's inserts that name the
    user (a task added at midnight: its foreign-key check), which waited for the batch's
    commit while the claim was `FOR UPDATE`."""
    with engine.begin() as c:
        users = [add_user(c, created_at=utc("2026-03-07T08:00")) for _ in range(3)]
    now = utc("2026-03-08T00:00")
    with engine.connect() as sweeping, engine.connect() as other, sweeping.begin():
        claimed = rollover_db.claim_users(sweeping, now=now, limit=10)
        assert {user.id for user in claimed} == set(users)
        with other.begin():
            other.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
            assert rollover_db.claim_users(other, now=now, limit=10) == []
            other.execute(
                sa.text("INSERT INTO tasks (user_id, title) VALUES (:u, 'at midnight')"),
                {"u": users[0]},
            )
        with other.begin():
            other.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
            change = sa.text("UPDATE users SET timezone = 'Asia/Tokyo' WHERE id = :u")
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                other.execute(change, {"u": users[0]})
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM tasks")) == 1


def test_a_sweep_asked_to_stop_keeps_what_it_closed_and_the_next_one_finishes(
    engine: Engine,
) -> None:
    users = users_with_streaks(engine, 120)
    batches = 0

    def count(_: int) -> None:
        nonlocal batches
        batches += 1

    stopped = sweep(
        engine,
        now=utc("2026-03-08T00:00"),
        default_threshold=75,
        batch_size=25,
        parallel=1,
        on_batch=count,
        should_stop=lambda: batches >= 2,
    )

    assert stopped.stopped
    assert stopped.user_days == 50
    assert "stopped when asked" in stopped.line()
    rest = run(engine, "2026-03-08T00:00")
    assert (rest.user_days, rest.stopped) == (70, False)
    assert closed_users(engine) == set(users)


def test_a_backfill_asked_to_stop_between_its_days_goes_on_from_there(engine: Engine) -> None:
    with engine.begin() as c:
        user = add_user(c, created_at=utc("2026-02-01T08:00"))
        for day in ("2026-02-01", "2026-02-02", "2026-02-03"):
            plan = add_plan(c, user, day)
            add_task(c, user, plan, completed_at=utc(f"{day}T10:00"))
    steps = 0

    def stop_after_three_days() -> bool:
        nonlocal steps
        steps += 1
        return steps > 3  # asked once per day-step after the first, and before each batch

    stopped = sweep(
        engine,
        now=utc("2026-03-08T00:00"),
        default_threshold=75,
        parallel=1,
        should_stop=stop_after_three_days,
    )
    rest = run(engine, "2026-03-08T00:00")

    assert stopped.stopped
    assert (stopped.user_days, stopped.users) == (3, 0)
    assert (rest.user_days, rest.users) == (35 - 3, 1)
    with engine.connect() as c:
        days = [row[0] for row in history(c, user)]
        assert days == [(dt.date(2026, 2, 1) + dt.timedelta(days=n)).isoformat() for n in range(35)]
        assert streak(c, user) == (0, 3, "2026-02-03")
