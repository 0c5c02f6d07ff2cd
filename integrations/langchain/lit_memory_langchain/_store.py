"""Reaching a lit-memory store from sync code, threads and any event loop.

The adapter's objects take a ``db`` argument: an `AsyncConversationDB`, a `ConversationDB`, a
path or URL, or None for the embedded default. Paths and URLs share one `ConversationDB` per
database and process, because `RunnableWithMessageHistory` builds a history per turn and each
store owns connections; the sync facade closes those at interpreter exit.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, Union

from lit_memory import (
    AsyncConversationDB,
    ConfigurationError,
    ConversationDB,
    SyncInAsyncContextError,
)
from lit_memory.backends import resolve_url

__all__ = ["StoreLike", "StoreRef", "close_shared_stores", "shared_store"]

T = TypeVar("T")

StoreLike = Union[AsyncConversationDB, ConversationDB, str, "os.PathLike[str]", None]
"""What a ``db`` argument may be: a store, a path or URL, or None for the embedded default."""

Operation = Callable[[AsyncConversationDB], Coroutine[Any, Any, T]]

_SHARED: dict[str, ConversationDB] = {}
_SHARED_LOCK = threading.Lock()


def _shared_key(path_or_url: str | os.PathLike[str] | None) -> str:
    scheme, target = resolve_url(path_or_url)
    if scheme == "sqlite" and target != ":memory:":
        return os.path.abspath(target)
    return target


def shared_store(path_or_url: str | os.PathLike[str] | None = None) -> ConversationDB:
    """The process's one `ConversationDB` for a path or URL (None: the embedded default).

    Building it does no I/O; it connects on first use.
    """
    key = _shared_key(path_or_url)
    with _SHARED_LOCK:
        store = _SHARED.get(key)
        if store is None:
            store = _SHARED[key] = ConversationDB(key)
        return store


def close_shared_stores() -> None:
    """Close the stores opened for paths and URLs (they reopen on next use).

    Call it from sync code, e.g. before forking or at the end of a test; stores still open
    at interpreter exit are closed then anyway.
    """
    with _SHARED_LOCK:
        stores = list(_SHARED.values())
        _SHARED.clear()
    for store in stores:
        store.close()


class StoreRef:
    """One store, reached natively from async code and through the sync facade otherwise.

    With an `owner`, every operation goes through the store's view for that owner: another
    owner's conversations look missing, and new ones belong to `owner`.
    """

    __slots__ = ("_db", "_facade")

    def __init__(self, db: StoreLike, *, owner: str | None = None) -> None:
        self._facade: ConversationDB | None = None
        if isinstance(db, AsyncConversationDB):
            target = db
        elif isinstance(db, ConversationDB):
            self._facade, target = db, db.async_db
        elif db is None or isinstance(db, (str, os.PathLike)):
            self._facade = shared_store(db)
            target = self._facade.async_db
        else:
            raise ConfigurationError(
                "db must be an AsyncConversationDB, a ConversationDB, a path or URL, or None "
                f"for the embedded default; got {type(db).__name__}"
            )
        # The view shares the store's connections; the facade (not a facade view) runs it,
        # so the facade is the one registered for closing at exit.
        self._db = target if owner is None else target.for_owner(owner)

    async def arun(self, operation: Operation[T]) -> T:
        """Await `operation` on the store from any event loop, without a thread pool."""
        if self._facade is None:
            return await operation(self._db)
        # The facade's store lives on its private loop: run there, await from here.
        future = self._facade.submit(operation(self._db))
        return await asyncio.wrap_future(future)

    def run(self, operation: Operation[T], *, async_name: str) -> T:
        """Run `operation` from sync code or a thread, waiting for its result.

        Raises `SyncInAsyncContextError` naming `async_name` (the async method to use
        instead, e.g. ``"history.aget_messages"``) inside a running event loop.
        """
        if self._facade is None:
            raise ConfigurationError(
                "this object was given an AsyncConversationDB, whose connections belong to "
                f"its event loop: use `await {async_name}(...)`, or give a ConversationDB "
                "or a path/URL to use the sync methods"
            )
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._facade.submit(operation(self._db)).result()
        raise SyncInAsyncContextError(
            "a sync method was called inside a running event loop, where waiting would block "
            f"it; use `await {async_name}(...)` instead"
        )
