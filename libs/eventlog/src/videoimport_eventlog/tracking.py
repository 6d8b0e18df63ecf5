"""Consumer bookkeeping that commits in the same transaction as the effect.

``tracking`` holds how far a log reader (projector, relay) has got; ``inbox``
remembers which Kafka messages a consumer has already turned into effects, so a
redelivered message changes nothing.
"""

from __future__ import annotations

import asyncpg


async def position_of(conn: asyncpg.Connection, name: str) -> int:
    value: int | None = await conn.fetchval("SELECT position FROM tracking WHERE name = $1", name)
    return value or 0


async def lock_position(conn: asyncpg.Connection, name: str) -> int:
    """Read the position and hold its row until the transaction ends.

    A second instance of the same reader blocks here, so two never apply the
    same events at once.
    """
    lock = "SELECT position FROM tracking WHERE name = $1 FOR UPDATE"
    value: int | None = await conn.fetchval(lock, name)
    if value is None:  # the reader's first batch ever
        await conn.execute(
            "INSERT INTO tracking (name, position) VALUES ($1, 0) ON CONFLICT DO NOTHING", name
        )
        value = await conn.fetchval(lock, name)
    assert value is not None
    return value


async def save_position(conn: asyncpg.Connection, name: str, position: int) -> None:
    await conn.execute(
        "INSERT INTO tracking (name, position) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
        name,
        position,
    )


async def claim_message(conn: asyncpg.Connection, consumer: str, message_id: str) -> bool:
    """Record the message as handled; False when it already was (a redelivery)."""
    inserted = await conn.fetchval(
        "INSERT INTO inbox (consumer, message_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        message_id,
    )
    return bool(inserted)


async def was_handled(conn: asyncpg.Connection, consumer: str, message_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM inbox WHERE consumer = $1 AND message_id = $2",
            consumer,
            message_id,
        )
    )
