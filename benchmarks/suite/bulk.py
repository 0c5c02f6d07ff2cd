"""Building big databases fast: bulk inserts in raw SQL through each system's own schema.

Each system's schema is created by the system itself (lit-memory's `init_db`, the peers'
table creation), then rows are inserted with ``executemany`` (SQLite) or COPY (PostgreSQL) in
exactly the form the system writes them: the row makers below are checked against the
systems' own encoders before a build. SQLite files are cached in ``results/cache`` under a
key naming the schema, so the 1,000,000-message files are built once.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from langchain_core.messages import message_to_dict

from . import messages as work
from .systems import PG_TABLE, RAW_INSERT, RAW_SCHEMA, TUNING, dump

GENERATOR_VERSION = 1
"""Bump when the generated data changes, so cached files are rebuilt."""

_CHUNK = 20_000
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)

Row = tuple[Any, ...]


# -- row makers -------------------------------------------------------------------------------


class PeerRows:
    """The JSON text the peers store for each message (``json.dumps(message_to_dict(m))``)."""

    def __init__(self) -> None:
        self._templates = [message_to_dict(work.make_message("0" * 12, i)) for i in (0, 1)]

    def fingerprint(self) -> str:
        """What the rows look like, for cache keys."""
        return repr(self._templates)

    def text(self, session: str, index: int) -> str:
        """The stored text of message `index` of `session`."""
        template = self._templates[index % 2]
        data = dict(template["data"])
        data["content"] = work.message_text(session, index)
        data["id"] = work.message_id(session, index)
        return json.dumps({"type": template["type"], "data": data})

    def check(self) -> None:
        """Fail loudly if the fast form differs from what the peers write."""
        for index in range(4):
            session = work.session_id(7)
            assert self.text(session, index) == dump(work.make_message(session, index))


class LitRows:
    """lit-memory's message rows: role, text, uid and the codec's lossless payload."""

    def __init__(self) -> None:
        self._templates = [self._encode(work.make_message("0" * 12, i)) for i in (0, 1)]

    def fingerprint(self) -> str:
        """What the rows look like, for cache keys."""
        return repr(self._templates)

    @staticmethod
    def _encode(message: Any) -> dict[str, Any]:
        try:
            from lit_memory_langchain.codec import encode_message
        except ImportError:  # the adapter is not installed: core rows only
            role = {"human": "user", "ai": "assistant"}[message.type]
            return {"role": role, "content": message.content, "uid": message.id, "payload": None}
        return encode_message(message)

    def row(self, session: str, index: int, order: int) -> Row:
        """(conversation_id, seq, role, content, timestamp, metadata, uid, payload)."""
        template = self._templates[index % 2]
        uid = work.message_id(session, index)
        payload = template["payload"]
        if payload is not None:
            payload = copy.deepcopy(payload)
            payload["data"]["id"] = uid
            payload = _json(payload)
        stamp = _iso(_EPOCH + timedelta(milliseconds=order))
        text = work.message_text(session, index)
        return (session, index + 1, template["role"], text, stamp, None, uid, payload)

    def check(self) -> None:
        """Fail loudly if the fast form differs from what lit-memory's codec writes."""
        for index in range(4):
            session = work.session_id(7)
            real = self._encode(work.make_message(session, index))
            row = self.row(session, index, 0)
            payload = None if real["payload"] is None else _json(real["payload"])
            assert row[2:4] == (real["role"], real["content"]) and row[6:] == (real["uid"], payload)


def _json(value: Any) -> str:
    # As lit_memory._validate.json_text encodes it.
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _chunks(rows: Iterator[Row]) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- the data set -----------------------------------------------------------------------------


class DataSet:
    """Conversations of the given lengths (in messages), written in cohort order."""

    def __init__(self, lengths: Sequence[int], cohort: int = 100) -> None:
        self.lengths, self.cohort = list(lengths), cohort

    @classmethod
    def uniform(cls, conversations: int, per_conversation: int) -> DataSet:
        """`conversations` conversations of `per_conversation` messages each."""
        return cls([per_conversation] * conversations)

    @property
    def messages(self) -> int:
        """How many messages the data set holds."""
        return sum(self.lengths)

    @property
    def key(self) -> str:
        """A short name for cache files."""
        if len(set(self.lengths)) == 1:
            return f"{len(self.lengths)}x{self.lengths[0]}c{self.cohort}"
        return "-".join(map(str, self.lengths)) + f"c{self.cohort}"

    def sessions(self) -> list[str]:
        """Every conversation's session id."""
        return [work.session_id(n) for n in range(len(self.lengths))]

    def order(self) -> Iterator[tuple[str, int]]:
        """(session, message index) in insertion order."""
        sessions = self.sessions()
        for number, index in work.cohort_order(self.lengths, self.cohort):
            yield sessions[number], index


# -- SQLite builders --------------------------------------------------------------------------


def _connect_for_build(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    return conn


def _insert_all(conn: sqlite3.Connection, statement: str, rows: Iterator[Row]) -> None:
    for chunk in _chunks(rows):
        conn.execute("BEGIN")
        conn.executemany(statement, chunk)
        conn.execute("COMMIT")


_LIT_CONVERSATION = (
    "INSERT INTO conversations (conversation_id, owner, phase, created_at, updated_at, metadata)"
    " VALUES (?, NULL, 'initial', ?, ?, NULL)"
)
_LIT_MESSAGE = (
    "INSERT INTO messages (conversation_id, seq, role, content, timestamp, metadata, uid, payload)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def build_lit(path: Path, data: DataSet) -> None:
    """lit-memory's schema (by `init_db`), then conversations and messages in bulk."""
    asyncio.run(_init_lit(str(path)))
    rows = LitRows()
    rows.check()
    stamp = _iso(_EPOCH)
    conn = _connect_for_build(path)
    try:
        _insert_all(conn, _LIT_CONVERSATION, ((s, stamp, stamp) for s in data.sessions()))
        made = (rows.row(s, i, n) for n, (s, i) in enumerate(data.order()))
        with _triggers_deferred(conn, "messages"):
            _insert_all(conn, _LIT_MESSAGE, made)
        # What the deferred triggers do row by row, done once for all rows.
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
        conn.execute(_LIT_TOUCH_ALL)
    finally:
        conn.close()


_LIT_TOUCH_ALL = """
UPDATE conversations SET updated_at = (
    SELECT MAX(timestamp) FROM messages m WHERE m.conversation_id = conversations.conversation_id
)
"""


@contextlib.contextmanager
def _triggers_deferred(conn: sqlite3.Connection, table: str) -> Iterator[None]:
    """Drop `table`'s triggers for a bulk insert and create them again, unchanged, after."""
    found = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,)
    ).fetchall()
    for name, _ in found:
        conn.execute(f'DROP TRIGGER "{name}"')
    try:
        yield
    finally:
        for _, statement in found:
            conn.execute(statement)


async def _init_lit(target: str) -> None:
    from lit_memory import AsyncConversationDB

    async with AsyncConversationDB(target) as db:
        await db.init_db()


def build_raw(path: Path, data: DataSet) -> None:
    """The minimal raw table, WAL, with its (session, id) index, filled in bulk."""
    rows = PeerRows()
    rows.check()
    conn = _connect_for_build(path)
    try:
        for statement in (*TUNING, *RAW_SCHEMA):
            conn.execute(statement)
        _insert_all(conn, RAW_INSERT, ((s, rows.text(s, i)) for s, i in data.order()))
    finally:
        conn.close()


_SQLCHAT_INSERT = "INSERT INTO message_store (session_id, message) VALUES (?, ?)"


def build_sqlchat(path: Path, data: DataSet) -> None:
    """SQLChatMessageHistory's own table (created by the class), filled in bulk."""
    from langchain_community.chat_message_histories import SQLChatMessageHistory

    history = SQLChatMessageHistory(session_id="setup", connection=f"sqlite:///{path}")
    history.engine.dispose()
    rows = PeerRows()
    rows.check()
    conn = _connect_for_build(path)
    try:
        _insert_all(conn, _SQLCHAT_INSERT, ((s, rows.text(s, i)) for s, i in data.order()))
    finally:
        conn.close()


def to_wal(source: Path, target: Path) -> None:
    """Copy a database and switch the copy to WAL (journal mode is stored in the file)."""
    shutil.copyfile(source, target)
    conn = sqlite3.connect(target)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()


BUILDERS: dict[str, Callable[[Path, DataSet], None]] = {
    "lit": build_lit,
    "raw": build_raw,
    "sqlchat": build_sqlchat,
}


def schema_key(family: str) -> str:
    """A fingerprint of a family's schema and row format, for cache file names."""
    if family == "lit":
        from lit_memory.backends import sqlite_sql

        parts = [*sqlite_sql.MIGRATIONS, LitRows().fingerprint()]
    elif family == "raw":
        parts = [*RAW_SCHEMA, PeerRows().fingerprint()]
    else:
        from importlib import metadata

        parts = [metadata.version("langchain-community"), PeerRows().fingerprint()]
    digest = hashlib.sha1("\n".join([str(GENERATOR_VERSION), *parts]).encode()).hexdigest()
    return digest[:10]


def cached_sqlite(cache: Path, family: str, data: DataSet, *, wal: bool = False) -> Path:
    """The path of a built database (building it first when the cache has none).

    `wal` asks for a WAL copy of a family built with SQLite's default journal (sqlchat).
    """
    cache.mkdir(parents=True, exist_ok=True)
    base = cache / f"{family}-{data.key}-{schema_key(family)}.db"
    if not base.exists():
        partial = base.with_suffix(".building")
        _remove_db(partial)
        BUILDERS[family](partial, data)
        _checkpoint(partial)
        partial.rename(base)
    if not wal:
        return base
    tuned = base.with_name(base.stem + "-wal.db")
    if not tuned.exists():
        to_wal(base, tuned)
    return tuned


def _checkpoint(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- PostgreSQL builders ----------------------------------------------------------------------


async def build_pg_lit(dsn: str, data: DataSet) -> None:
    """lit-memory's PostgreSQL schema (by `init_db`), then COPY conversations and messages."""
    import asyncpg

    await _init_lit(dsn)
    rows = LitRows()
    rows.check()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "conversations",
            records=[(s, "initial", _EPOCH, _EPOCH) for s in data.sessions()],
            columns=["conversation_id", "phase", "created_at", "updated_at"],
        )
        for chunk in _chunks(_pg_lit_rows(rows, data)):
            await conn.copy_records_to_table("messages", records=chunk, columns=_PG_LIT_COLUMNS)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


_PG_LIT_COLUMNS = ["conversation_id", "seq", "role", "content", "timestamp", "uid", "payload"]


def _pg_lit_rows(rows: LitRows, data: DataSet) -> Iterator[Row]:
    for order, (session, index) in enumerate(data.order()):
        row = rows.row(session, index, order)
        stamp = _EPOCH + timedelta(milliseconds=order)
        yield (row[0], row[1], row[2], row[3], stamp, row[6], row[7])


async def build_pg_chat(dsn: str, data: DataSet) -> None:
    """PostgresChatMessageHistory's table (created by the class), then COPY its rows."""
    import asyncpg
    import psycopg
    from langchain_postgres import PostgresChatMessageHistory

    async with await psycopg.AsyncConnection.connect(dsn) as setup:
        await PostgresChatMessageHistory.acreate_tables(setup, PG_TABLE)
    rows = PeerRows()
    rows.check()
    conn = await asyncpg.connect(dsn)
    try:
        made = ((uuid.UUID(s), rows.text(s, i)) for s, i in data.order())
        for chunk in _chunks(made):
            await conn.copy_records_to_table(
                PG_TABLE, records=chunk, columns=["session_id", "message"]
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
