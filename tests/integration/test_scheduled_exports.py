"""Scheduled exports (`export_schedules`): one export each day, week or month, right after the
rollover closes the last date of the period; outside the request quota; waiting for the user's
active export; the newest `keep` kept; shown with their `source` to the user and operators."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner_jobs.db import exports as db
from planner_jobs.inspection import views
from planner_jobs.jobs.exports import expire_exports
from planner_jobs.jobs.rollover import sweep
from planner_jobs.runtime import Runtime
from tests import day_model
from tests.data import add_user, utc
from tests.integration.conftest import bearer, client_of, work

RETENTION = dt.timedelta(days=7)


def scheduled_user(
    runtime: Runtime,
    every: str,
    *,
    created: str,
    zone: str = "Europe/Paris",
    boundary: str = "00:00",
    keep: int = 4,
    fmt: str = "json",
) -> uuid.UUID:
    with runtime.engine.begin() as c:
        user = add_user(c, created_at=utc(created), timezone=zone)
        c.execute(
            sa.text("UPDATE users SET day_starts_at = CAST(:b AS time) WHERE id = :u"),
            {"b": boundary, "u": user},
        )
        c.execute(
            sa.text(
                "INSERT INTO export_schedules (user_id, format, every, keep)"
                " VALUES (:u, :f, :e, :k)"
            ),
            {"u": user, "f": fmt, "e": every, "k": keep},
        )
    return user


def close_days(runtime: Runtime, at: str) -> None:
    sweep(runtime.engine, now=utc(at), default_threshold=75, parallel=1)


def exports_of(runtime: Runtime, user: uuid.UUID) -> list[tuple[str, str, str]]:
    with runtime.engine.connect() as c:
        return [
            (row.source, row.status, row.format)
            for row in c.execute(
                sa.text(
                    "SELECT source, status, format FROM export_jobs WHERE user_id = :u"
                    " ORDER BY created_at, id"
                ),
                {"u": user},
            )
        ]


def test_a_daily_schedule_exports_once_the_rollover_closes_the_day(runtime: Runtime) -> None:
    user = scheduled_user(runtime, "day", created="2026-03-01T08:00", fmt="csv")

    close_days(runtime, "2026-03-01T22:30")  # 23:30 in Paris: nothing closed yet
    before = exports_of(runtime, user)
    close_days(runtime, "2026-03-02T23:30")  # 1 and 2 March closed in one pass: one export
    work(runtime, "exports")

    assert before == []
    assert exports_of(runtime, user) == [("schedule", "complete", "csv")]
    with runtime.engine.connect() as c:
        ready = c.scalar(
            sa.text("SELECT body::jsonb->>'title' FROM notifications WHERE user_id = :u"),
            {"u": user},
        )
    assert ready == "Your export is ready"
    with client_of(runtime) as client:
        [shown] = client.get("/api/exports", headers=bearer(runtime, user)).json()
    assert (shown["source"], shown["status"], shown["expiresAt"]) == ("schedule", "complete", None)
    assert shown["downloadUrl"] is not None


def test_a_weekly_schedule_waits_for_the_users_sunday_to_close(runtime: Runtime) -> None:
    """1 March 2026 is a Sunday; with a 04:00 boundary, Sunday 8 March ends on Monday at 04:00
    in Paris (03:00 UTC)."""
    user = scheduled_user(runtime, "week", created="2026-03-02T08:00", boundary="04:00")

    close_days(runtime, "2026-03-09T01:30")  # Monday 02:30 in Paris: Sunday is still open
    before = exports_of(runtime, user)
    close_days(runtime, "2026-03-09T03:00")

    assert before == []
    assert exports_of(runtime, user) == [("schedule", "pending", "json")]


def test_a_monthly_schedule_exports_after_the_months_last_date(runtime: Runtime) -> None:
    user = scheduled_user(runtime, "month", created="2026-03-30T08:00")

    close_days(runtime, "2026-03-31T21:30")  # 23:30 on 31 March in Paris (summer time)
    before = exports_of(runtime, user)
    close_days(runtime, "2026-03-31T22:00")  # midnight: 31 March closed

    assert before == []
    assert exports_of(runtime, user) == [("schedule", "pending", "json")]


def test_scheduled_exports_neither_count_toward_nor_obey_the_request_quota(
    runtime: Runtime,
) -> None:
    user = scheduled_user(runtime, "day", created="2026-03-01T08:00")
    with runtime.engine.begin() as c:
        for _ in range(5):  # the day's five requests, all finished
            c.execute(
                sa.text(
                    "INSERT INTO export_jobs (user_id, format, status, created_at)"
                    " VALUES (:u, 'json', 'failed', now())"
                ),
                {"u": user},
            )
    close_days(runtime, "2026-03-02T23:30")
    work(runtime, "exports")
    with runtime.engine.begin() as c:
        c.execute(
            sa.text("DELETE FROM export_jobs WHERE user_id = :u AND source = 'request'"),
            {"u": user},
        )
        for _ in range(4):
            c.execute(
                sa.text(
                    "INSERT INTO export_jobs (user_id, format, status, created_at)"
                    " VALUES (:u, 'json', 'failed', now())"
                ),
                {"u": user},
            )

    with runtime.engine.begin() as c:
        fifth, created = db.request(c, user, "json")

    assert exports_of(runtime, user)[0] == ("schedule", "complete", "json")
    assert created
    assert fifth.source == "request"


def test_a_schedule_due_while_an_export_is_active_starts_when_that_one_ends(
    runtime: Runtime,
) -> None:
    user = scheduled_user(runtime, "day", created="2026-03-01T08:00")
    other = scheduled_user(runtime, "day", created="2026-03-01T08:00")
    with runtime.engine.begin() as c:
        db.request(c, user, "csv")
        db.request(c, other, "markdown")

    close_days(runtime, "2026-03-01T23:30")
    with runtime.engine.connect() as c:
        waiting = views.export_schedules(c)
    assert (waiting.schedules, waiting.due) == (2, 2)
    assert exports_of(runtime, user) == [("request", "pending", "csv")]

    with runtime.engine.begin() as c:  # the other's request fails: its schedule starts
        [active] = [j for j in db.list_jobs(c, other) if j.status == "pending"]
        db.fail_job(c, active.id, error="storage is down")
    work(runtime, "exports")  # the request completes, then its schedule's export is built

    assert exports_of(runtime, user) == [
        ("request", "complete", "csv"),
        ("schedule", "complete", "json"),
    ]
    assert exports_of(runtime, other) == [
        ("request", "failed", "markdown"),
        ("schedule", "complete", "json"),
    ]
    with runtime.engine.connect() as c:
        assert views.export_schedules(c).due == 0


def test_the_newest_kept_scheduled_exports_stay_and_older_ones_expire(runtime: Runtime) -> None:
    user = scheduled_user(runtime, "day", created="2026-03-01T08:00", keep=2)
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        close_days(runtime, f"{day}T23:30")
        work(runtime, "exports")
    with runtime.engine.begin() as c:
        requested, _ = db.request(c, user, "csv")
    work(runtime, "exports")
    files = sorted((runtime.settings.data_dir / "exports").rglob("*.json"), key=_created)
    assert len(files) == 3

    in_a_year = dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    kept = expire_exports(runtime.engine, runtime.storage, now=dt.datetime.now(dt.UTC), **_R)
    assert kept.expired == 1  # the oldest scheduled one
    assert [f.exists() for f in files] == [False, True, True]
    statuses = exports_of(runtime, user)
    assert statuses == [
        ("schedule", "expired", "json"),
        ("schedule", "complete", "json"),
        ("schedule", "complete", "json"),
        ("request", "complete", "csv"),
    ]

    # The request's retention still applies to it; the kept scheduled ones ignore it...
    later = expire_exports(runtime.engine, runtime.storage, now=in_a_year, **_R)
    assert later.expired == 1
    assert [s for s, status, _ in exports_of(runtime, user) if status == "complete"] == [
        "schedule",
        "schedule",
    ]
    # ...until the user's schedule is gone: then theirs applies too.
    with runtime.engine.begin() as c:
        c.execute(sa.text("DELETE FROM export_schedules WHERE user_id = :u"), {"u": user})
    gone = expire_exports(runtime.engine, runtime.storage, now=in_a_year, **_R)
    assert gone.expired == 2
    assert requested.source == "request"


_R: dict[str, Any] = {"retention": RETENTION}


def _created(path: Any) -> float:
    return float(path.stat().st_mtime)


def test_operators_see_the_source_and_a_deleted_user_takes_the_schedule(
    runtime: Runtime, dashboard: TestClient
) -> None:
    user = scheduled_user(runtime, "day", created="2026-03-01T08:00")
    close_days(runtime, "2026-03-01T23:30")

    page = dashboard.get("/admin/exports").text

    assert '<td class="source">schedule</td>' in page
    assert 'id="exports-schedules"' in page
    with runtime.engine.begin() as c:
        c.execute(sa.text("DELETE FROM users WHERE id = :u"), {"u": user})
        assert c.scalar(sa.text("SELECT count(*) FROM export_schedules")) == 0


EDGES = {
    "America/New_York": "2026-03-08",
    "Europe/Paris": "2026-03-29",
    "Australia/Lord_Howe": "2026-10-04",
    "Pacific/Chatham": "2026-04-05",
    "America/Santiago": "2026-09-06",
    "Pacific/Apia": "2011-12-30",
}


def _ends_period(day: dt.date, every: str) -> bool:
    """The reference's rule, written apart: a date ends its period when it is the last of it."""
    if every == "day":
        return True
    if every == "week":
        return day.strftime("%A") == "Sunday"
    return (day + dt.timedelta(days=1)).month != day.month


@settings(
    max_examples=int(os.environ.get("PLANNER_PROPERTY_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.sampled_from(sorted(EDGES)),
    st.sampled_from(["day", "week", "month"]),
    st.sampled_from([dt.time(0), dt.time(2, 30), dt.time(4)]),
    st.integers(0, 40),
)
def test_the_export_starts_when_the_models_last_date_of_the_period_closes(
    runtime: Runtime, zone: str, every: str, boundary: dt.time, shift: int
) -> None:
    """Around a DST change (the first period ending up to 40 days after it), a sweep a second
    before the model's first instant of the date after the period's last one starts no export,
    and one at that instant starts it."""
    edge = dt.datetime.fromisoformat(EDGES[zone]).replace(tzinfo=dt.UTC)
    created = edge + dt.timedelta(days=shift) - dt.timedelta(days=35)
    first = day_model.date_of(created, zone, boundary)
    last = next(
        first + dt.timedelta(days=n)
        for n in range(60)
        if _ends_period(first + dt.timedelta(days=n), every)
    )
    closes = day_model.start(last + dt.timedelta(days=1), zone, boundary)
    try:
        user = scheduled_user(
            runtime,
            every,
            created=created.isoformat(),
            zone=zone,
            boundary=boundary.isoformat(),
        )
        sweep(
            runtime.engine,
            now=closes - dt.timedelta(seconds=1),
            default_threshold=75,
            parallel=1,
        )
        before = exports_of(runtime, user)
        sweep(runtime.engine, now=closes, default_threshold=75, parallel=1)
        assert (before, exports_of(runtime, user)) == (
            [],
            [("schedule", "pending", "json")],
        ), (zone, every, boundary, last, closes)
        with runtime.engine.connect() as c:
            history = c.scalar(
                sa.text("SELECT max(day) FROM performance_history WHERE user_id = :u"),
                {"u": user},
            )
        assert history == last  # the export holds the period's last date
    finally:
        with runtime.engine.begin() as c:
            c.execute(sa.text("TRUNCATE users CASCADE"))
