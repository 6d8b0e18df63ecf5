"""A rebuild's shadow copies of the read model, compared with and copied into the live
tables (SQL only; when to do what is ``rebuild``'s business).

The copies are TEMPORARY tables ``LIKE`` the live ones (same columns, defaults,
constraints and indexes): private to the rebuild's session, so no reader ever sees
them and two rebuilds never collide; not written to the WAL; and gone with the
session if the rebuild dies, so nothing is left behind to clean up.

Columns and primary keys are read from the catalog, so a column a later migration
adds is compared and copied without a change here. ``json`` has no equality
operator: such columns are compared as ``jsonb`` (the same document, whatever its
key order or spacing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from videoimport_projector.adapters.readmodel import LIVE, Tables
from videoimport_projector.differences import (
    DIFFERS,
    ONLY_LIVE,
    ONLY_REBUILT,
    Row,
    TableDifferences,
)

_SUFFIX = "_rebuild"


@dataclass(frozen=True)
class Layout:
    """A table's columns in order, its primary key, and the columns of type ``json``."""

    columns: tuple[str, ...]
    key: tuple[str, ...]
    json: frozenset[str]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _bare(table: str) -> str:
    return table.rpartition(".")[2]


async def create(conn: asyncpg.Connection, live: Tables = LIVE) -> Tables:
    """Empty temporary copies of ``live``; returns their (``pg_temp.``-qualified) names."""
    copies = Tables(*(f"pg_temp.{_bare(name)}{_SUFFIX}" for name in live.names()))
    for source, copy in zip(live.names(), copies.names(), strict=True):
        await conn.execute(f"DROP TABLE IF EXISTS {copy}")
        await conn.execute(f"CREATE TEMPORARY TABLE {_bare(copy)} (LIKE {source} INCLUDING ALL)")
    return copies


async def analyze(conn: asyncpg.Connection, copies: Tables) -> None:
    """Statistics for the comparison's join: autovacuum never visits temporary tables."""
    for copy in copies.names():
        await conn.execute(f"ANALYZE {copy}")


async def drop(conn: asyncpg.Connection, copies: Tables) -> None:
    for copy in copies.names():
        await conn.execute(f"DROP TABLE IF EXISTS {copy}")


async def layout(conn: asyncpg.Connection, table: str) -> Layout:
    columns = await conn.fetch(
        "SELECT attname, atttypid = 'json'::regtype AS is_json FROM pg_attribute"
        " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        table,
    )
    key = await conn.fetch(
        "SELECT a.attname FROM pg_index i"
        " CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.n",
        table,
    )
    if not key:
        raise LookupError(f"{table} has no primary key to compare rows by")
    return Layout(
        columns=tuple(r["attname"] for r in columns),
        key=tuple(r["attname"] for r in key),
        json=frozenset(r["attname"] for r in columns if r["is_json"]),
    )


def _same_key(shape: Layout, a: str, b: str) -> str:
    return " AND ".join(f"{a}.{_ident(c)} = {b}.{_ident(c)}" for c in shape.key)


def _same_row(shape: Layout, a: str, b: str) -> str:
    def values(alias: str) -> str:
        return ", ".join(
            f"{alias}.{_ident(c)}" + ("::jsonb" if c in shape.json else "") for c in shape.columns
        )

    return f"ROW({values(a)}) IS NOT DISTINCT FROM ROW({values(b)})"


async def differences(
    conn: asyncpg.Connection, live: str, copy: str, sample: int
) -> TableDifferences:
    """The rows of ``live`` and ``copy`` that differ, compared by primary key: how
    many of each kind (``only live``, ``only rebuilt``, ``differs``), and up to
    ``sample`` (at least 1) of each as column → value (JSON types)."""
    shape = await layout(conn, live)
    first = _ident(shape.key[0])
    keys = ", ".join(f"coalesce(l.{_ident(c)}, s.{_ident(c)})" for c in shape.key)
    rows = await conn.fetch(
        "WITH d AS ("
        f"  SELECT CASE WHEN s.{first} IS NULL THEN '{ONLY_LIVE}'"
        f"   WHEN l.{first} IS NULL THEN '{ONLY_REBUILT}' ELSE '{DIFFERS}' END AS kind,"
        f"   l AS live_row, s AS rebuilt_row, ROW({keys}) AS key"
        f"  FROM {live} l FULL JOIN {copy} s ON {_same_key(shape, 'l', 's')}"
        f"  WHERE NOT ({_same_row(shape, 'l', 's')})"
        "), n AS ("
        "  SELECT d.*, row_number() OVER (PARTITION BY kind ORDER BY key) AS n,"
        "   count(*) OVER (PARTITION BY kind) AS total FROM d"
        ")"
        " SELECT kind, total, to_jsonb(live_row)::text AS live,"
        "  to_jsonb(rebuilt_row)::text AS rebuilt"
        " FROM n WHERE n <= $1 ORDER BY kind, n",
        max(1, sample),
    )
    return TableDifferences(
        table=live,
        key=shape.key,
        counts={r["kind"]: r["total"] for r in rows},
        rows=tuple(
            Row(
                kind=r["kind"],
                live=_decoded(r["live"]),
                rebuilt=_decoded(r["rebuilt"]),
            )
            for r in rows
        ),
    )


def _decoded(document: str | None) -> dict[str, Any] | None:
    return None if document is None else dict(json.loads(document))


def _count(status: str) -> int:
    # asyncpg returns the command tag: "DELETE 3", "INSERT 0 5".
    return int(status.rpartition(" ")[2] or 0)


async def copy_into(conn: asyncpg.Connection, copy: str, live: str) -> int:
    """Make ``live`` equal to ``copy`` in the caller's transaction; returns the rows
    written. Only rows that differ are touched: a rebuild of a sound projection
    writes nothing, readers never wait (row versions, not table locks), and the
    table keeps its name, indexes, constraints, grants and statistics."""
    shape = await layout(conn, live)
    columns = ", ".join(_ident(c) for c in shape.columns)
    key = ", ".join(_ident(c) for c in shape.key)
    others = [c for c in shape.columns if c not in shape.key]
    update = (
        "DO UPDATE SET " + ", ".join(f"{_ident(c)} = EXCLUDED.{_ident(c)}" for c in others)
        if others
        else "DO NOTHING"
    )
    deleted = await conn.execute(
        f"DELETE FROM {live} l WHERE NOT EXISTS"
        f" (SELECT 1 FROM {copy} s WHERE {_same_key(shape, 'l', 's')})"
    )
    written = await conn.execute(
        f"INSERT INTO {live} ({columns}) SELECT {columns} FROM {copy} s WHERE NOT EXISTS"
        f" (SELECT 1 FROM {live} l WHERE {_same_key(shape, 'l', 's')}"
        f" AND {_same_row(shape, 'l', 's')})"
        f" ON CONFLICT ({key}) {update}"
    )
    return _count(deleted) + _count(written)
