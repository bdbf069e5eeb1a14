"""The tables of the contract, as typed SQLAlchemy models.

Other programs insert rows with the contract's columns only, so every column added here beyond
them is nullable or has a server default, and the jobs must work when it was never set.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    Numeric,
    SmallInteger,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, DOMAIN, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.operators import OperatorClass

from planner_jobs.domain.exports.formats import FORMAT_NAMES
from planner_jobs.domain.push import URGENCIES
from planner_jobs.domain.streaks import StreakEffect

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CARRY_OVER_MODES = ("next_day", "inbox", "none")
# A user the rollover has not planned yet: a new row, a zone or a day boundary that changed.
UNPLANNED = (
    "rollover_due_at IS NULL OR rollover_zone IS DISTINCT FROM timezone"
    " OR rollover_day_starts_at IS DISTINCT FROM day_starts_at"
)
EXPORT_STATUSES = ("pending", "processing", "complete", "failed", "expired")
EXPORT_SOURCES = ("request", "schedule")
SCHEDULE_PERIODS = ("day", "week", "month")
STREAK_EFFECTS = tuple(effect.value for effect in StreakEffect)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class _Domain(DOMAIN):
    """A type holding the rule of one value: a table CHECK is read from the catalog's text and
    planned again by every INSERT or UPDATE of its table, a domain's rule once per session
    (migrations 0026-0027)."""

    # A domain has its base type's operators; SQLAlchemy's DOMAIN names none, and warns.
    operator_classes = OperatorClass.ANY


def _domain(name: str, base: Any, check: str) -> DOMAIN:
    return _Domain(name, base, check=check, constraint_name=f"{name}_check", create_type=False)


CARRY_OVER = _domain("planner_carry_over", Text(), _in("VALUE", CARRY_OVER_MODES))
DAYS_OFF = _domain("planner_days_off", SmallInteger(), "VALUE BETWEEN 0 AND 127")
STREAK_THRESHOLD = _domain("planner_streak_threshold", SmallInteger(), "VALUE BETWEEN 1 AND 100")
# A night owl's day may end at 04:00 the next morning; never past noon.
DAY_START = _domain("planner_day_start", Time(), "VALUE < '12:00'")
URGENCY = _domain("planner_urgency", Text(), _in("VALUE", URGENCIES))
EXPORT_FORMAT = _domain("planner_export_format", Text(), _in("VALUE", FORMAT_NAMES))
EXPORT_STATUS = _domain("planner_export_status", Text(), _in("VALUE", EXPORT_STATUSES))
EXPORT_SOURCE = _domain("planner_export_source", Text(), _in("VALUE", EXPORT_SOURCES))


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        dt.datetime: DateTime(timezone=True),
        dt.date: Date(),
        str: Text(),
        dict[str, Any]: JSONB(),
    }


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))


def created_at() -> Mapped[dt.datetime]:
    return mapped_column(server_default=text("now()"))


def user_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


STREAK_NUDGE_UNPLANNED = (
    "streak_reminder_at IS NOT NULL"
    " AND (streak_nudge_at IS NULL OR streak_nudge_time IS DISTINCT FROM streak_reminder_at)"
)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        # The rollover tick finds its work through these two: users whose next day is due...
        Index("ix_users_rollover_due_at", "rollover_due_at"),
        # ...and users it has not planned yet (new rows, or a changed time zone).
        Index(
            "ix_users_rollover_unplanned",
            "id",
            postgresql_where=text(UNPLANNED),
        ),
        # Operators count the users whose rollover failed and waits to be retried.
        Index(
            "ix_users_rollover_retry_at",
            "rollover_retry_at",
            postgresql_where=text("rollover_retry_at IS NOT NULL"),
        ),
        # The reminders sweep finds the streak nudges due, and those not planned yet.
        Index(
            "ix_users_streak_nudge_at",
            "streak_nudge_at",
            postgresql_where=text("streak_reminder_at IS NOT NULL"),
        ),
        Index(
            "ix_users_streak_nudge_unplanned", "id", postgresql_where=text(STREAK_NUDGE_UNPLANNED)
        ),
        # Token cleanup reads only the users holding a token with an expiry.
        Index(
            "ix_users_password_reset_expires",
            "password_reset_expires",
            postgresql_where=text("password_reset_expires IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(unique=True)
    timezone: Mapped[str] = mapped_column(server_default=text("'UTC'"))
    created_at: Mapped[dt.datetime] = created_at()
    password_reset_token: Mapped[str | None]
    password_reset_expires: Mapped[dt.datetime | None]
    streak_threshold: Mapped[int | None] = mapped_column(STREAK_THRESHOLD)
    carry_over: Mapped[str] = mapped_column(CARRY_OVER, server_default=text("'next_day'"))
    # Streak protection and quiet hours, set by the main app (domain.streaks, domain.quiet_hours).
    days_off: Mapped[int] = mapped_column(DAYS_OFF, server_default=text("0"))  # bit 0: Monday
    vacation_start: Mapped[dt.date | None]  # inclusive local dates; a vacation needs both
    vacation_end: Mapped[dt.date | None]
    quiet_hours_start: Mapped[dt.time | None]  # local wall-clock times; may wrap midnight
    quiet_hours_end: Mapped[dt.time | None]
    day_starts_at: Mapped[dt.time] = mapped_column(DAY_START, server_default=text("'00:00'"))
    streak_reminder_at: Mapped[dt.time | None]  # local time of the streak-at-risk nudge
    # Rollover bookkeeping, all nullable: NULL means "not planned yet", which the tick fixes.
    rollover_next_date: Mapped[dt.date | None]  # the first local date not yet closed
    rollover_due_at: Mapped[dt.datetime | None]  # when that date becomes due (its next midnight)
    rollover_zone: Mapped[str | None]  # the `timezone` value `rollover_due_at` was computed in
    # ...and the `day_starts_at` value (a constant default: adding it rewrote no row)
    rollover_day_starts_at: Mapped[dt.time] = mapped_column(server_default=text("'00:00'"))
    rollover_retry_at: Mapped[dt.datetime | None]  # after a failure: not before this instant
    rollover_error: Mapped[str | None]  # why the last attempt failed, for operators
    # Streak nudge bookkeeping (as routine tasks' reminders): the user's date of the next nudge,
    # its instant, and the `streak_reminder_at` it was planned from.
    streak_nudge_date: Mapped[dt.date | None]
    streak_nudge_at: Mapped[dt.datetime | None]
    streak_nudge_time: Mapped[dt.time | None]


class TodaysPlan(Base):
    __tablename__ = "todays_plans"
    __table_args__ = (UniqueConstraint("user_id", "plan_date"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    plan_date: Mapped[dt.date]
    created_at: Mapped[dt.datetime] = created_at()


class Goal(Base):
    __tablename__ = "goals"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = user_fk()
    title: Mapped[str]
    description: Mapped[str | None]
    target_date: Mapped[dt.date | None]
    completed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = created_at()


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        # A user's tasks in creation order: exports stream them straight off this index.
        Index("ix_tasks_user_id_created_at", "user_id", "created_at", "id"),
        Index("ix_tasks_goal_id", "goal_id", postgresql_where=text("goal_id IS NOT NULL")),
        # The reminder tick reads only the tasks with a reminder still to handle.
        Index(
            "ix_tasks_reminder_due",
            "remind_at",
            postgresql_where=text(
                "remind_at IS NOT NULL AND NOT completed"
                " AND remind_at IS DISTINCT FROM reminded_for"
            ),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    plan_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("todays_plans.id", ondelete="SET NULL"), index=True
    )
    # Partial: most tasks have no goal, and the nightly carry-over then skips this index.
    goal_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("goals.id", ondelete="SET NULL"))
    title: Mapped[str]
    notes: Mapped[str | None]
    completed: Mapped[bool] = mapped_column(server_default=text("false"))
    completed_at: Mapped[dt.datetime | None]
    due_at: Mapped[dt.datetime | None]
    remind_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = created_at()
    # The `remind_at` value already reminded (or skipped): a new value arms a new reminder.
    reminded_for: Mapped[dt.datetime | None]


class DailyRoutine(Base):
    __tablename__ = "daily_routines"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = user_fk()
    name: Mapped[str]
    created_at: Mapped[dt.datetime] = created_at()


ROUTINE_REMINDER_UNPLANNED = (
    "remind_time IS NOT NULL"
    " AND (reminder_at IS NULL OR reminder_time IS DISTINCT FROM remind_time)"
)


class RoutineTask(Base):
    __tablename__ = "routine_tasks"
    __table_args__ = (
        # The reminders sweep finds its routine tasks through these two: a reminder due...
        Index(
            "ix_routine_tasks_reminder_at",
            "reminder_at",
            postgresql_where=text("remind_time IS NOT NULL"),
        ),
        # ...and a reminder not planned yet (new, or its time changed).
        Index(
            "ix_routine_tasks_reminder_unplanned",
            "id",
            postgresql_where=text(ROUTINE_REMINDER_UNPLANNED),
        ),
        # Every checked routine task is unchecked every night, a page's worth in one batch:
        # half of each page free lets PostgreSQL update them in place (HOT: no index entry
        # written; migration 0021).
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    routine_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("daily_routines.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str]
    position: Mapped[int] = mapped_column(server_default=text("0"))
    completed: Mapped[bool] = mapped_column(server_default=text("false"))
    completed_at: Mapped[dt.datetime | None]
    remind_time: Mapped[dt.time | None]  # local wall-clock time of the daily reminder
    # Reminder bookkeeping, all nullable: the user's date of the next reminder, its instant, and
    # the `remind_time` it was planned from.
    reminder_date: Mapped[dt.date | None]
    reminder_at: Mapped[dt.datetime | None]
    reminder_time: Mapped[dt.time | None]


class ActivityLog(Base):
    __tablename__ = "activity_logs"
    __table_args__ = (Index(None, "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str]
    message: Mapped[str]
    created_at: Mapped[dt.datetime] = created_at()


class PushSubscription(Base):
    __tablename__ = "push_subscriptions"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = user_fk()
    endpoint: Mapped[str] = mapped_column(unique=True)
    p256dh: Mapped[str]
    auth: Mapped[str]
    created_at: Mapped[dt.datetime] = created_at()


class PerformanceHistory(Base):
    __tablename__ = "performance_history"
    __table_args__ = (
        CheckConstraint(
            "total_tasks >= 0 AND completed_tasks BETWEEN 0 AND total_tasks", name="counts"
        ),
        CheckConstraint("threshold BETWEEN 1 AND 100", name="threshold_percent"),
        CheckConstraint(_in("streak_effect", STREAK_EFFECTS), name="streak_effect"),
        # A month's partition keeps its users' entries close: a night's inserts write a leaf
        # page per 8 to 250 users, not one per user (migration 0024, `planner_history_months()`).
        {"postgresql_partition_by": "RANGE (day)"},
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    completed_tasks: Mapped[int]
    total_tasks: Mapped[int]
    score: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    threshold: Mapped[int] = mapped_column(SmallInteger)
    streak_effect: Mapped[str | None]  # what closing the day did (null: closed before 0008)


class Streak(Base):
    __tablename__ = "streaks"
    __table_args__ = (
        CheckConstraint("freezes >= 0", name="freezes_not_negative"),
        # Every streak a rollover closes is rewritten, a page's worth in one batch: half of each
        # page free keeps those updates HOT (migration 0021).
        {"postgresql_with": {"fillfactor": 50}},
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    current: Mapped[int] = mapped_column(server_default=text("0"))
    longest: Mapped[int] = mapped_column(server_default=text("0"))
    last_activity_date: Mapped[dt.date | None]
    freezes: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))


class ExportJob(Base):
    __tablename__ = "export_jobs"
    __table_args__ = (
        Index(None, "user_id", "created_at"),
        # The retention sweep reads each user's complete scheduled exports, newest first.
        Index(
            "ix_export_jobs_scheduled_complete",
            "user_id",
            "created_at",
            postgresql_where=text("source = 'schedule' AND status = 'complete'"),
        ),
        # One export on its way per user, whoever inserts it.
        Index(
            "ux_export_jobs_one_active_per_user",
            "user_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'processing')"),
        ),
        # The retention sweep reads only finished files...
        Index(
            "ix_export_jobs_expires_at",
            "expires_at",
            postgresql_where=text("status = 'complete'"),
        ),
        # Operators see the newest exports first...
        Index("ix_export_jobs_created_at", "created_at"),
        # ...and count the finished ones by status (expired ones pile up forever: not those;
        # the active ones are counted off the unique index above, and a request's lookup of
        # the user's active export must not find this one cheaper on stale statistics).
        Index(
            "ix_export_jobs_finished_status",
            "status",
            postgresql_where=text("status IN ('complete', 'failed')"),
        ),
        # ...and the files failed attempts may have left.
        Index(
            "ix_export_jobs_failed_with_file",
            "id",
            postgresql_where=text("status = 'failed' AND storage_key IS NOT NULL"),
        ),
        # The workers' intake finds the requests that have no build job yet.
        Index(
            "ix_export_jobs_to_build",
            "created_at",
            postgresql_where=text("status = 'pending' AND build_queued_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(EXPORT_FORMAT)
    status: Mapped[str] = mapped_column(EXPORT_STATUS, server_default=text("'pending'"))
    download_url: Mapped[str | None]
    error: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    completed_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]
    # Bookkeeping of our own (nullable: rows inserted by others still work).
    storage_key: Mapped[str | None]
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # When a worker queued its build job (null: requested, not yet taken in; a row the main
    # app inserts itself is taken in too).
    build_queued_at: Mapped[dt.datetime | None]
    # What made it: a request (the API, `planner_request_export()`), or the user's schedule.
    source: Mapped[str] = mapped_column(EXPORT_SOURCE, server_default=text("'request'"))


class ExportSchedule(Base):
    """A user's automatic exports (written by the main app): one each `every` period, right
    after the rollover closes its last date; the newest `keep` complete ones are kept."""

    __tablename__ = "export_schedules"
    __table_args__ = (
        CheckConstraint(_in("format", FORMAT_NAMES), name="format"),
        CheckConstraint(_in("every", SCHEDULE_PERIODS), name="every"),
        CheckConstraint("keep BETWEEN 1 AND 30", name="keep"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    format: Mapped[str]
    every: Mapped[str]
    keep: Mapped[int] = mapped_column(SmallInteger, server_default=text("4"))
    created_at: Mapped[dt.datetime] = created_at()
    # Ours: the last date of a closed period whose export waits for the user's active one.
    due_date: Mapped[dt.date | None]


class Notification(Base):
    """A notification raised by any way in (`planner_notify()`, HTTP, a job, the CLI, reminders,
    exports): the outbox the workers drain into deliveries. Written through the SQL function
    `planner_enqueue_notification()`, which holds the rules (migration 0006)."""

    __tablename__ = "notifications"
    __table_args__ = (
        # The drain reads only what waits...
        Index("ix_notifications_undrained", "id", postgresql_where=text("drained_at IS NULL")),
        # ...and a deduplication key has one holder, which a repeat meets (migration 0011).
        Index(
            "ux_notifications_dedupe",
            "user_id",
            "dedupe_key",
            unique=True,
            postgresql_where=text("dedupe_key IS NOT NULL"),
        ),
        # The nightly prune walks the primary key: ids follow arrival (migration 0022).
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    # No foreign key: its check would lock the user's row in every caller's transaction. The
    # rules check the user exists; a user's deletion takes their notifications by a trigger
    # (migration 0019).
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    body: Mapped[str]  # the payload's compact JSON text: exactly what the browser receives
    urgency: Mapped[str] = mapped_column(URGENCY, server_default=text("'normal'"))
    topic: Mapped[str | None]
    ttl: Mapped[int | None]  # seconds; None: PLANNER_PUSH_TTL
    # Held by the newest notification with the key; cleared when a repeat comes after 24 h.
    dedupe_key: Mapped[str | None]
    source: Mapped[str] = mapped_column(server_default=text("'sql'"))  # the way in
    duplicates: Mapped[int] = mapped_column(server_default=text("0"))  # dropped repeats of it
    created_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    drained_at: Mapped[dt.datetime | None]  # when its deliveries were made


DELIVERY_STATUSES = ("pending", "delivered", "rejected", "failed")


class PushDelivery(Base):
    """One notification to one subscription: the record that makes retries exact (a delivered
    message is never sent again) and lets a crash resume where it stopped."""

    __tablename__ = "push_deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        Index(
            "ix_push_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    notification_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True
    )
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("push_subscriptions.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    status: Mapped[str] = mapped_column(server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    next_attempt_at: Mapped[dt.datetime] = mapped_column(server_default=text("now()"))
    last_status: Mapped[int | None] = mapped_column(SmallInteger)
    last_error: Mapped[str | None]
    created_at: Mapped[dt.datetime] = created_at()
    delivered_at: Mapped[dt.datetime | None]


class JobFailure(Base):
    """One failed attempt of a job, as the worker saw it (procrastinate keeps no error)."""

    __tablename__ = "job_failures"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    job_id: Mapped[int] = mapped_column(BigInteger, index=True)  # the job engine's job id
    attempt: Mapped[int]
    worker_id: Mapped[int | None] = mapped_column(BigInteger)
    exception: Mapped[str]  # the exception's qualified name
    message: Mapped[str]
    traceback: Mapped[str]
    failed_at: Mapped[dt.datetime] = created_at()


class JobCount(Base):
    """Jobs finished in one minute, by queue, task and outcome (added up by the workers)."""

    __tablename__ = "job_counts"

    minute: Mapped[dt.datetime] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(primary_key=True)
    outcome: Mapped[str] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class QueuePause(Base):
    """A queue an operator paused (`planner-jobs jobs pause`): the workers take none of its jobs
    until it is resumed (the row is deleted)."""

    __tablename__ = "queue_pauses"

    queue: Mapped[str] = mapped_column(primary_key=True)
    paused_at: Mapped[dt.datetime] = created_at()


class WorkerProcess(Base):
    """Where a live worker runs, for the operators (procrastinate keeps only its heartbeat);
    the rows of workers procrastinate has forgotten go as the next worker starts."""

    __tablename__ = "worker_processes"

    worker_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # procrastinate's id
    host: Mapped[str]
    pid: Mapped[int]
    queues: Mapped[list[str]] = mapped_column(ARRAY(Text))
    started_at: Mapped[dt.datetime] = created_at()


class DatabaseSettings(Base):
    """What the database's own rules must know of the planner-jobs that migrates it (one row,
    written by `migrate`): whether it serves development, where a link in a notification may be
    plain `http:`."""

    __tablename__ = "planner_settings"
    __table_args__ = (CheckConstraint("one", name="one_row"),)

    one: Mapped[bool] = mapped_column(primary_key=True, server_default=text("true"))
    development: Mapped[bool] = mapped_column(server_default=text("false"))


EMAIL_STATUSES = ("pending", "sent", "failed")


class ExportEmail(Base):
    """The export-ready e-mail of one export: made in the transaction that completes it (when
    PLANNER_EXPORT_EMAIL says so), sent once by the `emails.send` job, which records the
    outcome in the transaction that holds the row while the server takes the message."""

    __tablename__ = "export_emails"
    __table_args__ = (
        CheckConstraint(_in("status", EMAIL_STATUSES), name="status"),
        # The sending job's claim: the waiting e-mails, the next to try first.
        Index(
            "ix_export_emails_waiting",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    export_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("export_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    next_attempt_at: Mapped[dt.datetime] = created_at()
    address: Mapped[str | None]  # where it went (or was refused), as it was then
    reply: Mapped[str | None]  # the server's last answer, or what went wrong
    created_at: Mapped[dt.datetime] = created_at()
    finished_at: Mapped[dt.datetime | None]
