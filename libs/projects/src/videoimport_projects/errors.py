"""What the registry refuses, in terms an operator can act on."""

from __future__ import annotations


class ProjectExists(Exception):
    pass


class UnknownProject(Exception):
    pass


class UnknownToken(Exception):
    """No token has this id (or the id matches more than one: give more of it)."""
