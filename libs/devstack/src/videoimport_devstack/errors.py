"""Exceptions raised by the local stack."""

from __future__ import annotations


class DevStackError(RuntimeError):
    """Base class: something about the local stack went wrong."""


class InstallError(DevStackError):
    """A server's binaries or packages could not be installed."""


class ServerStartError(DevStackError):
    """A server did not become ready; the message carries the tail of its log."""

    def __init__(self, server: str, reason: str, log_tail: str = "") -> None:
        message = f"{server} failed to start: {reason}"
        if log_tail:
            message += f"\n--- last lines of the {server} log ---\n{log_tail}"
        super().__init__(message)
        self.server = server
        self.reason = reason
        self.log_tail = log_tail


class StackNotRunningError(DevStackError):
    """There is no running local stack for the given data dir."""


class StartCancelledError(ServerStartError):
    """A server stopped waiting because another server of the stack failed."""
