"""Injected storage faults: each is a typed `LitMemoryError` whose message says what happened
and what to do; the store works again once the fault is gone; nothing stored before is lost.

Faults: a full disk (a 2 MB tmpfs when we may mount one, and a file-size limit in a child
process always), a read-only database (a read-only bind mount when we may mount, else
permissions), a write lock held by another process past the busy timeout, corrupt files
(garbage, truncation, damaged pages) and a PostgreSQL server stopped and restarted under a
live pool.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from _dataset import lost, populate, snapshot
from pgserver import PostgresServer, postgres_unavailable_reason

from lit_memory import (
    AsyncConversationDB,
    LitMemoryError,
    StorageBusyError,
    StorageConnectionError,
    StorageCorruptError,
    StorageError,
    StorageFullError,
    StorageReadOnlyError,
)

HERE = Path(__file__).parent


def _injected(record_property: Any, faults: int) -> None:
    """Count the faults a test injects (recorded first: a test that fails still injected)."""
    record_property("faults_injected", faults)


def _lost(record_property: Any, losses: list[str]) -> None:
    record_property("losses", len(losses))


def _sqlite_ok(path: Path) -> bool:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _run(*command: str) -> bool:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@contextmanager
def _mounted(target: Path, *options: str) -> Iterator[bool]:
    """Mount something on `target` for the block (True), or yield False when not permitted."""
    target.mkdir(exist_ok=True)
    if not _run("mount", *options, str(target)):
        yield False
        return
    try:
        yield True
    finally:
        if not _run("umount", str(target)):
            _run("umount", "-l", str(target))


# -- disk full --------------------------------------------------------------------------------


def _fill(directory: Path) -> Path:
    """Write a file until the filesystem is full; return it."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def _says(error: BaseException, *words: str) -> None:
    text = str(error).lower()
    assert all(word in text for word in words), f"{type(error).__name__}: {error}"


async def test_out_of_space_on_a_small_filesystem(tmp_path: Path, record_property: Any) -> None:
    _injected(record_property, 2)
    small = tmp_path / "small"
    with _mounted(small, "-t", "tmpfs", "-o", "size=2m", "tmpfs") as mounted:
        if not mounted:
            pytest.skip("mounting a tmpfs is not permitted here; the file-size test covers it")
        record_property("out_of_space_method", "2 MB tmpfs filled up")
        path = small / "store.db"
        async with AsyncConversationDB(path) as db:
            await populate(db)
            before = await snapshot(db)
            filler = _fill(small)
            with pytest.raises(StorageFullError) as full:
                await db.add_message("kept-0", "user", "x" * 300_000)
            _says(full.value, "full", "free space")
            assert isinstance(full.value, OSError) and full.value.__cause__ is not None
            with pytest.raises(StorageFullError):  # a whole turn: refused whole
                await db.add_messages("kept-1", [{"role": "user", "content": "y" * 200_000}] * 3)
            assert await snapshot(db) == before  # reads work while full, nothing half-written
            filler.unlink()  # space freed: the same store writes again
            assert await db.add_message("kept-0", "user", "x" * 300_000) is True
            assert await db.add_messages("kept-1", [{"role": "user", "content": "y"}] * 3) == 3
            losses = lost(before, await snapshot(db))
        assert _sqlite_ok(path)
    _lost(record_property, losses)
    assert losses == []


def test_out_of_space_at_a_file_size_limit(db_file: str, record_property: Any) -> None:
    _injected(record_property, 1)

    async def prepare() -> None:
        async with AsyncConversationDB(db_file) as db:
            await populate(db)

    asyncio.run(prepare())
    record_property("out_of_space_method", "RLIMIT_FSIZE in a child process")
    child = subprocess.run(
        [sys.executable, str(HERE / "_full_child.py"), db_file],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    _lost(record_property, [] if report["after"] == report["before"] + 1 else ["message"])
    assert "raw_error" not in report, report
    # SQLite reports EFBIG as an I/O error (SQLITE_IOERR_WRITE), not SQLITE_FULL: a typed
    # StorageError is right, as long as it says what to do.
    assert report["error"][0] in ("StorageFullError", "StorageError"), report
    assert "free space" in report["error"][1], report
    assert report["during"] == report["before"]  # the refused write left nothing behind
    assert report["stored_after"] is True and report["after"] == report["before"] + 1
    assert _sqlite_ok(Path(db_file))


# -- read-only --------------------------------------------------------------------------------


class ReadOnlyView:
    """`source` seen read-only at `path`: a read-only bind mount (root), else permissions."""

    def __init__(self, source: Path, mount_point: Path) -> None:
        self.source, self.path = source, source
        self.how = "permissions"
        if os.geteuid() == 0:
            mount_point.mkdir(exist_ok=True)
            bound = _run("mount", "--bind", str(source), str(mount_point))
            if bound and _run("mount", "-o", "remount,bind,ro", str(mount_point)):
                self.path, self.how = mount_point, "read-only bind mount"
            elif bound:
                _run("umount", str(mount_point))
        if self.how == "permissions":
            if os.geteuid() == 0:
                pytest.skip("root ignores permissions and mounting is not permitted here")
            for item in [*source.iterdir(), source]:
                item.chmod(0o555 if item.is_dir() else 0o444)

    def make_writable(self) -> None:
        """The fault is gone."""
        if self.how == "permissions":
            for item in [self.source, *self.source.iterdir()]:
                item.chmod(0o755 if item.is_dir() else 0o644)
        else:
            assert _run("mount", "-o", "remount,bind,rw", str(self.path))

    def close(self) -> None:
        if self.how != "permissions":
            _run("umount", str(self.path)) or _run("umount", "-l", str(self.path))
        else:
            self.make_writable()


@contextmanager
def _read_only(source: Path, mount_point: Path) -> Iterator[ReadOnlyView]:
    view = ReadOnlyView(source, mount_point)
    try:
        yield view
    finally:
        view.close()


async def _stored(directory: Path) -> dict[str, Any]:
    async with AsyncConversationDB(directory / "store.db") as db:
        await populate(db)
        return await snapshot(db)


async def test_read_only_directory_that_cannot_even_be_opened(
    tmp_path: Path, record_property: Any
) -> None:
    """Closed cleanly (no -wal/-shm beside it), a WAL database in a read-only directory cannot
    be opened at all: SQLite needs to create its shared-memory file."""
    _injected(record_property, 2)
    source = tmp_path / "data"
    source.mkdir()
    before = await _stored(source)
    with _read_only(source, tmp_path / "ro") as view:
        record_property("read_only_method", view.how)
        db = AsyncConversationDB(view.path / "store.db")
        try:
            attempts = (
                lambda: db.get_messages("kept-0"),
                lambda: db.add_message("kept-0", "user", "x"),
            )
            for attempt in attempts:
                with pytest.raises((StorageConnectionError, StorageReadOnlyError)) as info:
                    await attempt()
                # It must say that it cannot open the database, and what to do about it.
                _says(info.value, "cannot open")
                assert any(w in str(info.value) for w in ("permission", "writable", "read-only"))
            view.make_writable()
            assert await db.add_message("kept-0", "user", "after") is True
            losses = lost(before, await snapshot(db))
        finally:
            await db.close()
    _lost(record_property, losses)
    assert losses == []


async def test_read_only_database_refuses_writes_and_recovers(
    tmp_path: Path, record_property: Any
) -> None:
    """With its -wal and -shm present (another process has it open), a read-only database
    still reads; writes raise StorageReadOnlyError; once writable, the same store writes."""
    _injected(record_property, 2)
    source = tmp_path / "data"
    source.mkdir()
    before = await _stored(source)
    keeper = sqlite3.connect(source / "store.db")  # the other process keeping it open
    keeper.execute("SELECT COUNT(*) FROM messages").fetchall()
    try:
        with _read_only(source, tmp_path / "ro") as view:
            record_property("read_only_method", view.how)
            db = AsyncConversationDB(view.path / "store.db")
            try:
                assert await snapshot(db) == before
                with pytest.raises(StorageReadOnlyError) as info:
                    await db.add_message("kept-0", "user", "x")
                _says(info.value, "cannot be written", "permissions")
                assert isinstance(info.value, PermissionError)
                with pytest.raises(StorageReadOnlyError):
                    await db.add_messages("kept-1", [{"role": "user", "content": "t"}] * 3)
                view.make_writable()
                # The fault is gone: the same store must write again, without reopening.
                assert await db.add_message("kept-0", "user", "after") is True
                losses = lost(before, await snapshot(db))
            finally:
                await db.close()
    finally:
        keeper.close()
    _lost(record_property, losses)
    assert losses == []


async def test_read_only_database_is_searched_as_far_as_it_is_indexed(
    tmp_path: Path, record_property: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Messages appended by a writer that died before indexing them cannot be indexed in a
    read-only database: the search still answers from the index (and says so in the log)."""
    _injected(record_property, 1)
    source = tmp_path / "data"
    source.mkdir()
    async with AsyncConversationDB(source / "store.db") as db:
        await db.add_messages("c", [{"role": "user", "content": "frevo is fast"}], create=True)
    keeper = sqlite3.connect(source / "store.db")  # the other process keeping it open
    keeper.execute(
        "INSERT INTO messages (conversation_id, seq, role, content, timestamp) "
        "VALUES ('c', 2, 'user', 'frevo again', '2026-01-01T00:00:00.000000+00:00')"
    )
    keeper.commit()
    try:
        with _read_only(source, tmp_path / "ro") as view:
            record_property("read_only_method", view.how)
            async with AsyncConversationDB(view.path / "store.db") as db:
                with caplog.at_level("WARNING", logger="lit_memory"):
                    hits = await db.search_messages("frevo")
                assert [h.message.content for h in hits] == ["frevo is fast"]
                assert "read-only" in caplog.text
                assert await db.count_messages("c") == 2  # the message itself is there
    finally:
        keeper.close()
    async with AsyncConversationDB(source / "store.db") as db:  # writable again: all found
        assert len(await db.search_messages("frevo")) == 2


# -- busy -------------------------------------------------------------------------------------

_HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


async def test_lock_held_by_another_process(db_file: str, record_property: Any) -> None:
    _injected(record_property, 2)
    async with AsyncConversationDB(db_file, busy_timeout=0.3) as db:
        await populate(db)
        before = await snapshot(db)
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, db_file],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            started = time.monotonic()
            with pytest.raises(StorageBusyError) as info:
                await db.add_message("kept-0", "user", "while locked")
            assert time.monotonic() - started >= 0.25  # it waited for the busy timeout
            _says(info.value, "locked", "busy_timeout", "retry")
            assert isinstance(info.value, TimeoutError)
            with pytest.raises(StorageBusyError):
                await db.add_messages("kept-1", [{"role": "user", "content": "t"}] * 3)
            assert await snapshot(db) == before  # readers are not blocked (WAL)
        finally:
            holder.communicate("", timeout=30)
        assert await db.add_message("kept-0", "user", "after the lock") is True
        assert await db.add_messages("kept-1", [{"role": "user", "content": "t"}] * 3) == 3
        losses = lost(before, await snapshot(db))
    _lost(record_property, losses)
    assert losses == []


# -- corrupt files ----------------------------------------------------------------------------

Call = Callable[[AsyncConversationDB], Awaitable[Any]]


def _battery(conversations: list[str]) -> list[tuple[str, Call]]:
    """Every kind of read, and a write, over the stored conversations."""
    calls: list[tuple[str, Call]] = [
        ("init_db", lambda db: db.init_db()),
        ("list_conversations", lambda db: db.list_conversations(limit=100)),
        ("stats", lambda db: db.stats()),
        ("search", lambda db: db.search_messages("bebop")),
    ]
    for cid in conversations:
        calls += [
            (f"get_conversation {cid}", lambda db, c=cid: db.get_conversation(c)),
            (f"get_messages {cid}", lambda db, c=cid: db.get_messages(c)),
            (f"get_tool_calls {cid}", lambda db, c=cid: db.get_tool_calls(c)),
            (f"get_mashups {cid}", lambda db, c=cid: db.get_mashups(c)),
            (f"get_phase_history {cid}", lambda db, c=cid: db.get_phase_history(c)),
            (f"export {cid}", lambda db, c=cid: db.export_conversation(c)),
            (f"add_message {cid}", lambda db, c=cid: db.add_message(c, "user", "new")),
        ]
    return calls


async def _outcomes(path: Path, conversations: list[str]) -> dict[str, str]:
    """What each call of the battery did on the file: "ok", or the error's type and text."""
    outcomes = {}
    db = AsyncConversationDB(path)
    try:
        for name, call in _battery(conversations):
            try:
                await call(db)
                outcomes[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - sorted below
                outcomes[name] = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            await db.close()
        except Exception as exc:  # noqa: BLE001
            outcomes["close"] = f"{type(exc).__name__}: {exc}"
    return outcomes


def _not_typed(outcomes: dict[str, str]) -> dict[str, str]:
    return {
        name: outcome
        for name, outcome in outcomes.items()
        if outcome != "ok" and not outcome.startswith("StorageCorruptError")
    }


GARBAGE = {
    "text": lambda good: b"this is not a sqlite database, just text " * 200,
    "random bytes": lambda good: random.Random(7).randbytes(64 * 1024),
    "zeros": lambda good: bytes(64 * 1024),
    "truncated": lambda good: good[: len(good) // 3],
    "header then garbage": lambda good: good[:100] + random.Random(8).randbytes(len(good) - 100),
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
async def test_a_file_that_is_not_a_database(
    tmp_path: Path, kind: str, record_property: Any
) -> None:
    _injected(record_property, 1)
    good = tmp_path / "good.db"
    async with AsyncConversationDB(good) as db:
        await populate(db)
        before = await snapshot(db)
    bad = tmp_path / "bad.db"
    bad.write_bytes(GARBAGE[kind](good.read_bytes()))
    outcomes = await _outcomes(bad, list(before))
    _lost(record_property, [])
    assert _not_typed(outcomes) == {}
    assert any(o.startswith("StorageCorruptError") for o in outcomes.values()), outcomes
    assert all("backup" in o for o in outcomes.values() if o != "ok")  # says what to do


async def test_the_kind_of_error_does_not_depend_on_the_file_name(
    tmp_path: Path, record_property: Any
) -> None:
    """A corrupt file is a corrupt file, even in a directory whose name reads like an error."""
    _injected(record_property, 1)
    directory = tmp_path / "full-readonly-locked"
    directory.mkdir()
    bad = directory / "store.db"
    bad.write_bytes(GARBAGE["text"](b""))
    outcomes = await _outcomes(bad, ["kept-0"])
    _lost(record_property, [])
    assert _not_typed(outcomes) == {}


def _without_path(outcome: str) -> str:
    return re.sub(r" in /\S+", "", outcome)


def _damage(path: Path, seed: int, text_like: bool) -> None:
    """Overwrite three 64-byte runs in the middle half of the file."""
    rng = random.Random(seed)
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        for _ in range(3):
            handle.seek(rng.randrange(size // 4, size * 3 // 4 - 64))
            noise = bytes(rng.choice(b'abc{}:"0123-T ') for _ in range(64))
            handle.write(noise if text_like else rng.randbytes(64))


async def _damaged_pages(tmp_path: Path, text_like: bool, record_property: Any) -> None:
    _injected(record_property, 8)
    pristine = tmp_path / "pristine.db"
    async with AsyncConversationDB(pristine) as db:
        await populate(db, conversations=12, turns=12)
        before = await snapshot(db)
    # The whole database in the main file, so the damage hits its pages.
    with closing(sqlite3.connect(pristine)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    found: dict[str, list[str]] = {}
    corrupt = 0
    for seed in range(8):
        damaged = tmp_path / f"damaged-{seed}.db"
        shutil.copyfile(pristine, damaged)
        _damage(damaged, seed, text_like)
        outcomes = await _outcomes(damaged, list(before))
        corrupt += sum(o.startswith("StorageCorruptError") for o in outcomes.values())
        for call, outcome in _not_typed(outcomes).items():
            found.setdefault(f"seed {seed}: {_without_path(outcome)[:160]}", []).append(call)
    # The fault is gone once the file is restored from the backup: everything is there.
    async with AsyncConversationDB(pristine) as db:
        losses = lost(before, await snapshot(db))
        assert await db.add_message("kept-0", "user", "after restore") is True
    _lost(record_property, losses)
    assert found == {}, "damaged pages gave untyped errors:\n" + "\n".join(
        f"{error} (from {len(calls)} calls: {', '.join(calls[:3])}...)"
        for error, calls in sorted(found.items())
    )
    assert corrupt > 0
    assert losses == []


async def test_damaged_pages_with_random_bytes(tmp_path: Path, record_property: Any) -> None:
    await _damaged_pages(tmp_path, text_like=False, record_property=record_property)


async def test_damaged_pages_with_text_like_bytes(tmp_path: Path, record_property: Any) -> None:
    """Damage that is still valid UTF-8 reaches the row decoding (timestamps, enums, JSON)."""
    await _damaged_pages(tmp_path, text_like=True, record_property=record_property)


# -- PostgreSQL server restarts ---------------------------------------------------------------


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this module's own, since it is stopped and restarted under the tests."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    server = PostgresServer()
    if server.is_external:
        pytest.skip("an external PostgreSQL server (LIT_MEMORY_TEST_POSTGRES_URL) is not ours "
                    "to restart")  # fmt: skip
    with server:
        yield server


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    # pg_ctl restart starts a stopped server again with the options it last ran with; the
    # log file keeps the server's output off our pipes.
    assert server.data_dir is not None and server.log_path is not None
    command = ["pg_ctl", *args, "-D", str(server.data_dir), "-l", str(server.log_path), "-w"]
    result = server._run(command, timeout=60, what=f"pg_ctl {args[0]}")
    assert result.returncode == 0, result.stdout


async def _ok_or_connection_error(call: Awaitable[Any]) -> str:
    try:
        await call
    except StorageConnectionError as exc:
        _says(exc, "server is up", "retry")
        return "connection error"
    return "ok"


@pytest.mark.postgres
async def test_postgres_restart_under_a_live_pool(
    own_postgres: PostgresServer, record_property: Any
) -> None:
    _injected(record_property, 2)
    url = own_postgres.create_database("lit_restart")
    async with AsyncConversationDB(url) as db:
        await populate(db)
        before = await snapshot(db)
        # Restarted between two calls: the pool's connections are dead.
        await asyncio.to_thread(_pg_ctl, own_postgres, "restart", "-m", "fast")
        first = await _ok_or_connection_error(db.add_message("kept-0", "user", "first"))
        assert await db.add_message("kept-0", "user", "second") is True
        # Stopped: every call is a connection error that says what to do.
        await asyncio.to_thread(_pg_ctl, own_postgres, "stop", "-m", "fast")
        for call in (lambda: db.add_message("kept-0", "user", "x"), lambda: db.get_messages("k")):
            with pytest.raises(StorageConnectionError) as info:
                await call()
            _says(info.value, "server is up", "retry")
            assert isinstance(info.value, ConnectionError)
        # Started again: the next call succeeds, the pool recovers on its own.
        await asyncio.to_thread(_pg_ctl, own_postgres, "restart")
        assert await db.add_message("kept-0", "user", "third") is True
        contents = [m.content for m in await db.get_messages("kept-0")][-3:]
        expected = ["second", "third"] if first != "ok" else ["first", "second", "third"]
        assert contents[-len(expected) :] == expected
        losses = lost(before, await snapshot(db))
    record_property("postgres_first_call_after_restart", first)
    _lost(record_property, losses)
    assert losses == []


def test_every_storage_error_is_a_lit_memory_error() -> None:
    for error in (StorageBusyError, StorageFullError, StorageReadOnlyError, StorageCorruptError,
                  StorageConnectionError):  # fmt: skip
        assert issubclass(error, StorageError) and issubclass(error, LitMemoryError)
