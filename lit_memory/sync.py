"""`ConversationDB`: the sync facade over `AsyncConversationDB`.

Every sync method runs the async method of the same name on one private event-loop thread
shared by all facades of the process; no method body is written twice. Called from inside a
running event loop, a sync method raises `SyncInAsyncContextError` naming the async method
(waiting there would deadlock the loop). Open facades are closed before the interpreter
joins its threads at exit, so a forgotten `close()` cannot hang the exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import os
import threading
import weakref
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from ._exit import at_exit
from .errors import SyncInAsyncContextError
from .store import AsyncConversationDB

__all__ = ["ConversationDB", "run_sync"]

T = TypeVar("T")


class _LoopThread:
    """One daemon thread running an event loop, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="lit-memory-loop", daemon=True
                )
                thread.start()
                self._loop = loop
            return self._loop


_LOOP = _LoopThread()
_OPEN: weakref.WeakSet[ConversationDB] = weakref.WeakSet()


def run_sync(coro: Coroutine[Any, Any, T], *, name: str = "this method") -> T:
    """Run `coro` on the private loop thread and wait for its result.

    Raises SyncInAsyncContextError when called from a thread that runs an event loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run_coroutine_threadsafe(coro, _LOOP.loop()).result()
    coro.close()
    raise SyncInAsyncContextError(
        f"{name}() is sync and was called inside a running event loop, where waiting would "
        f"block it; use the async API instead: `await AsyncConversationDB.{name}(...)`"
    )


def _close_open_facades() -> None:
    for db in list(_OPEN):
        try:
            db.close()
        except Exception:  # noqa: S110 - at exit there is no caller left to tell
            pass


at_exit(_close_open_facades, order=10)


def _sync_method(name: str) -> Callable[..., Any]:
    async_method = getattr(AsyncConversationDB, name)

    @functools.wraps(async_method)
    def method(self: ConversationDB, *args: Any, **kwargs: Any) -> Any:
        _OPEN.add(self)
        return run_sync(getattr(self._db, name)(*args, **kwargs), name=name)

    return method


class ConversationDB:
    """The store for sync code: the same methods as `AsyncConversationDB`, without `await`.

    Safe to share between threads: calls from many threads are served by one event loop,
    and their writes are committed together.
    """

    def __init__(self, path_or_url: str | os.PathLike[str] | None = None, **options: Any) -> None:
        self._db = AsyncConversationDB(path_or_url, **options)

    def for_owner(self, owner: str) -> ConversationDB:
        """A view limited to `owner`'s conversations (see `AsyncConversationDB.for_owner`)."""
        view = object.__new__(ConversationDB)
        view._db = self._db.for_owner(owner)
        return view

    @property
    def async_db(self) -> AsyncConversationDB:
        """The async store behind this facade (use it only on the facade's loop)."""
        return self._db

    def __enter__(self) -> ConversationDB:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Wait for queued writes, then close every connection (idempotent)."""
        _OPEN.discard(self)
        run_sync(self._db.close(), name="close")

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule a coroutine of `async_db` on the facade's loop thread; return its future.

        Await it from any event loop with ``asyncio.wrap_future`` (no thread is blocked), or
        call ``.result()`` from a thread without one. The facade is then closed at exit.
        """
        _OPEN.add(self)
        return asyncio.run_coroutine_threadsafe(coro, _LOOP.loop())

    # Every other public coroutine of AsyncConversationDB gets a sync twin, made below.
    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"ConversationDB has no attribute {name!r}")


def _public_coroutines() -> list[str]:
    return [
        name
        for name, value in vars(AsyncConversationDB).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(value) and name != "close"
    ]


for _name in _public_coroutines():
    setattr(ConversationDB, _name, _sync_method(_name))
