"""The base every event type derives from.

Events are frozen, keyword-only msgspec Structs. On the wire each carries its
type name in the ``type`` field, so a subscriber in any language can dispatch on
it. ``schema_version`` is bumped only by a new, separately named type: changes
to an existing type are additive (new fields with defaults).
"""

from __future__ import annotations

from typing import ClassVar

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    """Base of every event; the tag is the class name."""

    family: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__

    def partition_key(self) -> str:
        """The Kafka key: all events that must stay in order share one key."""
        raise NotImplementedError
