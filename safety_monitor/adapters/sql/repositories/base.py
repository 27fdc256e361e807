"""Owns what the SQL repositories share: batch reads by key, idempotent batch writes, date and UTC conversions."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, Text, TextClause, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from safety_monitor.domain.dates import PartialDate

if TYPE_CHECKING:
    from safety_monitor.adapters.sql.unit_of_work import SqlUnitOfWork


_CHUNK = 500  # keys per look-up: one IN (...) list of bound values, or one array (JSON on SQLite) per statement


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# SQLite only: how a write statement of a given shape goes to the driver: its SQL text, the parameter names in
# order and each one's bind processing (see SqlRepository._write_many).
_DriverForm = tuple[str, Callable[[dict[str, Any]], Any], tuple[tuple[int, Callable[[Any], Any]], ...]]
_DRIVER_FORMS: dict[tuple[Any, ...], _DriverForm | None] = {}


def date_text(value: PartialDate | None) -> str | None:
    return value.text if value is not None else None


def parse_date(value: str | None) -> PartialDate | None:
    return PartialDate.parse(value) if value else None


def key_condition(
    table: Table, columns: tuple[str, ...], keys: Sequence[tuple[Any, ...]], dialect: str = "sqlite"
) -> tuple[ColumnElement[bool] | TextClause, dict[str, Any]]:
    """A WHERE clause matching exactly the rows whose `columns` equal one of `keys`, and its bound values.

    A key of several columns is a row value compared with a list of keys bound as one value:
    `(a, b) IN (SELECT json_extract(value, '$[0]'), ... FROM json_each(:keys))` on SQLite, `(a, b) IN (SELECT * FROM
    unnest(:k0, :k1))` on PostgreSQL. Both plan it as one index search per key (SQLite: a LIST SUBQUERY probing
    the index; PostgreSQL: a semi-join). One IN list per column would also use the index, but it matches the cross
    product of the lists (every AE numbered 3 of every subject in the batch), a read that grows with each subject's
    history: at 200,000 messages it cost 100 ms per 500 AE keys, against 4.5 ms for a key-by-key search. SQLite
    does not use an index for a row-value `(a, b) IN (VALUES ...)` at all. The keys go as one bound value, not as
    one parameter each: with an OR of one term per key (SQLite's form before), SQLAlchemy walked, and converted,
    the 1,024 parameters of every statement, which cost the pipeline more than SQLite's own search. The clause's
    text depends only on the table and the columns, so it is built once per shape. Every key column is text.

    On PostgreSQL, planning an OR of 256 terms afresh for each statement (prepared statements are not cached, see
    database.py) cost the server more than the rest of a replay of 50,000 messages (1,162 against 1,359 msg/s).
    """
    if len(columns) == 1:
        return table.c[columns[0]].in_([key[0] for key in keys]), {}
    if dialect == "postgresql":
        return _key_arrays(table, columns), {f"k{j}": [key[j] for key in keys] for j in range(len(columns))}
    return _key_json(table, columns), {"keys": json.dumps([list(key) for key in keys], ensure_ascii=False)}


@functools.cache
def _key_arrays(table: Table, columns: tuple[str, ...]) -> TextClause:
    # Only names of this schema's own tables and columns enter the text (table.c[...] refuses any other); the
    # keys are bound values.
    names = ", ".join(f"{table.name}.{table.c[name].name}" for name in columns)
    arrays = ", ".join(f"CAST(:k{j} AS TEXT[])" for j in range(len(columns)))
    clause = text(f"({names}) IN (SELECT * FROM unnest({arrays}))")  # noqa: S608 (see above)
    return clause.bindparams(*(bindparam(f"k{j}", type_=ARRAY(Text)) for j in range(len(columns))))


@functools.cache
def _key_json(table: Table, columns: tuple[str, ...]) -> TextClause:
    # As in _key_arrays, only this schema's own names enter the text; the keys are one bound JSON array of arrays.
    names = ", ".join(f"{table.name}.{table.c[name].name}" for name in columns)
    # json_extract, not `->>`, which needs SQLite 3.38; both give a string element as SQL text.
    picks = ", ".join(f"json_extract(value, '$[{j}]')" for j in range(len(columns)))
    clause = text(f"({names}) IN (SELECT {picks} FROM json_each(:keys))")  # noqa: S608 (see above)
    return clause.bindparams(bindparam("keys", type_=Text))


class SqlRepository:
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    @property
    def conn(self) -> AsyncConnection:
        return self._uow.connection

    def _insert(self, table: Table) -> Any:
        """A dialect-specific INSERT that supports ON CONFLICT (there is no generic upsert in SQLAlchemy)."""
        if self.conn.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def _select_by_keys(
        self,
        table: Table,
        columns: tuple[str, ...],
        keys: Iterable[tuple[Any, ...]],
        where: Sequence[Any] = (),
        *,
        selected: Sequence[Any] = (),
    ) -> list[Any]:
        """Rows (whole, or the `selected` columns) whose `columns` equal one of `keys`, read in chunks (see
        `key_condition`)."""
        wanted = sorted(set(keys))
        rows: list[Any] = []
        query = select(*selected) if selected else select(table)
        for chunk in chunks(wanted):
            condition, values = key_condition(table, columns, chunk, self.conn.dialect.name)
            rows.extend(await self.conn.execute(query.where(condition, *where), values))
        return rows

    async def _insert_ignore(self, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
        if rows:
            statement = self._insert(table).on_conflict_do_nothing(index_elements=keys)
            await self._write_many(("insert_ignore", *keys), statement, table, rows)

    async def _upsert(self, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
        if not rows:
            return
        statement = self._insert(table)
        changing = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
        statement = statement.on_conflict_do_update(index_elements=keys, set_=changing)
        await self._write_many(("upsert", *keys), statement, table, rows)

    async def _write_many(
        self, shape: tuple[str, ...], statement: Any, table: Table, rows: list[dict[str, Any]]
    ) -> None:
        """Execute a write of many rows whose statement depends only on `shape`, the table and the rows' keys.

        On SQLite the rows go to the driver as tuples converted here by each column's own bind processing, so the
        stored values are those SQLAlchemy would store, without its generic per-row parameter handling, which
        costs as much as SQLite's own work on the wide rows of a batch (bench/bench_replay.py, embedded runtime).
        """
        dialect = self.conn.dialect
        if dialect.name != "sqlite":
            await self.conn.execute(statement, rows)
            return
        columns = tuple(rows[0])
        key = (dialect.paramstyle, table.name, *shape, columns)
        if key not in _DRIVER_FORMS:
            compiled = statement.compile(dialect=dialect, column_keys=list(columns))
            names = tuple(compiled.positiontup or ())
            _DRIVER_FORMS[key] = None  # bound values other than the rows' columns: SQLAlchemy binds them
            if dialect.paramstyle == "qmark" and len(names) > 1 and sorted(names) == sorted(columns):
                processors = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
                processed = tuple((i, p) for i, p in enumerate(processors) if p is not None)
                _DRIVER_FORMS[key] = (str(compiled), itemgetter(*names), processed)
        form = _DRIVER_FORMS[key]
        if form is None:
            await self.conn.execute(statement, rows)
            return
        sql, values_of, processed = form
        # A value object shared by many rows (the batch's time, the same grades) is converted once.
        converted: dict[int, Any] = {}
        parameters = []
        for row in rows:
            values = list(values_of(row))
            for i, process in processed:
                value = values[i]
                if id(value) not in converted:  # the rows keep every value alive: ids are not reused meanwhile
                    converted[id(value)] = process(value)
                values[i] = converted[id(value)]
            parameters.append(tuple(values))
        await self.conn.exec_driver_sql(sql, parameters)


def aggregated_utc(value: datetime | str) -> datetime:
    """A timestamp read through an aggregate (MIN/MAX), which loses the column type: SQLite hands back the stored
    text of a UTC instant, without its offset."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # snapshots in JSON columns keep ISO strings
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC)
