"""The error tree: one root, `LitMemoryError`, so callers catch one type on every backend.

Each subclass also inherits the builtin it resembles (`ValueError`, `LookupError`, ...), so
code written against the builtins keeps working. Drivers' errors are translated with
``raise ... from exc``; the original stays on ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "LitMemoryError",
    "InvalidInputError",
    "ConversationNotFound",
    "ConversationExistsError",
    "PhaseTransitionError",
    "StorageError",
    "StorageBusyError",
    "StorageFullError",
    "StorageReadOnlyError",
    "StorageCorruptError",
    "StorageConnectionError",
    "SchemaVersionError",
    "ConfigurationError",
    "SyncInAsyncContextError",
]


class LitMemoryError(Exception):
    """Root of every error lit-memory raises."""


class InvalidInputError(LitMemoryError, ValueError):
    """An argument was refused before anything was written."""


class ConversationNotFound(LitMemoryError, LookupError):
    """The conversation does not exist (or is not visible to this store's owner)."""


class ConversationExistsError(LitMemoryError, ValueError):
    """The conversation already exists (and replacing it was not asked for)."""

    def __init__(self, message: str, *, conversation_id: str) -> None:
        super().__init__(message)
        self.conversation_id = conversation_id


class PhaseTransitionError(LitMemoryError, ValueError):
    """The phase flow forbids this transition."""

    def __init__(self, message: str, *, from_phase: str, to_phase: str) -> None:
        super().__init__(message)
        self.from_phase = from_phase
        self.to_phase = to_phase


class ConfigurationError(LitMemoryError, ValueError):
    """The store was given a URL, path or option it cannot use."""


class StorageError(LitMemoryError, OSError):
    """The database failed; the operation was not applied."""


class StorageBusyError(StorageError, TimeoutError):
    """The database stayed locked by another writer past the busy timeout."""


class StorageFullError(StorageError):
    """The disk or the database's size limit is full."""


class StorageReadOnlyError(StorageError, PermissionError):
    """The database cannot be written (read-only file, directory or role)."""


class StorageCorruptError(StorageError):
    """The database file is not a usable database."""


class StorageConnectionError(StorageError, ConnectionError):
    """The connection to the database server was lost or refused."""


class SchemaVersionError(StorageError):
    """The database's schema is newer than this lit-memory understands."""


class SyncInAsyncContextError(LitMemoryError, RuntimeError):
    """A sync method was called from inside a running event loop."""
