"""What the rollover writes: its nightly updates of routine tasks and streaks stay on their pages
(HOT: no index entry written), however many of a page's rows one batch closes."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from planner_jobs.db.models import Base
from planner_jobs.jobs.rollover import sweep
from tests.data import utc

USERS = 400  # streaks: about 3 pages at fillfactor 50; routine tasks: about 25

SEED = """
INSERT INTO users (email, timezone, created_at)
    SELECT 'user' || n || '@example.com', 'UTC', '2026-03-07T06:00Z'
      FROM generate_series(1, :users) AS n;
INSERT INTO daily_routines (user_id, name) SELECT id, 'morning' FROM users;
INSERT INTO routine_tasks (routine_id, title, position, completed, completed_at)
    SELECT r.id, 'step ' || k, k, k <= 3, CASE WHEN k <= 3 THEN TIMESTAMPTZ '2026-03-07T12:00Z' END
      FROM daily_routines r, generate_series(1, 5) AS k;
INSERT INTO streaks (user_id, current, longest) SELECT id, 2, 2 FROM users
"""


def test_the_tables_have_the_storage_options_of_the_models(engine: Engine) -> None:
    expected = {
        table.name: sorted(
            f"{k}={v}" for k, v in table.dialect_options["postgresql"]["with"].items()
        )
        for table in Base.metadata.tables.values()
        if table.dialect_options["postgresql"]["with"]
    }
    with engine.connect() as connection:
        actual = {
            name: sorted(options)
            for name, options in connection.execute(
                sa.text("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(:names)"),
                {"names": list(expected)},
            )
        }
    assert expected == {"routine_tasks": ["fillfactor=50"], "streaks": ["fillfactor=50"]}
    assert actual == expected


def test_a_batch_closing_whole_pages_updates_routine_tasks_and_streaks_in_place(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        for statement in SEED.split(";"):
            connection.execute(sa.text(statement), {"users": USERS})
        connection.execute(sa.text("ANALYZE"))

    summary = sweep(engine, now=utc("2026-03-08T00:00:30"), default_threshold=75, parallel=1)
    engine.dispose()  # the sweep's connections end, and their statistics reach the server

    assert summary.user_days == USERS
    updates = _updates(engine, expected={"routine_tasks": 3 * USERS, "streaks": USERS})
    assert updates == {
        "routine_tasks": (3 * USERS, 3 * USERS),  # (updated, of which HOT)
        "streaks": (USERS, USERS),
    }


def _updates(engine: Engine, *, expected: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Rows updated and HOT-updated per table, once the counts of `expected` arrived (a backend
    reports its statistics when it ends, a moment after its client has gone)."""
    deadline = time.monotonic() + 10
    while True:
        with engine.connect() as connection:
            counts = {
                name: (updated, hot)
                for name, updated, hot in connection.execute(
                    sa.text(
                        "SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
                        " WHERE relname = ANY(:names)"
                    ),
                    {"names": list(expected)},
                )
            }
        if all(counts.get(t, (0, 0))[0] >= n for t, n in expected.items()):
            return counts
        if time.monotonic() > deadline:
            return counts
        time.sleep(0.1)


def test_a_streak_the_day_leaves_as_it_was_is_not_written_again(engine: Engine) -> None:
    """Half the users have Saturday off: their missed Saturday keeps the streak as it was (the
    row is not rewritten); the other half's is reset."""
    with engine.begin() as connection:
        for statement in SEED.split(";"):
            connection.execute(sa.text(statement), {"users": USERS})
        saturday = 1 << 5  # 2026-03-07
        connection.execute(
            sa.text("UPDATE users SET days_off = :bit WHERE email ~ '[02468]@'"), {"bit": saturday}
        )
        connection.execute(sa.text("ANALYZE"))

    summary = sweep(engine, now=utc("2026-03-08T00:00:30"), default_threshold=75, parallel=1)
    engine.dispose()

    assert summary.user_days == USERS
    assert summary.effects == {"day_off": USERS // 2, "reset": USERS // 2}
    updates = _updates(engine, expected={"streaks": USERS // 2})
    assert updates["streaks"][0] == USERS // 2
    with engine.connect() as connection:
        assert connection.execute(
            sa.text("SELECT current, count(*) FROM streaks GROUP BY current ORDER BY current")
        ).all() == [(0, USERS // 2), (2, USERS // 2)]
