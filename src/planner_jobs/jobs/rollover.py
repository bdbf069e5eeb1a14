"""The daily rollover sweep: close every user-day that is due, in batches, and the periodic task.

A sweep claims users with work (`SKIP LOCKED`, so concurrent sweeps share it), decides in pure
code which of their dates are due and how each scores, and closes all of a batch's user-days with
a handful of set-based statements per day-step. A batch is one transaction: a user's history row,
streak, routine reset, carried tasks and calendar position commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from planner_jobs import logs
from planner_jobs.db import exports, job_counts, notifications
from planner_jobs.db import rollover as db
from planner_jobs.domain.carry_over import carried_to
from planner_jobs.domain.days import (
    DaysToClose,
    day_bounds,
    days_to_close,
    due_at,
    require_aware,
)
from planner_jobs.domain.notifications import NO_LINKS, AppLinks, NewNotification
from planner_jobs.domain.streaks import (
    DEFAULT_FREEZE_RULES,
    FreezeRules,
    Streak,
    StreakEffect,
    effective_threshold,
    freeze_notice,
    meets_goal,
    score,
)
from planner_jobs.metrics import Metrics

events = logs.events(__name__)

BATCH_SIZE = 5000  # users per transaction
PARALLEL_SWEEPERS = 2  # connections sweeping at once (they claim disjoint batches)
MAX_DAYS_PER_CLAIM = 31  # a long backfill goes a month at a time, releasing its locks between
RETRY_AFTER_FAILURE = dt.timedelta(minutes=10)

# Data-driven failures of one user's rows; a lost connection (OperationalError) stops the sweep.
_ROW_ERRORS = (
    sa.exc.IntegrityError,
    sa.exc.DataError,
    sa.exc.ProgrammingError,
    ValueError,
    OverflowError,
    ArithmeticError,
)


@dataclass
class SweepSummary:
    user_days: int = 0
    users: int = 0  # users whose every due date is now closed
    unknown_zones: int = 0
    failed: int = 0
    held: set[uuid.UUID] = field(default_factory=set)  # rows another transaction holds
    stopped: bool = False  # asked to stop: what was not reached is left for the next sweep
    seconds: float = 0.0
    effects: Counter[StreakEffect] = field(default_factory=Counter)

    def line(self) -> str:
        text = f"closed {self.user_days} user-days for {self.users} users in {self.seconds:.2f} s"
        notes = []
        if self.unknown_zones:
            notes.append(f"{self.unknown_zones} with an unknown time zone, rolled over in UTC")
        if self.failed:
            notes.append(f"{self.failed} failed and will be retried (see the log)")
        if self.held:
            notes.append(
                f"{len(self.held)} left for the next sweep: another transaction holds their rows"
            )
        if self.stopped:
            notes.append("stopped when asked: the rest is left for the next sweep")
        return text + (f" ({'; '.join(notes)})" if notes else "")

    def add(self, other: SweepSummary) -> None:
        for name in ("user_days", "users", "unknown_zones", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.held |= other.held
        self.stopped |= other.stopped
        self.effects.update(other.effects)


def _never() -> bool:
    return False


def sweep(
    engine: Engine,
    *,
    now: dt.datetime,
    default_threshold: int,
    freeze_rules: FreezeRules = DEFAULT_FREEZE_RULES,
    links: AppLinks = NO_LINKS,
    batch_size: int = BATCH_SIZE,
    parallel: int = PARALLEL_SWEEPERS,
    metrics: Metrics | None = None,
    on_batch: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] = _never,
) -> SweepSummary:
    """Close every user-day due at `now`; safe to run late, twice, or in several processes.

    `parallel` connections claim batches side by side (the database does most of the work, so
    two keep both cores of a small machine busy). `on_batch(n)` is called after each committed
    batch with the number of users it visited. Once `should_stop()` (the process is asked to
    stop), the sweep commits what it closed, between batches or between the days of a backfill,
    and returns: the next sweep goes on from there.

    A user whose rows another program's transaction holds (the main app granting a freeze in a
    long transaction) is not waited for: it is tried once more after the others, then left for
    the next sweep.
    """
    require_aware(now)
    started = time.perf_counter()
    summary = SweepSummary()
    # The history's partitions of the dates being closed around `now` (local dates are within
    # a day of UTC's), made before any batch holds a lock on users: about a day before a month
    # begins, the first sweep makes its partition.
    today = now.astimezone(dt.UTC).date()
    db.make_history_months(engine, [today - dt.timedelta(days=1), today + dt.timedelta(days=1)])
    lock = threading.Lock()

    def one_batch(*, only: Sequence[uuid.UUID] | None = None) -> int:
        while True:
            try:
                return _one_batch(only=only)
            except db.HistoryMonthsMissing as missing:  # a backfill reached an older month
                db.make_history_months(engine, missing.months)  # each time one more exists

    def _one_batch(*, only: Sequence[uuid.UUID] | None = None) -> int:
        with lock:
            excluding = list(summary.held)
        with engine.begin() as connection:
            db.prefer_index_lookups_and_short_lock_waits(connection)
            users = db.claim_users(
                connection, now=now, limit=batch_size, excluding=excluding, only=only
            )
            if not users:
                return 0
            batch = _close_batch_or_each(
                connection,
                users,
                now=now,
                threshold=default_threshold,
                rules=freeze_rules,
                links=links,
                should_stop=should_stop,
            )
        with lock:
            summary.add(batch)
            if on_batch is not None:
                on_batch(len(users))
        return len(users)

    def sweeper() -> None:
        while not should_stop() and one_batch():
            pass

    if parallel <= 1:
        sweeper()
    else:
        with ThreadPoolExecutor(parallel, thread_name_prefix="rollover") as pool:
            for running in [pool.submit(sweeper) for _ in range(parallel)]:
                running.result()
    if summary.held and not should_stop():  # the later pass: held once more, left for the next
        later, summary.held = sorted(summary.held), set()
        for start in range(0, len(later), batch_size):
            one_batch(only=later[start : start + batch_size])
    summary.stopped |= should_stop()
    summary.seconds = time.perf_counter() - started
    if summary.user_days:
        with engine.begin() as connection:  # after the sweep: no lock held across batches
            job_counts.add(
                connection,
                queue="maintenance",
                task="rollover.sweep",
                what=job_counts.USER_DAYS,
                n=summary.user_days,
            )
    if summary.held:
        events.info("rollover users held by another transaction", users=len(summary.held))
    if metrics is not None:
        metrics.rollover_user_days.inc(summary.user_days)
        metrics.rollover_failures.inc(summary.failed)
        metrics.rollover_unknown_zones.inc(summary.unknown_zones)
        metrics.rollover_seconds.observe(summary.seconds)
        for effect, n in summary.effects.items():
            metrics.rollover_streak_effects.labels(effect=effect.value).inc(n)
    return summary


def _lock_not_available(exc: BaseException) -> bool:
    """A statement gave up waiting for a row another transaction holds (`lock_timeout`)."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) == "55P03"


def _close_batch_or_each(
    connection: sa.Connection,
    users: Sequence[db.ClaimedUser],
    *,
    now: dt.datetime,
    threshold: int,
    rules: FreezeRules,
    links: AppLinks,
    should_stop: Callable[[], bool],
) -> SweepSummary:
    """Close the batch in one go; if a row breaks it, or another transaction holds one, close
    its users one by one instead: the broken user fails alone, the held one waits for a later
    pass."""
    try:
        with connection.begin_nested():
            return close_batch(
                connection,
                users,
                now=now,
                default_threshold=threshold,
                freeze_rules=rules,
                links=links,
                should_stop=should_stop,
            )
    except (*_ROW_ERRORS, sa.exc.OperationalError) as exc:
        if isinstance(exc, sa.exc.OperationalError) and not _lock_not_available(exc):
            raise  # the connection is lost: the sweep stops (the next one goes on)
        events.warning(
            "rollover batch failed: closing its users one by one",
            users=len(users),
            error=type(getattr(exc, "orig", None) or exc).__name__,
        )
    summary = SweepSummary()
    for user in users:
        if should_stop():
            summary.stopped = True
            break
        try:
            with connection.begin_nested():
                summary.add(
                    close_batch(
                        connection,
                        [user],
                        now=now,
                        default_threshold=threshold,
                        freeze_rules=rules,
                        links=links,
                    )
                )
        except (*_ROW_ERRORS, sa.exc.OperationalError) as exc:
            if isinstance(exc, sa.exc.OperationalError):
                if not _lock_not_available(exc):
                    raise
                summary.held.add(user.id)
                continue
            events.error(
                "rollover of a user failed",
                user_id=str(user.id),
                retry_in_seconds=RETRY_AFTER_FAILURE.total_seconds(),
                error=str(exc),
            )
            db.mark_failed(connection, user.id, error=str(exc), retry_at=now + RETRY_AFTER_FAILURE)
            summary.failed += 1
    return summary


def close_batch(
    connection: sa.Connection,
    users: Sequence[db.ClaimedUser],
    *,
    now: dt.datetime,
    default_threshold: int,
    freeze_rules: FreezeRules = DEFAULT_FREEZE_RULES,
    links: AppLinks = NO_LINKS,
    max_days: int = MAX_DAYS_PER_CLAIM,
    should_stop: Callable[[], bool] = _never,
) -> SweepSummary:
    """Close the due days of `users` (locked by the caller), oldest first, one day-step at a time.

    Each step closes at most one date per user, so a later date sees what closing the earlier one
    did (carried tasks, reset routines, freezes earned or spent), exactly as if every day had
    been closed on time. Users whose streak row another transaction holds are left out (in the
    summary's `held`); once `should_stop()`, the steps done are kept and the rest left.
    """
    plans: dict[uuid.UUID, DaysToClose] = {
        user.id: days_to_close(
            timezone=user.timezone,
            created_at=user.created_at,
            next_date=user.next_date,
            now=now,
            starts=user.day_starts_at,
            limit=max_days,
        )
        for user in users
    }
    streaks, held = db.read_streaks(connection, [user.id for user in users if plans[user.id].days])
    as_read = dict(streaks)
    users = [user for user in users if user.id not in held]
    closing_users = [user for user in users if plans[user.id].days]
    summary = SweepSummary(held=held)
    steps = max((len(plans[u.id].days) for u in closing_users), default=0)
    closed: list[tuple[uuid.UUID, dt.date]] = []
    done = 0
    while done < steps:
        if done and should_stop():
            summary.stopped = True
            break
        stepping = [user for user in closing_users if len(plans[user.id].days) > done]
        summary.add(
            _close_step(
                connection,
                stepping,
                plans,
                streaks,
                step=done,
                default_threshold=default_threshold,
                rules=freeze_rules,
                links=links,
                closed=closed,
            )
        )
        done += 1
    # Schedules whose period one of these dates ends: their exports start now (or when the
    # user's active export ends), in this transaction.
    exports.start_scheduled(connection, exports.mark_schedules_due(connection, closed))
    # A streak the days left as it was (a day off, a vacation) is not written again.
    db.save_streaks(
        connection,
        {
            user.id: streaks[user.id]
            for user in closing_users
            if user.id in streaks and streaks[user.id] != as_read.get(user.id)
        },
    )
    db.save_progress(
        connection, [_progress(user, plans[user.id], steps_done=done) for user in users]
    )
    # Counted once, in the batch that closes its last due date (a long backfill takes several).
    summary.users = sum(
        1
        for user in closing_users
        if len(plans[user.id].days) <= done and plans[user.id].next_due_at > now
    )
    for user in closing_users:
        if not plans[user.id].zone.valid:
            summary.unknown_zones += 1
            events.warning(
                "unknown time zone: rolled over in UTC",
                user_id=str(user.id),
                timezone=user.timezone,
            )
    return summary


def _progress(user: db.ClaimedUser, plan: DaysToClose, *, steps_done: int) -> db.Progress:
    """Where the user's calendar stands once the first `steps_done` of its days are closed."""
    if len(plan.days) <= steps_done:
        next_date, next_due = plan.next_date, plan.next_due_at
    else:
        next_date = plan.days[steps_done]
        next_due = due_at(next_date, plan.zone, plan.starts)
    return db.Progress(
        user_id=user.id,
        next_date=next_date,
        due_at=next_due,
        zone=user.timezone,
        day_starts_at=plan.starts,
    )


def _close_step(
    connection: sa.Connection,
    users: Sequence[db.ClaimedUser],
    plans: dict[uuid.UUID, DaysToClose],
    streaks: dict[uuid.UUID, Streak],
    *,
    step: int,
    default_threshold: int,
    rules: FreezeRules,
    links: AppLinks,
    closed: list[tuple[uuid.UUID, dt.date]],
) -> SweepSummary:
    """Close one date of each of `users`; the (user, date) pairs closed now are added to
    `closed`."""
    closings = []
    for user in users:
        plan = plans[user.id]
        day = plan.days[step]
        start, end = day_bounds(day, plan.zone, plan.starts)
        closings.append(
            db.Closing(user_id=user.id, day=day, start=start, end=end, carry_over=user.carry_over)
        )
    contents = db.begin_closing(connection, closings)
    empty = db.DayContents()
    records = []
    after: dict[uuid.UUID, tuple[Streak, StreakEffect]] = {}
    for user, closing in zip(users, closings, strict=True):
        held = contents.get(user.id, empty)
        threshold = effective_threshold(user.streak_threshold, default_threshold)
        after[user.id] = streaks.get(user.id, Streak()).after(
            closing.day,
            met=meets_goal(held.completed, held.total, threshold),
            protection=user.protection,
            rules=rules,
        )
        records.append(
            db.DayRecord(
                user_id=user.id,
                day=closing.day,
                completed=held.completed,
                total=held.total,
                score=score(held.completed, held.total),
                threshold=threshold,
                streak_effect=after[user.id][1].value,
            )
        )
    recorded = db.record_days(connection, records)
    summary = SweepSummary(user_days=len(recorded))
    notices = []
    for record in records:
        if record.user_id not in recorded:
            continue  # its row was there already: the streak moved when it was written
        closed.append((record.user_id, record.day))
        streak, effect = after[record.user_id]
        streaks[record.user_id] = streak
        summary.effects[effect] += 1
        if effect is StreakEffect.FREEZE:
            notices.append(
                NewNotification(
                    user_id=record.user_id,
                    payload=links.shown(freeze_notice(record.day, streak), path="/streak"),
                    urgency="low",
                    topic="streak-freeze",
                    dedupe_key=f"planner-streak-freeze-{record.day.isoformat()}",
                )
            )
    notifications.enqueue(connection, notices, source="rollover")  # the one way in
    db.move_unfinished(
        connection,
        [
            closing
            for closing in closings
            if closing.user_id in recorded
            and contents.get(closing.user_id, empty).unfinished
            and carried_to(closing.carry_over, done=False) is not None
        ],
    )
    return summary


def count_users_with_work(engine: Engine, *, now: dt.datetime) -> int:
    """How many users a sweep at `now` has to visit (a progress bar's length)."""
    with engine.connect() as connection:
        return db.count_users_with_work(connection, now=now)
