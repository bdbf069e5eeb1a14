"""Passing many rows to one statement: parallel arrays unnested into a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeEngine


def rows(name: str, **columns: tuple[TypeEngine[Any], Sequence[Any]]) -> sa.TableValuedAlias:
    """`unnest(:a, :b, ...) AS name(a, b, ...)`: a table with a row per index of the lists.

    One statement then handles a whole batch, and the planner knows exactly how many rows come.
    """
    arrays = [
        sa.bindparam(column, list(values), type_=ARRAY(type_))
        for column, (type_, values) in columns.items()
    ]
    return (
        sa.func.unnest(*arrays)
        .table_valued(*(sa.column(column, type_) for column, (type_, _) in columns.items()))
        .render_derived(name=name)
    )
