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
    return _unnested(name, arrays, {column: type_ for column, (type_, _) in columns.items()})


def unnest(
    name: str, *, ordinality: str | None = None, **columns: TypeEngine[Any]
) -> sa.TableValuedAlias:
    """The same table for a statement built once; `values()` names the lists to execute it with.
    With `ordinality`, a column of that name numbers the rows from 1, in the lists' order.

    (The parameters cannot be named after the columns: INSERT and UPDATE reserve those names.)
    """
    arrays = [
        sa.bindparam(f"{column}_values", type_=ARRAY(type_)) for column, type_ in columns.items()
    ]
    return _unnested(name, arrays, columns, ordinality=ordinality)


def values(**columns: Sequence[Any]) -> dict[str, list[Any]]:
    """The parameters of an `unnest()` table: each column's list."""
    return {f"{column}_values": list(values) for column, values in columns.items()}


def _unnested(
    name: str,
    arrays: list[sa.BindParameter[Any]],
    types: dict[str, TypeEngine[Any]],
    *,
    ordinality: str | None = None,
) -> sa.TableValuedAlias:
    return (
        sa.func.unnest(*arrays)
        .table_valued(
            *(sa.column(column, type_) for column, type_ in types.items()),
            with_ordinality=ordinality,
        )
        .render_derived(name=name)
    )
