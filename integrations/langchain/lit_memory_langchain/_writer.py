"""The background writer behind the callback handlers: one thread, one queue, writes in order.

Callbacks fire on whatever thread and event loop LangChain picks (the caller's thread, a tool
thread pool, a fresh loop per event for async handlers). So the handlers never touch the
store from a callback: they put a job on a thread-safe queue and return. One writer thread
takes the jobs in order (those of different keys together) and runs them on the event loop
that owns the store's connections:

- a URL, a path or None: the process's shared `ConversationDB` for that database (see
  `_store.shared_store`; the histories use the same one), whose coroutines run on
  lit-memory's private loop thread;
- a `ConversationDB`: the same loop thread, shared with the caller's own use of the facade;
- an `AsyncConversationDB`: the event loop that was running when the handler was created
  (its connections belong there), reached with ``run_coroutine_threadsafe``.

Every writer still open at interpreter exit is drained and closed before the interpreter
joins its non-daemon threads (aiosqlite's connection threads are such threads).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import threading
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any, TypeVar

from lit_memory import (
    AsyncConversationDB,
    ConfigurationError,
    ConversationDB,
    PhaseFlow,
    StorageConnectionError,
    SyncInAsyncContextError,
)

from ._store import StoreLike, shared_store

__all__ = ["Job", "Prepare", "StoreWriter", "in_running_loop"]

logger = logging.getLogger("lit_memory_langchain")

T = TypeVar("T")
Job = Callable[[AsyncConversationDB], Awaitable[Any]]
"""A unit of work for the writer: a coroutine function of the store."""
Prepare = Callable[[], Job]
"""Builds a job on the writer thread: CPU work (encoding, redaction, parsing) goes here, so
it never runs on the event loop that owns the store."""


_BATCH = 256
_POLL_SECONDS = 0.25
_EXIT_TIMEOUT_SECONDS = 30.0
_MAX_KEPT_FAILURES = 100


def in_running_loop() -> bool:
    """Whether the calling thread is running an event loop (so it must never block)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Runner:
    """Runs the writer's coroutines on the loop that owns the store's connections."""

    def __init__(self, db: StoreLike, flow: PhaseFlow | None) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._facade: ConversationDB | None = None
        self.owned = False
        if isinstance(db, AsyncConversationDB):
            self.db = db
            self._loop = _owner_loop()
            return
        if isinstance(db, ConversationDB):
            self._facade = db
        elif db is None or isinstance(db, (str, os.PathLike)):
            self._facade = shared_store(db)
            if flow is not None and self._facade.async_db.flow != flow:
                # The store enforces its own flow: a different one needs a store of its own.
                self._facade, self.owned = ConversationDB(db, flow=flow), True
        else:
            raise ConfigurationError(
                "db must be an AsyncConversationDB, a ConversationDB, a path or URL, or None "
                f"for the embedded default; got {type(db).__name__}"
            )
        self.db = self._facade.async_db

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The caller's loop that owns the store, or None when the facade's loop does."""
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the owning loop and wait (from the writer thread) for its result."""
        if self._facade is not None:
            return self._facade.submit(coro).result()
        assert self._loop is not None
        if self._loop.is_closed():
            coro.close()
            raise _loop_gone()
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        while True:
            try:
                return future.result(timeout=_POLL_SECONDS)
            except concurrent.futures.CancelledError:
                # asyncio.run() cancels every task when its main coroutine ends.
                raise _loop_gone() from None
            except concurrent.futures.TimeoutError:
                # A loop closed under a scheduled coroutine never runs it: stop waiting.
                if self._loop.is_closed():
                    future.cancel()
                    raise _loop_gone() from None

    def can_drain_at_exit(self) -> bool:
        """Whether queued work can still run (the owning loop is running, or the facade's)."""
        return self._loop is None or self._loop.is_running()

    def close(self) -> None:
        """Close the store if the writer opened it (shared stores close at exit)."""
        if self.owned and self._facade is not None:
            self._facade.close()


def _owner_loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise ConfigurationError(
            "an AsyncConversationDB belongs to the event loop it runs on, and none is running "
            "here: create the handler inside that loop (in your async code), or pass a "
            "ConversationDB, a path or a URL instead"
        ) from None


def _loop_gone() -> StorageConnectionError:
    return StorageConnectionError(
        "the event loop that owns the AsyncConversationDB has ended (or cancelled the write); "
        "`await handler.aclose()` before that loop ends"
    )


class _Item:
    """A queued job; `future` is set when someone waits for it (flush, call, raise_error).

    `key` names what the job writes (a tool run, a conversation's phase): jobs of one key run
    in order, jobs of different keys queued together run at once, so the store commits them
    in one transaction. A job without a key runs alone, after everything queued before it.
    """

    __slots__ = ("prepare", "future", "stop", "key", "done")

    def __init__(
        self,
        prepare: Prepare | None,
        future: concurrent.futures.Future[Any] | None = None,
        *,
        stop: bool = False,
        key: Hashable | None = None,
    ) -> None:
        self.prepare = prepare
        self.future = future
        self.stop = stop
        self.key = key
        self.done = False


class StoreWriter:
    """Applies queued jobs to one store from one thread: the jobs of one key (see `submit`)
    in the order they were submitted, those of different keys queued together at once, so
    the store commits them in one transaction.

    A failed job does not stop the others: it is logged at error level and raised from the
    next `flush` (or from the waiter's future, for a job someone waits for).
    """

    def __init__(self, db: StoreLike, *, name: str, flow: PhaseFlow | None = None) -> None:
        self._runner = _Runner(db, flow)
        self.name = name
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failures: list[BaseException] = []

    @property
    def db(self) -> AsyncConversationDB:
        """The store the jobs receive."""
        return self._runner.db

    @property
    def owner_loop(self) -> asyncio.AbstractEventLoop | None:
        """The caller's event loop that owns the store, if the store was given as async."""
        return self._runner.loop

    def submit(
        self, job: Job, *, wait: bool = False, key: Hashable | None = None
    ) -> concurrent.futures.Future[Any] | None:
        """Queue `job`; with `wait`, return a future of its result instead of reporting errors.

        Jobs of the same `key` are applied in the order submitted; jobs of different keys
        may be applied together. A job without a key waits for every job before it, and the
        jobs after it wait for it.
        """
        return self.submit_prepared(lambda: job, wait=wait, key=key)

    def submit_prepared(
        self, prepare: Prepare, *, wait: bool = False, key: Hashable | None = None
    ) -> concurrent.futures.Future[Any] | None:
        """Queue a job that `prepare` builds on the writer thread; see `submit`."""
        future: concurrent.futures.Future[Any] | None = (
            concurrent.futures.Future() if wait else None
        )
        self._put(_Item(prepare, future, key=key))
        return future

    def call(self, job: Callable[[AsyncConversationDB], Awaitable[T]]) -> T:
        """Run `job` after everything queued so far and return its result (sync callers)."""
        self._refuse_in_loop("call")
        future = self.submit(job, wait=True)
        assert future is not None
        result: T = future.result()
        return result

    async def acall(self, job: Callable[[AsyncConversationDB], Awaitable[T]]) -> T:
        """Run `job` after everything queued so far and return its result, without blocking."""
        future = self.submit(job, wait=True)
        assert future is not None
        result: T = await asyncio.wrap_future(future)
        return result

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every job queued so far is applied; raise the first failure since."""
        self._refuse_in_loop("flush")
        if self._is_running():
            barrier = self._barrier()
            barrier.result(timeout)
        self.raise_failures()

    async def aflush(self) -> None:
        """`flush` for async code: waits without blocking the event loop."""
        if self._is_running():
            await asyncio.wrap_future(self._barrier())
        self.raise_failures()

    def close(self, timeout: float | None = None) -> None:
        """Apply everything queued, close a store the writer opened, stop the thread."""
        self._refuse_in_loop("close")
        done = self._stop()
        if done is not None:
            done.result(timeout)
        self.raise_failures()

    async def aclose(self) -> None:
        """`close` for async code."""
        done = self._stop()
        if done is not None:
            await asyncio.wrap_future(done)
        self.raise_failures()

    def take_failures(self) -> list[BaseException]:
        """The failures not yet reported by `flush`, removed from the writer."""
        with self._lock:
            failures, self._failures = self._failures, []
        return failures

    def raise_failures(self) -> None:
        """Raise the first unreported failure (the others were logged already)."""
        failures = self.take_failures()
        if failures:
            raise failures[0]

    @property
    def pending_failures(self) -> int:
        """How many failures wait to be raised by the next `flush`."""
        return len(self._failures)

    # -- the thread ------------------------------------------------------------------------

    def _put(self, item: _Item) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._start_thread()
            self._queue.put(item)

    def _start_thread(self) -> None:
        # A daemon, so a forgotten handler cannot hang the exit; the exit hook drains it.
        self._thread = threading.Thread(
            target=self._work, name=f"lit-memory-{self.name}", daemon=True
        )
        self._thread.start()
        _LIVE.add(self)

    def _is_running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _barrier(self) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._put(_Item(None, future))
        return future

    def _stop(self) -> concurrent.futures.Future[Any] | None:
        if not self._is_running():
            return None
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._put(_Item(None, future, stop=True))
        return future

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            jobs = [item for item in batch if not item.stop]
            if jobs:
                self._run_batch(jobs)
            stops = [item for item in batch if item.stop]
            if stops:
                self._finish(stops)
                return

    def _next_batch(self) -> list[_Item]:
        batch = [self._queue.get()]
        while len(batch) < _BATCH and not batch[-1].stop:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run_batch(self, items: list[_Item]) -> None:
        jobs = [job for job in map(self._prepare, items) if job is not None]
        try:
            self._runner.run(self._apply(jobs))
        except BaseException as exc:  # the loop failed: so did every job it had not run
            lost = [item for item, _ in jobs if not item.done]
            for item in lost:
                if item.future is not None and not item.future.done():
                    item.future.set_exception(exc)
            self._report(exc, sum(1 for item in lost if item.future is None))

    def _prepare(self, item: _Item) -> tuple[_Item, Job | None] | None:
        if item.prepare is None:  # a barrier: resolved in order with the jobs
            return item, None
        try:
            return item, item.prepare()
        except Exception as exc:
            self._settle(item, exc)
            return None

    async def _apply(self, jobs: list[tuple[_Item, Job | None]]) -> None:
        """Run the jobs: keyed ones together (one chain per key, in order), the others alone.

        Each item is marked done once it has run, so a loop that fails midway fails only
        the jobs it had not run.
        """
        together: dict[Hashable, list[tuple[_Item, Job | None]]] = {}
        for entry in jobs:
            item, job = entry
            if job is not None and item.key is not None:
                together.setdefault(item.key, []).append(entry)
                continue
            await self._run_chains(together)
            together = {}
            await self._run_chain([entry])
        await self._run_chains(together)

    async def _run_chains(self, chains: dict[Hashable, list[tuple[_Item, Job | None]]]) -> None:
        if len(chains) == 1:
            await self._run_chain(next(iter(chains.values())))
        elif chains:
            await asyncio.gather(*map(self._run_chain, chains.values()))

    async def _run_chain(self, chain: list[tuple[_Item, Job | None]]) -> None:
        db = self._runner.db
        for item, job in chain:
            if job is None:
                _resolve(item.future, None)
            else:
                try:
                    result = await job(db)
                except Exception as exc:
                    self._settle(item, exc)
                else:
                    _resolve(item.future, result)
            item.done = True

    def _settle(self, item: _Item, exc: BaseException) -> None:
        if item.future is not None:
            if not item.future.done():
                item.future.set_exception(exc)
            return
        self._report(exc, 1)

    def _report(self, exc: BaseException, events: int) -> None:
        """Log a failure to store `events` queued events; keep it for the next flush."""
        if events == 0:
            return
        what = "an event" if events == 1 else f"{events} events"
        logger.error("lit-memory %s could not store %s: %s", self.name, what, exc, exc_info=exc)
        with self._lock:
            # Bounded: a store that fails for hours must not grow memory; all were logged.
            if len(self._failures) < _MAX_KEPT_FAILURES:
                self._failures.append(exc)

    def _finish(self, stops: list[_Item]) -> None:
        with self._lock:
            _LIVE.discard(self)
            self._thread = None
        error: BaseException | None = None
        try:
            self._runner.close()
        except BaseException as exc:
            error = exc
        for item in stops:
            if error is None:
                _resolve(item.future, None)
            else:
                self._settle(item, error)
        with self._lock:
            # Work queued behind the stop (a late callback) gets a fresh thread.
            if not self._queue.empty() and self._thread is None:
                self._start_thread()

    def _refuse_in_loop(self, name: str) -> None:
        if in_running_loop():
            raise SyncInAsyncContextError(
                f"{name}() waits for the background writer and would block the running event "
                f"loop; use `await a{name}()` instead"
            )

    def drain_at_exit(self) -> None:
        """Apply what is queued and close, unless the loop that owns the store is gone."""
        if not self._runner.can_drain_at_exit():
            logger.error(
                "lit-memory %s: events still queued at exit are lost: the event loop that "
                "owns the store is not running (await handler.aclose() before it ends)",
                self.name,
            )
            return
        done = self._stop()
        if done is not None:
            done.result(_EXIT_TIMEOUT_SECONDS)
        for failure in self.take_failures():
            logger.error("lit-memory %s: an event was not stored: %s", self.name, failure)


def _resolve(future: concurrent.futures.Future[Any] | None, result: Any) -> None:
    if future is not None and not future.done():
        future.set_result(result)


_LIVE: set[StoreWriter] = set()


def _drain_all_at_exit() -> None:
    for writer in list(_LIVE):
        try:
            writer.drain_at_exit()
        except Exception:
            logger.exception("lit-memory %s: draining at exit failed", writer.name)


# Registered after lit_memory.sync's hook, so it runs before it (they run in reverse order):
# the writers drain into the facades before the facades close, and both happen before the
# interpreter joins the non-daemon aiosqlite threads, which plain atexit runs too late for.
_register = getattr(threading, "_register_atexit", None)
if _register is not None:
    _register(_drain_all_at_exit)
else:  # pragma: no cover - every supported Python has it
    import atexit

    atexit.register(_drain_all_at_exit)
