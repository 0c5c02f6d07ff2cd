"""Schema migrations on real SQLite files: old databases upgrade with their data, a second
start changes nothing, a newer database is refused, and new files are private.

The version-1 database is written the way lit-memory wrote it at version 1: through the
backend layer, whose statements for these rows have not changed since (the store itself
would migrate the file to the latest version on first use), and, for the mashup, with the
version-1 columns directly (the backend's insert names the version-2 ``tool_call_id``).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from lit_memory import (
    AsyncConversationDB,
    ConversationDB,
    ConversationPhase,
    InvalidInputError,
    LitMemoryError,
    SchemaVersionError,
)
from lit_memory.backends.base import MessageRow, SourceRow, ToolCallRow

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def raw(path: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(query, params).fetchall()


def versions(path: str) -> list[tuple[Any, ...]]:
    return raw(path, "SELECT v, applied_at FROM lit_memory_migrations ORDER BY v")


def schema(path: str) -> list[tuple[Any, ...]]:
    return raw(path, "SELECT type, name, sql FROM sqlite_master ORDER BY type, name")


def _tool_call(cid: str, run: str, status: str, output: str | None) -> ToolCallRow:
    return ToolCallRow(
        conversation_id=cid, tool_type="web_search", tool_name="tavily_search",
        input_data='{"query":"baroque trap"}', output_data=output, status=status,
        created_at=T0, started_at=T0, completed_at=T0 + timedelta(seconds=2),
        duration_ms=2000.0, error_message=None, error_type=None, run_id=run,
        parent_run_id=None, call_id=f"call-{run}",
    )  # fmt: skip


async def write_version_1(path: str) -> dict[str, Any]:
    """A version-1 database with two conversations, messages, tool calls, sources and a
    mashup; returns what was written, as the API reads it back at version 1."""
    db = AsyncConversationDB(path)
    try:
        assert await db.migrate(target=1) == (0, 1)
        backend = db.backend
        for n, cid in enumerate(["conv-a", "conv-b"]):
            meta = f'{{"user_id":"user-{n}"}}'
            assert await backend.create_conversation(cid, f"owner-{n}", "initial", meta, T0)
            rows = [
                MessageRow(role="user", content=f"{cid}: baroque harpsichord", metadata=None,
                           uid=f"{cid}-1", payload=None),
                MessageRow(role="assistant", content=f"{cid}: trap drums answer",
                           metadata='{"model":"m"}', uid=f"{cid}-2", payload='{"k":1}'),
            ]  # fmt: skip
            assert await backend.add_messages(cid, rows, T0) == 2
            call = await backend.add_tool_call(_tool_call(cid, f"run-{n}", "completed", "ok"))
            assert call is not None
            sources = [SourceRow(f"https://e.x/{cid}/{r}", f"t{r}", "s", 0.5, r) for r in (1, 2)]
            assert await backend.add_web_sources(call, sources, T0) == 2
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute(
                "INSERT INTO mashups (conversation_id, title, description, audio_file_path, "
                "metadata, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                ("conv-a", "Bach x 808", "old mashup", "/audio/a.wav", '{"bpm":140}',
                 T0.isoformat(timespec="microseconds")),
            )  # fmt: skip
        assert await db.schema_version() == 1
        return {
            "messages": [m.model_dump() for m in await backend.get_messages(
                "conv-a", after_seq=0, limit=None, offset=0)],
            "tool_calls": [t.model_dump() for t in await backend.get_tool_calls(
                "conv-a", with_sources=True)],
            "conversation": (await backend.get_conversation("conv-a")),
        }  # fmt: skip
    finally:
        await db.close()


@pytest.mark.parametrize("upgrade_by", ["init_db", "first_call"])
async def test_version_1_database_upgrades_with_data_intact(db_file: str, upgrade_by: str) -> None:
    before = await write_version_1(db_file)
    v1_row = versions(db_file)
    assert [v for v, _ in v1_row] == [1]

    async with AsyncConversationDB(db_file) as db:
        latest = db.backend.latest_version
        if upgrade_by == "init_db":
            await db.init_db()
        conversation = await db.get_conversation("conv-a")  # migrates on first use otherwise
        assert await db.schema_version() == latest
        assert conversation == before["conversation"]
        assert conversation is not None and conversation.metadata == {"user_id": "user-0"}
        assert [m.model_dump() for m in await db.get_messages("conv-a")] == before["messages"]
        calls = await db.get_tool_calls("conv-a")
        assert [t.model_dump() for t in calls] == before["tool_calls"]
        assert [s.url for s in calls[0].sources] == ["https://e.x/conv-a/1", "https://e.x/conv-a/2"]
        (old_mashup,) = await db.get_mashups("conv-a")
        assert (old_mashup.title, old_mashup.tool_call_id) == ("Bach x 808", None)
        assert old_mashup.metadata == {"bpm": 140}
        summary = await db.get_conversation_summary("conv-a")
        assert summary is not None
        assert (summary.message_count, summary.tool_call_count) == (2, 1)
        assert (summary.mashup_count, summary.web_source_count) == (1, 2)

        # What later versions add works on the upgraded data.
        assert await db.update_conversation_phase(
            "conv-a", ConversationPhase.GENRE_EXPLORATION, reason="after upgrade"
        )
        (transition,) = await db.get_phase_history("conv-a")
        assert (transition.from_phase, transition.to_phase) == ("initial", "genre_exploration")
        new_mashup = await db.create_mashup(
            "conv-a", "Bach x 909", tool_call_id=calls[0].tool_call_id
        )
        assert new_mashup is not None
        assert (await db.get_mashups("conv-a"))[1].tool_call_id == calls[0].tool_call_id
        hits = await db.search_messages("harpsichord")
        assert sorted(h.message.conversation_id for h in hits) == ["conv-a", "conv-b"]
        assert await db.add_message("conv-a", "user", "after the upgrade")
        assert [m.seq for m in await db.get_messages("conv-a")] == [1, 2, 3]

    rows = versions(db_file)
    assert [v for v, _ in rows] == list(range(1, latest + 1))
    assert rows[0] == v1_row[0], "the version-1 row was rewritten"
    assert raw(db_file, "PRAGMA integrity_check") == [("ok",)]
    assert raw(db_file, "PRAGMA foreign_key_check") == []
    assert raw(db_file, "SELECT COUNT(*) FROM messages") == [(5,)]


async def test_init_db_is_idempotent(db_file: str) -> None:
    async with AsyncConversationDB(db_file) as db:
        await db.init_db()
        await db.create_conversation("c")
        await db.add_message("c", "user", "hello")
        first_versions, first_schema = versions(db_file), schema(db_file)
        await db.init_db()
        latest = db.backend.latest_version
        assert await db.migrate() == (latest, latest)
    for _ in range(2):
        async with AsyncConversationDB(db_file) as again:
            await again.init_db()
            assert await again.migrate() == (latest, latest)
    assert versions(db_file) == first_versions
    assert [v for v, _ in first_versions] == list(range(1, latest + 1))
    assert schema(db_file) == first_schema
    assert raw(db_file, "SELECT conversation_id, seq, content FROM messages") == [("c", 1, "hello")]


async def test_migrate_to_a_target_stops_there_and_resumes(db_file: str) -> None:
    async with AsyncConversationDB(db_file) as db:
        latest = db.backend.latest_version
        assert await db.migrate(target=1) == (0, 1)
        assert await db.migrate(target=1) == (1, 1)
        assert "phase_transitions" not in {name for _, name, _ in schema(db_file)}
        assert await db.migrate() == (1, latest)
    assert [v for v, _ in versions(db_file)] == list(range(1, latest + 1))


@pytest.mark.parametrize("target", [-1, "latest+1", 99, 1.5, True])
async def test_migrate_refuses_a_target_it_does_not_know(db_file: str, target: Any) -> None:
    """A bad target is an InvalidInputError raised before anything is written (not an
    IndexError from inside the migration)."""
    async with AsyncConversationDB(db_file) as db:
        latest = db.backend.latest_version
        assert await db.migrate(target=1) == (0, 1)
        bad = latest + 1 if target == "latest+1" else target
        with pytest.raises(InvalidInputError, match="target"):
            await db.migrate(target=bad)
        assert await db.schema_version() == 1
    assert [v for v, _ in versions(db_file)] == [1]


async def newer_database(path: str) -> int:
    """A database at the latest version, marked as written by a newer lit-memory."""
    async with AsyncConversationDB(path) as db:
        await db.init_db()
        await db.create_conversation("c")
        await db.add_message("c", "user", "written before")
        newer = db.backend.latest_version + 1
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "INSERT INTO lit_memory_migrations (v, applied_at) VALUES (?, 'later')", (newer,)
        )
    return newer


async def test_newer_database_is_refused(db_file: str) -> None:
    newer = await newer_database(db_file)
    before_versions, before_schema = versions(db_file), schema(db_file)
    async with AsyncConversationDB(db_file) as db:
        with pytest.raises(SchemaVersionError) as refused:
            await db.init_db()
        assert isinstance(refused.value, LitMemoryError)
        message = str(refused.value)
        assert "upgrade lit-memory" in message and str(newer) in message
        # Every other call is refused the same way: nothing reads or writes an unknown schema.
        with pytest.raises(SchemaVersionError):
            await db.add_message("c", "user", "must not be written")
        with pytest.raises(SchemaVersionError):
            await db.get_messages("c")
        with pytest.raises(SchemaVersionError):
            await db.migrate()
        assert await db.schema_version() == newer
    assert versions(db_file) == before_versions
    assert schema(db_file) == before_schema
    assert raw(db_file, "SELECT content FROM messages") == [("written before",)]


async def test_newer_database_is_refused_through_the_sync_facade(db_file: str) -> None:
    await newer_database(db_file)

    def use() -> None:
        with ConversationDB(db_file) as db, pytest.raises(SchemaVersionError, match="upgrade"):
            db.add_message("c", "user", "must not be written")

    await asyncio.to_thread(use)
    assert raw(db_file, "SELECT content FROM messages") == [("written before",)]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o000])
async def test_new_database_files_are_private(tmp_path: Path, mask: int) -> None:
    """Conversations are personal data: a new file, its WAL and its shared-memory file are
    readable by the owner only, whatever the umask."""
    path = tmp_path / "new" / "dir" / "memory.db"
    with umask(mask):
        async with AsyncConversationDB(path) as db:
            await db.init_db()
            assert await db.add_messages("c", [{"role": "user", "content": "secret"}], create=True)
            companions = [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm")]
            assert all(p.exists() for p in companions), "WAL mode writes -wal and -shm files"
            assert {p.name: mode(p) for p in [path, *companions]} == {
                p.name: 0o600 for p in [path, *companions]
            }
    assert mode(path) == 0o600
    assert raw(str(path), "SELECT content FROM messages") == [("secret",)]


async def test_existing_file_mode_is_left_alone(tmp_path: Path) -> None:
    """A file the user created (and chose the mode of) is opened as it is."""
    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)
    async with AsyncConversationDB(path) as db:
        await db.init_db()
    assert mode(path) == 0o640
    assert [v for v, _ in versions(str(path))] == list(range(1, db.backend.latest_version + 1))


def test_schema_versions_mean_the_same_on_both_dialects() -> None:
    """A step added for one dialect gets its counterpart (or a "SELECT 1") on the other."""
    from lit_memory.backends import postgres_sql, sqlite_sql

    assert len(sqlite_sql.MIGRATIONS) == len(postgres_sql.MIGRATIONS)
