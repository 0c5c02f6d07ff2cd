"""Concurrent writers on real SQLite files: nothing lost, nothing twice, order kept, no lock error.

Every test reads the rows back, through the API and with plain ``sqlite3`` on the file, and
checks each conversation's ``seq`` is exactly 1..n. The failures these tests stand for are the
ones a user sees: a lost or duplicated message, a turn split by another writer, "database is
locked", a deadlock, or a crash when several tasks, threads or processes touch a new file.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import multiprocessing
import random
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import _workers
import aiosqlite.core
import pytest

from lit_memory import (
    AsyncConversationDB,
    ConversationDB,
    LitMemoryError,
    StorageBusyError,
    StorageError,
)

# -- reading the file back ---------------------------------------------------------------------


def raw(path: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows straight from the file, bypassing the store."""
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(query, params).fetchall()


def stored(path: str, conversation_id: str) -> list[str]:
    """The conversation's message contents in seq order, after checking seq is 1..n."""
    rows = raw(
        path,
        "SELECT seq, content FROM messages WHERE conversation_id = ? ORDER BY seq",
        (conversation_id,),
    )
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1)), "seq has gaps or repeats"
    return [content for _, content in rows]


def all_stored(path: str) -> dict[str, list[str]]:
    """Every conversation's contents in seq order (seq checked gap-free for each)."""
    ids = [r[0] for r in raw(path, "SELECT conversation_id FROM conversations")]
    return {cid: stored(path, cid) for cid in ids}


def turn(task: int, index: int, size: int = 3) -> list[dict[str, Any]]:
    """A turn of `size` messages with message ids, in the order the task writes them."""
    roles = ["user", "assistant", "tool"]
    return [
        {"role": roles[j % 3], "content": f"t{task}-{index}-{j}", "uid": f"t{task}-{index}-{j}"}
        for j in range(size)
    ]


def contents(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages]


def positions(order: list[str]) -> dict[str, int]:
    """Content -> position, asserting no content appears twice."""
    where = {content: i for i, content in enumerate(order)}
    assert len(where) == len(order), "a message was stored twice"
    return where


# -- connections left open ---------------------------------------------------------------------


def _connection_threads() -> dict[int, threading.Thread]:
    return {
        t.ident: t
        for t in threading.enumerate()
        if getattr(t, "_target", None) is aiosqlite.core._connection_worker_thread and t.ident
    }


def _stop_leaked(threads: list[threading.Thread]) -> None:
    """Stop connection threads whose connection was dropped unclosed.

    aiosqlite stops such a thread from the connection's ``__del__``, but only after warning;
    under this suite's warnings-as-errors the warning raises first and the non-daemon thread
    is left waiting forever, so the test run would hang at exit instead of failing.
    """
    stop = (None, lambda: aiosqlite.core._STOP_RUNNING_SENTINEL)
    for thread in threads:
        args = getattr(thread, "_args", ())
        if args:
            args[0].put_nowait(stop)
        thread.join(2)


@pytest.fixture(autouse=True)
def _no_stray_connection_threads() -> Iterator[None]:
    """Every test must close what it opens; a leak fails the test instead of hanging the run."""
    before = set(_connection_threads())
    yield
    gc.collect()
    leaked = [t for i, t in _connection_threads().items() if i not in before]
    for thread in leaked:
        thread.join(1)  # a connection closed just now: its thread is finishing
    leaked = [t for t in leaked if t.is_alive()]
    _stop_leaked(leaked)
    assert not leaked, f"{len(leaked)} database connection(s) left open: {leaked}"


@contextmanager
def no_leaked_connections() -> Iterator[None]:
    """Fail if a database connection was dropped unclosed (aiosqlite warns when it is)."""
    before = set(_connection_threads())
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", category=ResourceWarning)
        yield
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    alive = [t for i, t in _connection_threads().items() if i not in before]
    time.sleep(0.1)  # threads of connections closed just now are finishing
    alive = [t for t in alive if t.is_alive()]
    _stop_leaked(alive)
    assert not leaked, leaked
    assert not alive, f"{len(alive)} connection thread(s) left running"


# -- many tasks, one store ---------------------------------------------------------------------


async def test_hundred_tasks_each_own_conversation(tmp_path: Path) -> None:
    """100 tasks write 5 turns each to their own conversation on a store nobody initialized."""
    path = str(tmp_path / "hundred.db")
    turns = 5

    async def task(db: AsyncConversationDB, k: int) -> None:
        assert await db.create_conversation(f"c{k:03d}", {"task": k}) is True
        for index in range(turns):
            assert await db.add_messages(f"c{k:03d}", turn(k, index)) == 3

    async with AsyncConversationDB(path) as db:
        await asyncio.gather(*(task(db, k) for k in range(100)))
        for k in (0, 42, 99):
            messages = await db.get_messages(f"c{k:03d}")
            assert [m.seq for m in messages] == list(range(1, 3 * turns + 1))
            assert [m.uid for m in messages] == [m["uid"] for i in range(turns) for m in turn(k, i)]
        summary = await db.get_conversation_summary("c042")
        assert summary is not None and summary["message_count"] == 3 * turns

    expected = {
        f"c{k:03d}": [c for i in range(turns) for c in contents(turn(k, i))] for k in range(100)
    }
    assert all_stored(path) == expected


async def test_twenty_tasks_one_conversation_keep_commit_order(tmp_path: Path) -> None:
    """20 tasks interleave turns in one conversation: each turn whole, each task's turns in
    order, and a turn that returned before another started is stored before it."""
    path = str(tmp_path / "one.db")
    rng = random.Random(7)
    clock = itertools.count()
    calls: list[tuple[int, int, int, int]] = []  # (task, turn, started, returned)

    async def task(db: AsyncConversationDB, k: int) -> None:
        for index in range(10):
            await asyncio.sleep(rng.random() * 0.002)
            started = next(clock)
            assert await db.add_messages("shared", turn(k, index, size=2)) == 2
            calls.append((k, index, started, next(clock)))

    async with AsyncConversationDB(path) as db:
        assert await db.create_conversation("shared")
        await asyncio.gather(*(task(db, k) for k in range(20)))
        through_api = [m.content for m in await db.get_messages("shared")]

    order = stored(path, "shared")
    assert through_api == order
    assert len(order) == 20 * 10 * 2
    where = positions(order)
    span = {}
    for k, index, _, _ in calls:
        first, second = (where[c] for c in contents(turn(k, index, size=2)))
        assert second == first + 1, f"turn {k}/{index} was split by another writer"
        span[k, index] = (first, second)
    for k in range(20):
        assert [span[k, i][0] for i in range(10)] == sorted(span[k, i][0] for i in range(10))
    for a, b in itertools.permutations(calls, 2):
        if a[3] < b[2]:  # a's write had returned before b's write started
            assert span[a[0], a[1]][1] < span[b[0], b[1]][0], f"{a} committed after {b}"
    # The test only proves something if the writers really interleaved.
    owners = [int(c.split("-")[0][1:]) for c in order]
    assert sum(1 for x, y in itertools.pairwise(owners) if x != y) > 20


async def test_group_commit_batches_concurrent_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 concurrent writes are committed in far fewer transactions, every one stored once."""
    path = str(tmp_path / "batch.db")
    async with AsyncConversationDB(path) as db:
        await db.init_db()
        writer = db.backend._writer  # type: ignore[attr-defined]
        commit = writer._commit
        batches: list[int] = []

        async def counting_commit(batch: list[Any]) -> None:
            batches.append(len(batch))
            await commit(batch)

        monkeypatch.setattr(writer, "_commit", counting_commit)
        results = await asyncio.gather(
            *(db.add_messages(f"c{k % 20}", turn(k, 0, 1), create=True) for k in range(200))
        )
        assert results == [1] * 200
        await writer.wait_idle()
        written = list(batches)  # closing adds one more: indexing the messages for search

    assert sum(written) == 200, "an operation was committed twice or never"
    assert len(written) < 20, f"{len(written)} transactions for 200 concurrent writes"
    rows = all_stored(path)
    assert sorted(c for msgs in rows.values() for c in msgs) == sorted(
        f"t{k}-0-0" for k in range(200)
    )
    for j in range(20):  # each conversation's writes in the order they were submitted
        assert rows[f"c{j}"] == [f"t{k}-0-0" for k in range(j, 200, 20)]


async def test_failing_write_does_not_take_its_batch_down(tmp_path: Path) -> None:
    """One write the database refuses fails alone: the rest of its batch is stored, once."""
    path = str(tmp_path / "poison.db")
    async with AsyncConversationDB(path) as db:
        await db.create_conversation("c")
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.content = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
        )

    def poisoned(k: int) -> list[dict[str, Any]]:
        messages = turn(k, 0)
        messages[1] = {"role": "assistant", "content": "poison"}
        return messages

    async with AsyncConversationDB(path) as db:
        results = await asyncio.gather(
            *(db.add_messages("c", poisoned(k) if k == 13 else turn(k, 0)) for k in range(30)),
            return_exceptions=True,
        )
        error = results.pop(13)
        assert isinstance(error, StorageError) and "poisoned row" in str(error)
        assert results == [3] * 29
        assert await db.add_messages("c", turn(99, 0)) == 3  # the store is still usable

    order = stored(path, "c")
    assert order == [c for k in [*range(30), 99] if k != 13 for c in contents(turn(k, 0))]


async def test_concurrent_retries_of_one_turn_store_it_once(tmp_path: Path) -> None:
    """10 tasks on each of two stores retry the same turn (same uids) at once: stored once."""
    path = str(tmp_path / "retry.db")
    retried = turn(1, 0)
    async with AsyncConversationDB(path) as first, AsyncConversationDB(path) as second:
        await first.create_conversation("c")
        assert await first.add_messages("c", turn(0, 0)) == 3
        counts = await asyncio.gather(
            *(store.add_messages("c", retried) for store in [first, second] * 10)
        )
        assert sum(counts) == 3 and sorted(counts)[-1] == 3
        assert await second.count_messages("c") == 6
        assert [m.uid for m in await second.get_last_messages("c", 3)] == [
            m["uid"] for m in retried
        ]
    assert stored(path, "c") == contents(turn(0, 0)) + contents(retried)


# -- threads and processes ---------------------------------------------------------------------


def test_eight_threads_share_one_sync_facade(tmp_path: Path) -> None:
    """8 threads write 50 messages each to their own and to a shared conversation, starting
    together on a facade nobody initialized."""
    path = str(tmp_path / "threads.db")
    facade = ConversationDB(path)
    barrier = threading.Barrier(8)

    def worker(k: int) -> None:
        barrier.wait(10)
        for i in range(50):
            message = [{"role": "user", "content": f"t{k}-{i}", "uid": f"t{k}-{i}"}]
            assert facade.add_messages(f"own-{k}", message, create=True) == 1
            assert facade.add_messages("shared", message, create=True) == 1

    try:
        with ThreadPoolExecutor(8) as pool:
            for future in [pool.submit(worker, k) for k in range(8)]:
                future.result(timeout=60)
        assert facade.count_messages("shared") == 400
    finally:
        facade.close()

    rows = all_stored(path)
    assert set(rows) == {"shared", *(f"own-{k}" for k in range(8))}
    for k in range(8):
        expected = [f"t{k}-{i}" for i in range(50)]
        assert rows[f"own-{k}"] == expected
        assert [c for c in rows["shared"] if c.startswith(f"t{k}-")] == expected
    assert len(positions(rows["shared"])) == 400


def run_processes(target: Callable[..., None], count: int, *args: Any) -> list[Any]:
    """Start `count` spawned processes on `target`, wait for all; their details, by worker.

    Fails with the child's traceback if any of them raised.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(count)
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, k, barrier, results)) for k in range(count)]
    for proc in procs:
        proc.start()
    try:
        reports = sorted(results.get(timeout=60) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():  # pragma: no cover - only when a child hangs
                proc.kill()
    errors = [detail for _, status, detail in reports if status != "ok"]
    assert not errors, "\n".join(errors)
    assert [proc.exitcode for proc in procs] == [0] * count
    return [detail for _, _, detail in reports]


@pytest.mark.slow
def test_four_processes_write_one_file_at_once(tmp_path: Path) -> None:
    """4 processes each write 100 turns to a shared conversation and to their own, on a file
    none of them created before: no error reaches them, every row once, in each one's order."""
    path = str(tmp_path / "processes.db")
    stored_counts = run_processes(_workers.write_turns, 4, path, 100)
    assert stored_counts == [400] * 4

    rows = all_stored(path)
    assert set(rows) == {_workers.SHARED, *(_workers.own(k) for k in range(4))}
    shared = rows[_workers.SHARED]
    assert len(shared) == 4 * 100 * 2
    where = positions(shared)
    for k in range(4):
        expected = [c for i in range(100) for c in contents(_workers.turn(k, i))]
        assert rows[_workers.own(k)] == expected
        assert [c for c in shared if c.startswith(f"w{k}-")] == expected
        for i in range(100):
            question, answer = contents(_workers.turn(k, i))
            assert where[answer] == where[question] + 1, "a turn was split by another process"


# -- first use ---------------------------------------------------------------------------------


def assert_migrated_once(path: str, latest: int) -> None:
    versions = raw(path, "SELECT v FROM lit_memory_migrations ORDER BY v")
    assert versions == [(v,) for v in range(1, latest + 1)]
    assert raw(path, "PRAGMA integrity_check") == [("ok",)]
    assert raw(path, "PRAGMA journal_mode") == [("wal",)]


@pytest.mark.parametrize("first_call", ["init_db", "add_messages"])
async def test_fifty_stores_first_use_of_a_new_file(tmp_path: Path, first_call: str) -> None:
    """50 stores open and migrate one brand-new file at the same moment, then all write."""
    path = str(tmp_path / "fresh.db")
    stores = [AsyncConversationDB(path) for _ in range(50)]
    try:
        if first_call == "init_db":
            await asyncio.gather(*(s.init_db() for s in stores))
        counts = await asyncio.gather(
            *(s.add_messages("c", turn(k, 0, 1), create=True) for k, s in enumerate(stores))
        )
        assert counts == [1] * 50
        assert {await s.schema_version() for s in stores} == {stores[0].backend.latest_version}
    finally:
        await asyncio.gather(*(s.close() for s in stores))

    assert_migrated_once(path, stores[0].backend.latest_version)
    assert sorted(stored(path, "c")) == sorted(f"t{k}-0-0" for k in range(50))


@pytest.mark.slow
def test_eight_processes_first_use_of_a_new_file(tmp_path: Path) -> None:
    """8 processes start on a brand-new file at once: one migration, every write stored."""
    path = str(tmp_path / "fresh.db")
    latest = AsyncConversationDB(path).backend.latest_version
    assert run_processes(_workers.first_use, 8, path) == [latest] * 8
    assert_migrated_once(path, latest)
    assert sorted(stored(path, _workers.SHARED)) == sorted(
        _workers.turn(k, 0)[0]["content"] for k in range(8)
    )


async def test_concurrent_opens_of_one_store_open_it_once(tmp_path: Path) -> None:
    """Startup code that opens the store while a health check reads its version at the same
    time must not open (and leak) a second set of connections."""
    path = str(tmp_path / "open.db")
    with no_leaked_connections():
        db = AsyncConversationDB(path)
        try:
            await asyncio.gather(db.connect(), db.schema_version(), db.init_db(), db.connect())
            assert await db.add_messages("c", turn(0, 0), create=True) == 3
        finally:
            await db.close()
    assert stored(path, "c") == contents(turn(0, 0))


# -- lock timeouts and cancelled callers -------------------------------------------------------


@contextmanager
def write_lock(path: str) -> Iterator[None]:
    """Hold the file's write lock, as another process writing a long transaction would."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


async def test_locked_file_fails_each_caller_after_one_busy_timeout(tmp_path: Path) -> None:
    """Another process holds the write lock past the busy timeout: every waiting caller gets
    StorageBusyError after about one timeout (not one timeout per queued caller), nothing is
    half-written, and writes work again once the lock is released."""
    path = str(tmp_path / "locked.db")
    async with AsyncConversationDB(path, busy_timeout=0.25) as db:
        await db.create_conversation("c")
        with write_lock(path):
            started = time.monotonic()

            async def timed(k: int) -> tuple[Any, float]:
                try:
                    result: Any = await db.add_messages("c", turn(k, 0))
                except LitMemoryError as exc:
                    result = exc
                return result, time.monotonic() - started

            outcomes = await asyncio.gather(*(timed(k) for k in range(12)))
        for result, _ in outcomes:
            assert isinstance(result, StorageBusyError), result
            assert "locked" in str(result)
        waits = sorted(round(waited, 2) for _, waited in outcomes)
        assert waits[-1] < 1.5, f"callers waited {waits} s for a 0.25 s busy timeout"
        assert await db.count_messages("c") == 0
        assert await db.add_messages("c", turn(0, 0)) == 3
    assert stored(path, "c") == contents(turn(0, 0))


async def test_cancelled_writer_leaves_others_and_the_store_intact(tmp_path: Path) -> None:
    """A caller cancelled while its turn is being committed (e.g. a request timeout) does not
    disturb the other writers in its batch; its turn is stored whole or not at all, and
    retrying it (same uids) leaves it stored exactly once."""
    path = str(tmp_path / "cancel.db")
    async with AsyncConversationDB(path) as db:
        await db.create_conversation("c")
        with write_lock(path):  # the batch waits for the lock: it is certainly in flight
            others = [asyncio.create_task(db.add_messages("c", turn(k, 0))) for k in range(10)]
            victims = [asyncio.create_task(db.add_messages("c", turn(k, 0))) for k in (50, 51)]
            await asyncio.sleep(0.1)
            assert not any(t.done() for t in [*others, *victims])
            for victim in victims:
                victim.cancel()
            await asyncio.sleep(0.05)
        assert await asyncio.gather(*others) == [3] * 10
        for victim in victims:
            with pytest.raises(asyncio.CancelledError):
                await victim
        order = stored(path, "c")
        for k in (50, 51):
            present = [c for c in contents(turn(k, 0)) if c in order]
            assert present in ([], contents(turn(k, 0))), "a cancelled turn was half-stored"
            await db.add_messages("c", turn(k, 0))  # the caller retries
        assert await db.add_messages("c", turn(99, 0)) == 3
        assert await db.count_messages("c") == 13 * 3

    order = stored(path, "c")
    assert sorted(order) == sorted(
        c for k in [*range(10), 50, 51, 99] for c in contents(turn(k, 0))
    )
    assert order[:30] == [c for k in range(10) for c in contents(turn(k, 0))]


async def test_cancelled_first_use_leaks_nothing_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first call cancelled while the store is still opening its connections (a slow disk,
    another process switching the file to WAL) leaves no connection behind, and the next call
    opens the store normally."""
    path = str(tmp_path / "slow-open.db")
    with no_leaked_connections():
        db = AsyncConversationDB(path)
        backend: Any = db.backend
        connect = backend._connect
        opening = asyncio.Event()

        async def slow_second_connect(isolation: str | None) -> Any:
            if isolation is None:  # the reader: opened after the writer
                opening.set()
                await asyncio.sleep(30)
            return await connect(isolation)

        monkeypatch.setattr(backend, "_connect", slow_second_connect)
        first = asyncio.create_task(db.add_messages("c", turn(0, 0), create=True))
        await asyncio.wait_for(opening.wait(), 10)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        monkeypatch.setattr(backend, "_connect", connect)
        try:
            assert await db.add_messages("c", turn(1, 0), create=True) == 3
        finally:
            await db.close()
    assert stored(path, "c") == contents(turn(1, 0))
