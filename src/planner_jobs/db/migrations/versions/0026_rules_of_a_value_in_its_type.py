"""The rules of a single value move from table CHECK constraints into domains.

PostgreSQL reads a table's CHECK constraints from the catalog's text form and plans them again
at the start of every INSERT or UPDATE statement on the table (`ExecRelCheck()`: a
`stringToNode()` and an `ExecPrepareExpr()` per constraint, cached plans and prepared
statements included); a domain's constraints are read once into the type cache. Counted with
callgrind (PostgreSQL 18, one backend, 2,000 transactions of `bench/commit_cost.py`): the four
checks of `users` cost 102,000 instructions per UPDATE of a user, whatever columns it sets
(16 % of a transaction that updates a user and inserts a row), and the one of `notifications`
38,000 per `planner_notify()` (5 % of its transaction). A domain's rule runs only where a
statement writes a value of it: about 3,000 for the urgency a call writes, nothing for an
UPDATE of a user that sets none of those columns.

So each of these columns takes a domain of its type with the same rule, and the table's CHECK
goes: `users.carry_over` (`planner_carry_over`), `users.days_off` (`planner_days_off`),
`users.streak_threshold` (`planner_streak_threshold`), `users.day_starts_at`
(`planner_day_start`), `notifications.urgency` (`planner_urgency`). A bad value is still refused
with SQLSTATE 23514 (check_violation), the message naming the domain; clients still see the base
type (PostgreSQL describes a domain's column by its base type).

No table is rewritten: one ALTER TABLE changes each column to a domain without constraints (the
same storage) and drops the table's CHECKs; each domain then takes its rule, which checks the
rows there are (under that statement's lock, one read of the table per domain). The partial
index whose predicate reads `day_starts_at` (`ix_users_rollover_unplanned`) is rebuilt.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

# A rule of one value: its column, the column's type, the domain, the domain's rule, and the
# table's CHECK it replaces (name, expression). Migration 0027 moves its own with the same steps.
Rule = tuple[str, str, str, str, tuple[str, str]]

_RULES: dict[str, tuple[Rule, ...]] = {
    "users": (
        (
            "carry_over",
            "text",
            "planner_carry_over",
            "VALUE IN ('next_day', 'inbox', 'none')",
            ("ck_users_carry_over_mode", "carry_over IN ('next_day', 'inbox', 'none')"),
        ),
        (
            "days_off",
            "smallint",
            "planner_days_off",
            "VALUE BETWEEN 0 AND 127",
            ("ck_users_days_off_mask", "days_off BETWEEN 0 AND 127"),
        ),
        (
            "streak_threshold",
            "smallint",
            "planner_streak_threshold",
            "VALUE BETWEEN 1 AND 100",
            ("ck_users_streak_threshold_percent", "streak_threshold BETWEEN 1 AND 100"),
        ),
        (
            "day_starts_at",
            "time",
            "planner_day_start",
            "VALUE < '12:00'",
            ("ck_users_day_starts_before_noon", "day_starts_at < '12:00'"),
        ),
    ),
    "notifications": (
        (
            "urgency",
            "text",
            "planner_urgency",
            "VALUE IN ('very-low', 'low', 'normal', 'high')",
            ("ck_notifications_urgency", "urgency IN ('very-low', 'low', 'normal', 'high')"),
        ),
    ),
}


def to_domains(table: str, rules: tuple[Rule, ...]) -> None:
    """Each column of `rules` takes its domain, whose rule then checks the rows; the table's
    CHECKs go. No rewrite: the domains have no rule yet when the columns change."""
    for _, base, domain, _, _ in rules:
        op.execute(f"CREATE DOMAIN {domain} AS {base}")
    op.execute(
        f"ALTER TABLE {table} "
        + ", ".join(
            f"ALTER COLUMN {column} TYPE {domain}, DROP CONSTRAINT {check}"
            for column, _, domain, _, (check, _) in rules
        )
    )
    for _, _, domain, rule, _ in rules:
        op.execute(f"ALTER DOMAIN {domain} ADD CONSTRAINT {domain}_check CHECK ({rule})")


def to_checks(table: str, rules: tuple[Rule, ...]) -> None:
    """The columns of `rules` back to their types, with the table's CHECKs; the domains go."""
    op.execute(
        f"ALTER TABLE {table} "
        + ", ".join(
            f"ALTER COLUMN {column} TYPE {base}, ADD CONSTRAINT {check} CHECK ({expression})"
            for column, base, _, _, (check, expression) in rules
        )
    )
    for _, _, domain, _, _ in rules:
        op.execute(f"DROP DOMAIN {domain}")


def upgrade() -> None:
    for table, rules in _RULES.items():
        to_domains(table, rules)


def downgrade() -> None:
    for table, rules in _RULES.items():
        to_checks(table, rules)
