"""Storage failures reach the caller as typed errors, and the store stays usable after."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lit_memory import (
    AsyncConversationDB,
    LitMemoryError,
    StorageBusyError,
    StorageCorruptError,
    StorageError,
)


async def test_a_lock_held_past_the_busy_timeout_is_a_busy_error(db_file: str) -> None:
    async with AsyncConversationDB(db_file, busy_timeout=0.2) as db:
        await db.create_conversation("c")
        await db.add_message("c", "user", "before the lock")
        other = sqlite3.connect(db_file, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            with pytest.raises(StorageBusyError) as info:
                await db.add_message("c", "user", "while locked")
            assert isinstance(info.value, TimeoutError) and isinstance(info.value, LitMemoryError)
            assert "busy timeout" in str(info.value)
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await db.add_message("c", "user", "after the lock") is True
        assert [m.content for m in await db.get_messages("c")] == [
            "before the lock",
            "after the lock",
        ]
        assert [m.seq for m in await db.get_messages("c")] == [1, 2]


async def test_a_short_lock_is_waited_for(db_file: str) -> None:
    import asyncio
    import threading

    async with AsyncConversationDB(db_file, busy_timeout=5) as db:
        await db.create_conversation("c")
        other = sqlite3.connect(db_file, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        threading.Timer(0.3, lambda: other.execute("COMMIT")).start()
        assert await asyncio.wait_for(db.add_message("c", "user", "waited"), 10) is True
        other.close()
        assert await db.count_messages("c") == 1


async def test_a_file_that_is_not_a_database_is_a_corrupt_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a sqlite database, just text " * 200)
    db = AsyncConversationDB(path)
    with pytest.raises(StorageCorruptError) as info:
        await db.init_db()
    assert isinstance(info.value, StorageError) and "backup" in str(info.value)
    await db.close()
    assert path.read_bytes().startswith(b"this is not a sqlite database")  # left untouched


async def test_a_closed_store_reopens_on_next_use(db_file: str) -> None:
    db = AsyncConversationDB(db_file)
    await db.create_conversation("c")
    await db.close()
    assert await db.add_message("c", "user", "after reopening") is True
    await db.close()
