"""The notifier's one write to ``dead_letters`` beyond ``videoimport_eventlog.deadletters``.

``deadletters.park`` re-parks a letter by its event id; a letter without one
(an undecodable message) that was marked for retry all the same is set back
to ``parked`` here, by its id, so it is not taken again on every pass.
"""

from __future__ import annotations

import asyncpg


async def park_again(conn: asyncpg.Connection, letter_id: int, error: str) -> None:
    await conn.execute(
        "UPDATE dead_letters SET state = 'parked', error = $2, attempts = attempts + 1,"
        " updated_at = now() WHERE id = $1",
        letter_id,
        error[:1000],
    )
