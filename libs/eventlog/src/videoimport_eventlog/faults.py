"""Tell an outage (wait it out) from a fault of one message (count it, then isolate).

A database or broker that is away fails every message alike; isolating them all
would park the whole stream, so outages are retried with capped backoff and do
not count against a message. Everything else counts, and a message that keeps
failing is isolated after ``RetryPolicy.attempts``.
"""

from __future__ import annotations

import asyncpg

_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable; also TimeoutError
    asyncpg.InterfaceError,  # the connection closed under us
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionFailureError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.LockNotAvailableError,
)


def is_outage(exc: BaseException) -> bool:
    """True for faults of the infrastructure rather than of the message at hand."""
    # Imported here, not at the top: the operator's dead-letter commands import this
    # module and never touch Kafka; the services that call this have Kafka loaded.
    from aiokafka import errors as kafka_errors

    kafka_outages = (
        kafka_errors.KafkaConnectionError,
        kafka_errors.NodeNotReadyError,
        kafka_errors.KafkaTimeoutError,
    )
    if isinstance(exc, _OUTAGES + kafka_outages):
        return True
    return isinstance(exc, kafka_errors.KafkaError) and bool(getattr(exc, "retriable", False))


def describe(exc: BaseException, limit: int = 1000) -> str:
    """``Type: message``, bounded, for a dead letter or a failure reason."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
