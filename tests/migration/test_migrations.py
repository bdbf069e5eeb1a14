from __future__ import annotations

import json
import threading
import uuid
from importlib import resources

import procrastinate
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from planner_jobs.db.engine import create_engine
from planner_jobs.db.migrate import (
    MIGRATIONS_DIR,
    MigrationResult,
    alembic_config,
    ensure_schema_current,
    head_revision,
    migrate,
)
from planner_jobs.db.models import Base
from planner_jobs.db.notifications import drain
from planner_jobs.errors import DatabaseUnavailable


def table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_the_migrated_schema_is_exactly_the_models(engine: Engine) -> None:
    def ours(
        obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
    ) -> bool:
        return not (type_ == "table" and reflected and compare_to is None)

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": ours, "compare_type": True}
        )
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_the_head_the_service_checks_for_is_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    from planner_jobs.db.migrate import alembic_config

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migrate_twice_changes_nothing_the_second_time(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)

    first = migrate(engine)
    second = migrate(engine)

    assert first == MigrationResult(before=None, after=head_revision())
    assert second == MigrationResult(before=head_revision(), after=head_revision())
    assert "up to date" in second.summary()
    engine.dispose()


def test_migrate_upgrades_an_older_schema_keeping_its_data(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    migrate(engine, "0001")
    assert "procrastinate_jobs" in table_names(engine)
    assert "users" not in table_names(engine)
    migrate(engine, "0002")
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO users (email) VALUES ('old@example.com')"))

    result = migrate(engine)

    assert result.after == head_revision()
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT email FROM users")) == "old@example.com"
    engine.dispose()


def test_0008_keeps_the_main_apps_earlier_rows_working(empty_database_url: str) -> None:
    """Streak protection arrives defaulted or null: a user, a streak and a closed day written
    before it read as unprotected, no freeze held, and an effect not recorded."""
    engine = create_engine(empty_database_url)
    migrate(engine, "0007")
    with engine.begin() as c:
        user = c.scalar(sa.text("INSERT INTO users (email) VALUES ('old@x.com') RETURNING id"))
        c.execute(
            sa.text("INSERT INTO streaks (user_id, current, longest) VALUES (:u, 3, 4)"),
            {"u": user},
        )
        c.execute(
            sa.text(
                "INSERT INTO performance_history"
                " (user_id, day, completed_tasks, total_tasks, score, threshold)"
                " VALUES (:u, '2026-03-06', 1, 1, 100, 75)"
            ),
            {"u": user},
        )

    migrate(engine, "0008")

    with engine.connect() as c:
        assert tuple(
            c.execute(
                sa.text(
                    "SELECT days_off, vacation_start, vacation_end, quiet_hours_start,"
                    " quiet_hours_end FROM users"
                )
            ).one()
        ) == (0, None, None, None, None)
        assert c.scalar(sa.text("SELECT freezes FROM streaks")) == 0
        assert c.scalar(sa.text("SELECT streak_effect FROM performance_history")) is None
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:
        c.execute(sa.text("UPDATE users SET days_off = 128"))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:
        c.execute(sa.text("UPDATE performance_history SET streak_effect = 'forgiven'"))
    engine.dispose()


def test_0024_partitions_the_history_by_month_keeping_its_rows(empty_database_url: str) -> None:
    """The rows from before stay where they are, in the partition of every date before the
    month after the newest; later months get a partition each, made on demand; a downgrade
    puts every row back in one table."""
    engine = create_engine(empty_database_url)
    migrate(engine, "0023")
    history = (
        "INSERT INTO performance_history (user_id, day, completed_tasks, total_tasks, score,"
        " threshold) VALUES (:u, :day, 1, 2, 50, 75)"
    )
    with engine.begin() as c:
        user = c.scalar(sa.text("INSERT INTO users (email) VALUES ('old@x.com') RETURNING id"))
        c.execute(sa.text("GRANT SELECT ON performance_history TO PUBLIC"))
        for day in ("2025-01-31", "2026-03-06"):
            c.execute(sa.text(history), {"u": user, "day": day})

    migrate(engine)
    with engine.begin() as c:
        c.execute(sa.text("SELECT planner_history_months(ARRAY[DATE '2026-03-31', '2026-04-01'])"))
        for day in ("2026-03-31", "2026-04-01"):  # the old table's last month, the first new
            c.execute(sa.text(history), {"u": user, "day": day})
        with pytest.raises(sa.exc.IntegrityError, match="no partition"), c.begin_nested():
            c.execute(sa.text(history), {"u": user, "day": "2026-06-01"})
        placed = c.execute(
            sa.text(
                "SELECT day::text, tableoid::regclass::text FROM performance_history ORDER BY day"
            )
        ).all()
        public_reads = c.scalar(
            sa.text("SELECT has_table_privilege('public', 'performance_history', 'SELECT')")
        )
        with pytest.raises(sa.exc.IntegrityError, match="duplicate key"), c.begin_nested():
            c.execute(sa.text(history), {"u": user, "day": "2026-04-01"})

    assert placed == [
        ("2025-01-31", "performance_history_before"),
        ("2026-03-06", "performance_history_before"),
        ("2026-03-31", "performance_history_before"),
        ("2026-04-01", "performance_history_2026_04"),
    ]
    assert public_reads

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0023")
    with engine.connect() as c:
        days = c.scalars(sa.text("SELECT day::text FROM performance_history ORDER BY day")).all()
        kind = c.scalar(
            sa.text("SELECT relkind FROM pg_class WHERE relname = 'performance_history'")
        )
    assert days == ["2025-01-31", "2026-03-06", "2026-03-31", "2026-04-01"]
    assert kind == "r"
    assert migrate(engine).after == head_revision()  # and up again: April is now "before"
    engine.dispose()


def table_checks(engine: Engine, *tables: str) -> set[str]:
    """The names of the CHECK constraints of `tables`."""
    with engine.connect() as c:
        return set(
            c.scalars(
                sa.text(
                    "SELECT conname FROM pg_constraint"
                    " WHERE contype = 'c' AND conrelid::regclass::text = ANY(:tables)"
                ),
                {"tables": list(tables)},
            )
        )


BAD_VALUES = (  # a column of a value with rules, a value the rules refuse, one they accept
    ("users", "carry_over", "'tomorrow'", "'inbox'"),
    ("users", "days_off", "128", "127"),
    ("users", "streak_threshold", "0", "100"),
    ("users", "day_starts_at", "'12:00'", "'11:59'"),
    ("notifications", "urgency", "'urgent'", "'very-low'"),
)


def test_0026_keeps_every_rule_of_a_value_in_its_type(empty_database_url: str) -> None:
    """The rules of `users` and of a notification's urgency hold as before, as domains, over the
    rows there were and on every write; the tables keep no CHECK of their own (each one was
    read and planned again by every INSERT and UPDATE); a downgrade brings the CHECKs back."""
    engine = create_engine(empty_database_url)
    migrate(engine, "0025")
    with engine.begin() as c:
        user = c.scalar(
            sa.text(
                "INSERT INTO users (email, carry_over, days_off, streak_threshold, day_starts_at)"
                " VALUES ('old@x.com', 'none', 65, 80, '04:00') RETURNING id"
            )
        )
        c.execute(sa.text("SELECT planner_notify(:u, '{\"title\": \"Hi\"}', 'high')"), {"u": user})

    def refusals() -> list[str]:
        refused = []
        with engine.begin() as c:
            for table, column, bad, good in BAD_VALUES:
                key = "user_id" if table == "notifications" else "id"
                change = f"UPDATE {table} SET {column} = {{}} WHERE {key} = :u"
                with pytest.raises(sa.exc.IntegrityError) as caught, c.begin_nested():
                    c.execute(sa.text(change.format(bad)), {"u": user})
                assert caught.value.orig.sqlstate == "23514"  # check_violation, as before
                refused.append(column)
                c.execute(sa.text(change.format(good)), {"u": user})
            with pytest.raises(sa.exc.IntegrityError), c.begin_nested():
                c.execute(sa.text("INSERT INTO users (email, days_off) VALUES ('n@x.com', -1)"))
        return refused

    migrate(engine)
    with engine.connect() as c:
        kept = c.execute(
            sa.text("SELECT carry_over, days_off, streak_threshold, day_starts_at::text FROM users")
        ).one()
        urgency = c.scalar(sa.text("SELECT urgency FROM notifications"))
    assert tuple(kept) == ("none", 65, 80, "04:00:00")
    assert urgency == "high"
    assert table_checks(engine, "users", "notifications") == set()
    assert refusals() == [column for _, column, _, _ in BAD_VALUES]

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0025")
    assert len(table_checks(engine, "users", "notifications")) == len(BAD_VALUES)
    assert refusals() == [column for _, column, _, _ in BAD_VALUES]
    assert migrate(engine).after == head_revision()
    engine.dispose()


def test_0027_keeps_an_exports_rules_and_its_status_events(empty_database_url: str) -> None:
    """An export's format, status and source are refused as before (now by domains), the
    event of a changed status still goes out, and a downgrade brings the CHECKs back."""
    engine = create_engine(empty_database_url)
    migrate(engine, "0026")
    with engine.begin() as c:
        user = c.scalar(sa.text("INSERT INTO users (email) VALUES ('old@x.com') RETURNING id"))
        export = c.scalar(sa.text("SELECT planner_request_export(:u, 'csv')"), {"u": user})
    columns = (("format", "'pdf'", "'markdown'"), ("status", "'done'", "'processing'"))
    columns += (("source", "'cron'", "'schedule'"),)

    def refusals_and_events() -> tuple[list[str], list[str]]:
        refused = []
        with engine.begin() as c:
            for column, bad, good in columns:
                change = f"UPDATE export_jobs SET {column} = {{}} WHERE id = :e"
                with pytest.raises(sa.exc.IntegrityError) as caught, c.begin_nested():
                    c.execute(sa.text(change.format(bad)), {"e": export})
                assert caught.value.orig.sqlstate == "23514"
                refused.append(column)
                c.execute(sa.text(change.format(good)), {"e": export})
        with engine.connect() as listener:
            listener.exec_driver_sql("LISTEN planner_export_status")
            listener.commit()
            with engine.begin() as c:
                c.execute(
                    sa.text("UPDATE export_jobs SET status = 'failed' WHERE id = :e"), {"e": export}
                )
                c.execute(
                    sa.text("UPDATE export_jobs SET status = 'pending' WHERE id = :e"),
                    {"e": export},
                )
            raw = listener.connection.driver_connection  # idle: the events come at once
            assert raw is not None
            # (a listener may also see the events of a commit just before its LISTEN)
            events = [json.loads(n.payload)["status"] for n in raw.notifies(timeout=1)]
        return refused, events[-2:]

    migrate(engine)
    assert table_checks(engine, "export_jobs") == set()
    assert refusals_and_events() == (["format", "status", "source"], ["failed", "pending"])

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0026")
    assert len(table_checks(engine, "export_jobs")) == 3
    assert refusals_and_events() == (["format", "status", "source"], ["failed", "pending"])
    assert migrate(engine).after == head_revision()
    engine.dispose()


def test_migrators_started_together_take_turns(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    results: list[MigrationResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(engine))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(result.before is None for result in results) == [False, False, True]
    engine.dispose()


def test_workers_refuse_a_schema_that_is_not_current(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)

    with pytest.raises(DatabaseUnavailable, match="run `planner-jobs migrate`"):
        ensure_schema_current(engine)
    migrate(engine)
    ensure_schema_current(engine)
    engine.dispose()


def test_the_procrastinate_schema_we_ship_is_the_installed_procrastinate_schema() -> None:
    shipped = (MIGRATIONS_DIR / "procrastinate-3.10.0-schema.sql").read_text(encoding="utf-8")
    installed = (resources.files(procrastinate) / "sql" / "schema.sql").read_text(encoding="utf-8")

    assert shipped == installed, (
        "procrastinate's schema changed: add a migration that applies its SQL migrations"
    )


def test_deliveries_queued_before_the_outbox_are_kept_and_the_waiting_ones_sent_again(
    empty_database_url: str,
) -> None:
    """Migration 0006: each earlier notification becomes an outbox row (its payload once); what
    was delivered stays delivered, what waited is drained again."""
    engine = create_engine(empty_database_url)
    migrate(engine, "0005")
    with engine.begin() as c:
        user = c.scalar(sa.text("INSERT INTO users (email) VALUES ('a@example.com') RETURNING id"))
        subscriptions = [
            c.scalar(
                sa.text(
                    "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth)"
                    " VALUES (:u, :e, 'p', 'a') RETURNING id"
                ),
                {"u": user, "e": f"https://fcm.googleapis.com/{n}"},
            )
            for n in range(2)
        ]
        sent, waiting = uuid.uuid4(), uuid.uuid4()
        for notification, statuses in (
            (sent, ("delivered", "delivered")),
            (waiting, ("delivered", "pending")),
        ):
            for subscription, status in zip(subscriptions, statuses, strict=True):
                c.execute(
                    sa.text(
                        "INSERT INTO push_deliveries (notification_id, subscription_id, user_id,"
                        " payload, urgency, topic, status)"
                        " VALUES (:n, :s, :u, CAST(:p AS jsonb), 'high', 't', :status)"
                    ),
                    {
                        "n": notification,
                        "s": subscription,
                        "u": user,
                        "p": '{"title": "hi", "n": 1}',
                        "status": status,
                    },
                )

    migrate(engine)

    with engine.begin() as c:
        rows = c.execute(
            sa.text(
                "SELECT body, urgency, topic, source, drained_at IS NULL AS waits,"
                " (SELECT count(*) FROM push_deliveries d WHERE d.notification_id = n.id) AS kept"
                " FROM notifications n ORDER BY waits"
            )
        ).all()
        assert [tuple(row) for row in rows] == [
            ('{"n":1,"title":"hi"}', "high", "t", "earlier", False, 2),
            ('{"n":1,"title":"hi"}', "high", "t", "earlier", True, 1),
        ]
        drained = drain(c, limit=10)
        assert drained.claimed == 1
        assert (
            c.scalar(sa.text("SELECT count(*) FROM push_deliveries WHERE status = 'pending'")) == 1
        )
    engine.dispose()


def test_0009_downgrades_to_the_earlier_functions_and_back(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    migrate(engine)

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0008")
    with engine.connect() as connection:
        config = connection.scalar(
            sa.text("SELECT proconfig FROM pg_proc WHERE proname = 'planner_notify'")
        )
        compact = connection.scalar(sa.text("""SELECT planner_json_compact('{"a": [1, "b c"]}')"""))
    assert config == ['search_path="$user", public']
    assert compact == '{"a":[1,"b c"]}'

    assert migrate(engine).after == head_revision()
    engine.dispose()
