"""SQLite indexes messages for search in batches: every search still sees every stored message,
and the index never holds a message that is gone (or misses one once it has caught up)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

from lit_memory import AsyncConversationDB
from lit_memory.backends import sqlite as sqlite_backend
from lit_memory.backends import sqlite_sql


def _index_state(path: str, *, complete: bool) -> tuple[set[int], set[int]]:
    """The indexed and the waiting message ids, after SQLite's own checks of the index (against
    the messages themselves when `complete`: nothing may wait then)."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
        indexed = {row[0] for row in conn.execute("SELECT id FROM messages_fts_docsize")}
        waiting = {
            row[0]
            for row in conn.execute(
                "SELECT message_id FROM messages "
                "WHERE message_id > (SELECT indexed_to FROM messages_fts_state)"
            )
        }
        stored = {row[0] for row in conn.execute("SELECT message_id FROM messages")}
        if complete:
            # rank 1: every stored message is in the index with exactly its content
            conn.execute(
                "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)"
            )
    assert indexed | waiting == stored, "a message is neither indexed nor waiting"
    assert not indexed & waiting, "a message is both indexed and waiting"
    if complete:
        assert not waiting
    return indexed, waiting


def _turn(word: str) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": f"tell me about {word}"},
        {"role": "assistant", "content": f"{word} is a genre"},
    ]


async def test_a_search_finds_messages_appended_just_before_it(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    async with AsyncConversationDB(path) as db:
        await db.add_messages("c", _turn("bossa"), create=True)
        _, waiting = _index_state(path, complete=False)
        assert len(waiting) == 2  # appends do not index one commit at a time
        hits = await db.search_messages("bossa genre")
        assert [h.message.content for h in hits] == ["bossa is a genre"]
        _index_state(path, complete=True)  # the search indexed what was waiting
        await db.add_messages("c", _turn("trap"))
        assert len(await db.search_messages("trap")) == 2


async def test_appends_are_indexed_in_batches_as_they_go(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    async with AsyncConversationDB(path) as db:
        for k in range(sqlite_backend._INDEX_BATCH // 2 + 10):
            await db.add_messages("c", _turn(f"w{k}"), create=True)
        indexed, waiting = _index_state(path, complete=False)
        assert len(indexed) >= sqlite_backend._INDEX_BATCH
        assert len(waiting) < sqlite_backend._INDEX_BATCH
    _index_state(path, complete=True)  # closing indexed the rest


async def test_deleting_waiting_and_indexed_messages_keeps_the_index_exact(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "s.db")
    async with AsyncConversationDB(path) as db:
        await db.add_messages("a", _turn("samba"), create=True)
        await db.add_messages("b", _turn("samba"), create=True)
        await db.search_messages("samba")  # a and b indexed
        await db.add_messages("a", _turn("forro"))
        await db.add_messages("c", _turn("forro"), create=True)  # waiting
        _index_state(path, complete=False)
        await db.clear_messages("a")  # two indexed, two waiting
        await db.delete_conversation("c")  # waiting only
        _index_state(path, complete=False)
        assert {h.message.conversation_id for h in await db.search_messages("samba")} == {"b"}
        assert await db.search_messages("forro") == []
        # A message id freed by a delete and taken again is indexed with its new text.
        await db.add_messages("b", _turn("maracatu"))
        assert {h.message.content for h in await db.search_messages("maracatu")} == {
            "tell me about maracatu",
            "maracatu is a genre",
        }
        await db.purge_conversations(idle_since=datetime.now(timezone.utc) + timedelta(days=1))
        assert await db.search_messages("samba") == []
    _index_state(path, complete=True)


async def test_ids_taken_again_after_the_newest_indexed_messages_are_deleted_get_indexed(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "s.db")
    async with AsyncConversationDB(path) as db:
        await db.add_messages("old", _turn("lundu"), create=True)
        await db.add_messages("newest", _turn("modinha"), create=True)
        await db.search_messages("lundu")  # everything indexed
        await db.delete_conversation("newest")  # SQLite will hand its ids out again
        await db.add_messages("old", _turn("jongo"))
        indexed, waiting = _index_state(path, complete=False)
        assert len(waiting) == 2  # the reused ids are not taken for indexed
        assert len(await db.search_messages("jongo")) == 2
        assert await db.search_messages("modinha") == []
    _index_state(path, complete=True)


async def test_messages_left_waiting_by_a_crash_are_found_by_the_next_search(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "s.db")
    async with AsyncConversationDB(path) as db:
        await db.add_messages("c", _turn("choro"), create=True)
    with closing(sqlite3.connect(path)) as conn:  # another writer that died before indexing
        conn.execute(
            "INSERT INTO messages (conversation_id, seq, role, content, timestamp) "
            "VALUES ('c', 3, 'user', 'and frevo?', '2026-01-01T00:00:00.000000+00:00')"
        )
        conn.commit()
    assert len(_index_state(path, complete=False)[1]) == 1
    async with AsyncConversationDB(path) as db:
        assert [h.message.content for h in await db.search_messages("frevo")] == ["and frevo?"]
    _index_state(path, complete=True)


async def test_an_upgraded_database_keeps_its_index(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    async with AsyncConversationDB(path) as db:
        await db.migrate(target=4)
    with closing(sqlite3.connect(path)) as conn:  # written by a v4 store: indexed at once
        conn.execute(
            "INSERT INTO conversations (conversation_id, phase, created_at, updated_at) "
            "VALUES ('c', 'initial', '2026-01-01T00:00:00.000000+00:00', "
            "'2026-01-01T00:00:00.000000+00:00')"
        )
        for seq, text in enumerate(("tell me about baiao", "baiao is a genre"), start=1):
            conn.execute(
                "INSERT INTO messages (conversation_id, seq, role, content, timestamp) "
                "VALUES ('c', ?, 'user', ?, '2026-01-01T00:00:00.000000+00:00')",
                (seq, text),
            )
        conn.commit()
    async with AsyncConversationDB(path) as db:
        assert await db.migrate() == (4, len(sqlite_sql.MIGRATIONS))
        indexed, waiting = _index_state(path, complete=False)
        assert len(indexed) == 2 and not waiting
        await db.add_messages("c", _turn("xote"))
        await db.clear_messages("c")
        assert await db.search_messages("baiao") == []
    _index_state(path, complete=True)
