"""The systems measured, behind one small async interface.

Every system stores and reads the same LangChain turns through its own public interface:

* ``lit history``: lit-memory's `LitChatMessageHistory` (LangChain messages in and out);
* ``lit core``: lit-memory's `AsyncConversationDB` directly (role and text in, `Message` rows
  out): the store without the LangChain codec;
* ``SQLChat ...``: langchain_community's `SQLChatMessageHistory`, sync and async engines, with
  SQLite's defaults and with WAL + synchronous=NORMAL;
* ``raw sqlite3`` / ``raw aiosqlite``: a hand-written minimal table, the practical limit; the
  ``+decode`` variants rebuild LangChain messages with ``messages_from_dict``, the plain ones
  return the stored rows;
* ``PGChat``: langchain_postgres's `PostgresChatMessageHistory` (psycopg 3, a pool).

History objects are built once per conversation and reused: an app that builds one per turn
(as `RunnableWithMessageHistory` does) pays more with the peers, whose constructors do work.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

LANGCHAIN, STORE, ROWS = "langchain", "store", "rows"
"""What a system's reads return: LangChain messages, lit-memory rows, or raw tuples."""

RAW_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS messages ("
    " id INTEGER PRIMARY KEY, session TEXT NOT NULL, message TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS idx_messages_session ON messages (session, id)",
)
RAW_INSERT = "INSERT INTO messages (session, message) VALUES (?, ?)"
RAW_SELECT = "SELECT message FROM messages WHERE session = ? ORDER BY id"
TUNING = ("PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL")
PG_TABLE = "chat_history"


def dump(message: BaseMessage) -> str:
    """A message as the peers store it: LangChain's own dict form, as JSON."""
    return json.dumps(message_to_dict(message))


def load_all(texts: Sequence[str]) -> list[BaseMessage]:
    """Stored JSON texts back to LangChain messages, with LangChain's own decoder."""
    return messages_from_dict([json.loads(text) for text in texts])


class System:
    """One system under test: open it, add turns, read conversations, close it."""

    name = "?"
    level = LANGCHAIN
    concurrent = True
    """Whether concurrent async writers make sense (sync systems block the event loop)."""

    async def open(self) -> None:
        """Connect (the database exists or is created empty)."""

    async def close(self) -> None:
        """Release every connection and thread."""

    async def add_turn(self, session: str, turn: Sequence[BaseMessage]) -> None:
        """Store one turn (its messages) in one call."""
        raise NotImplementedError

    async def read(self, session: str) -> list[Any]:
        """The conversation's messages, in order, as this system returns them."""
        raise NotImplementedError

    def texts(self, result: list[Any]) -> list[str]:
        """The message texts of a `read` result, for the round-trip check."""
        if self.level == ROWS:
            return [json.loads(row)["data"]["content"] for row in result]
        return [item.content for item in result]


class _Cached(System):
    """A system whose per-conversation history objects are built once and reused."""

    def __init__(self) -> None:
        self._histories: dict[str, Any] = {}

    def history(self, session: str) -> Any:
        """The history object of `session` (built on first use)."""
        found = self._histories.get(session)
        if found is None:
            found = self._histories[session] = self.new_history(session)
        return found

    def new_history(self, session: str) -> Any:
        """Build the history object of `session`."""
        raise NotImplementedError


# -- lit-memory ------------------------------------------------------------------------------


class LitHistory(_Cached):
    """lit-memory through `LitChatMessageHistory` (LangChain messages in and out)."""

    level = LANGCHAIN

    def __init__(self, target: str, name: str = "lit history") -> None:
        super().__init__()
        self.target, self.name = target, name
        self.db: Any = None

    async def open(self) -> None:
        """Open the store and bring its schema up to date."""
        from lit_memory import AsyncConversationDB

        self.db = AsyncConversationDB(self.target)
        await self.db.init_db()

    async def close(self) -> None:
        """Close the store."""
        await self.db.close()

    def new_history(self, session: str) -> Any:
        """A `LitChatMessageHistory` over the shared store."""
        from lit_memory_langchain.history import LitChatMessageHistory

        return LitChatMessageHistory(session, db=self.db)

    async def add_turn(self, session: str, turn: Sequence[BaseMessage]) -> None:
        """`aadd_messages`: the turn in one transaction."""
        await self.history(session).aadd_messages(turn)

    async def read(self, session: str) -> list[Any]:
        """`aget_messages`: every message, decoded to LangChain messages."""
        return list(await self.history(session).aget_messages())

    async def window(self, session: str, max_tokens: int) -> list[BaseMessage]:
        """`aget_window`: the most recent history within `max_tokens`."""
        return list(await self.history(session).aget_window(max_tokens))


class LitCore(System):
    """lit-memory's `AsyncConversationDB` directly: role and text in, `Message` rows out."""

    level = STORE

    def __init__(self, target: str, name: str = "lit core", read_last: int | None = None) -> None:
        self.target, self.name, self.read_last = target, name, read_last
        self.db: Any = None

    async def open(self) -> None:
        """Open the store and bring its schema up to date."""
        from lit_memory import AsyncConversationDB

        self.db = AsyncConversationDB(self.target)
        await self.db.init_db()

    async def close(self) -> None:
        """Close the store."""
        await self.db.close()

    async def add_turn(self, session: str, turn: Sequence[BaseMessage]) -> None:
        """`add_messages(create=True)`: the turn in one transaction."""
        rows = [{"role": _ROLES[m.type], "content": m.content} for m in turn]
        await self.db.add_messages(session, rows, create=True)

    async def read(self, session: str) -> list[Any]:
        """`get_last_messages(n)` when reading a known length, else `get_messages`."""
        if self.read_last is not None:
            return list(await self.db.get_last_messages(session, self.read_last))
        return list(await self.db.get_messages(session))


_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


# -- langchain_community SQLChatMessageHistory ------------------------------------------------


def _tune_engine(sync_engine: Any) -> None:
    """Set WAL and synchronous=NORMAL on every connection the engine opens."""
    from sqlalchemy import event

    @event.listens_for(sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in TUNING:
            cursor.execute(pragma)
        cursor.close()


class SQLChat(_Cached):
    """`SQLChatMessageHistory` on SQLite, sync or async engine, defaults or tuned."""

    def __init__(self, path: str, *, use_async: bool, tuned: bool) -> None:
        super().__init__()
        self.path, self.use_async, self.tuned = path, use_async, tuned
        self.concurrent = use_async
        engine = "async" if use_async else "sync"
        self.name = f"SQLChat {engine} {'WAL+NORMAL' if tuned else 'defaults'}"
        self.engine: Any = None

    async def open(self) -> None:
        """Create the engine and the table.

        The table is created here, as by an app that has run before: created lazily by 20
        concurrent first writes, it fails with "table already exists" (a known race).
        """
        from sqlalchemy import create_engine
        from sqlalchemy.ext.asyncio import create_async_engine

        if self.use_async:
            self.engine = create_async_engine(f"sqlite+aiosqlite:///{self.path}")
            sync_engine = self.engine.sync_engine
        else:
            self.engine = sync_engine = create_engine(f"sqlite:///{self.path}")
        if self.tuned:
            _tune_engine(sync_engine)
        if self.use_async:
            await self.history("setup")._acreate_table_if_not_exists()
        else:
            self.history("setup")

    async def close(self) -> None:
        """Dispose of the engine and its pooled connections."""
        for history in self._histories.values():
            if not self.use_async:
                history.session_maker.remove()
        self._histories.clear()
        if self.use_async:
            await self.engine.dispose()
        else:
            self.engine.dispose()

    def new_history(self, session: str) -> Any:
        """A `SQLChatMessageHistory` on the shared engine."""
        from langchain_community.chat_message_histories import SQLChatMessageHistory

        return SQLChatMessageHistory(session_id=session, connection=self.engine)

    async def add_turn(self, session: str, turn: Sequence[BaseMessage]) -> None:
        """`aadd_messages` (async engine) or `add_messages` (sync engine)."""
        history = self.history(session)
        if self.use_async:
            await history.aadd_messages(turn)
        else:
            history.add_messages(turn)

    async def read(self, session: str) -> list[Any]:
        """`aget_messages` (async engine) or `messages` (sync engine)."""
        history = self.history(session)
        return list(await history.aget_messages() if self.use_async else history.messages)


# -- raw sqlite3 / aiosqlite --------------------------------------------------------------------


class RawSqlite(System):
    """sqlite3 on a minimal (id, session, message) table, WAL + NORMAL: the practical limit."""

    concurrent = False

    def __init__(self, path: str, *, decode: bool) -> None:
        self.path, self.decode = path, decode
        self.level = LANGCHAIN if decode else ROWS
        self.name = "raw sqlite3" + (" +decode" if decode else "")
        self.conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Connect, tune, create the table and its (session, id) index."""
        self.conn = sqlite3.connect(self.path)
        for statement in (*TUNING, *RAW_SCHEMA):
            self.conn.execute(statement)
        self.conn.commit()

    async def close(self) -> None:
        """Close the connection."""
        assert self.conn is not None
        self.conn.close()

    async def add_turn(self, session: str, turn: Sequence[BaseMessage]) -> None:
        """Insert the turn's rows and commit."""
        assert self.conn is not None
        self.conn.executemany(RAW_INSERT, [(session, dump(m)) for m in turn])
        self.conn.commit()

    async def read(self, session: str) -> list[Any]:
        """The stored JSON rows, decoded to messages with ``+decode``."""
        assert self.conn is not None
        texts = [row[0] for row in self.conn.execute(RAW_SELECT, (session,))]
        return load_all(texts) if self.decode else texts


class RawAiosqlite(System):
    """aiosqlite on the same minimal table; concurrent writers share the connection under a
    lock and commit per turn (the usual hand-written way)."""

    def __init__(self, path: str, *, decode: bool) -> None:
        self.path, self.decode = path, decode
        self.level = LANGCHAIN if decode else ROWS
        self.name = "raw aiosqlite" + (" +decode" if decode else "")
        self.conn: Any = None
        self.lock: asyncio.Lock | None = None

    async def open(self) -> None:
        """Connect, tune, create the table and its (session, id) index."""
        import aiosqlite

        self.conn = await aiosqlite.connect(self.path)
        self.lock = asyncio.Lock()
        for statement in (*TUNING, *RAW_SCHEMA):
            await self.conn.execute(statement)
        await self.conn.commit()

    async def close(self) -> None:
        """Close the connection (and its thread)."""
        await self.conn.close()

    async def add_turn(self, session: str, turn: Sequence[BaseMessage]) -> None:
        """Insert the turn's rows and commit, one turn at a time."""
        rows = [(session, dump(m)) for m in turn]
        assert self.lock is not None
        async with self.lock:
            await self.conn.executemany(RAW_INSERT, rows)
            await self.conn.commit()

    async def read(self, session: str) -> list[Any]:
        """The stored JSON rows, decoded to messages with ``+decode``."""
        texts = [row[0] for row in await self.conn.execute_fetchall(RAW_SELECT, (session,))]
        return load_all(texts) if self.decode else texts


# -- langchain_postgres PostgresChatMessageHistory ---------------------------------------------


class PGChat(System):
    """`PostgresChatMessageHistory` over a psycopg 3 async pool (as large as lit-memory's)."""

    name = "PGChat"

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self.dsn, self.pool_size = dsn, pool_size
        self.pool: Any = None

    async def open(self) -> None:
        """Open the pool and create the table and index (idempotent)."""
        from langchain_postgres import PostgresChatMessageHistory
        from psycopg_pool import AsyncConnectionPool

        self.pool = AsyncConnectionPool(self.dsn, min_size=1, max_size=self.pool_size, open=False)
        await self.pool.open()
        async with self.pool.connection() as conn:
            await PostgresChatMessageHistory.acreate_tables(conn, PG_TABLE)

    async def close(self) -> None:
        """Close the pool."""
        await self.pool.close()

    async def _use(self, session: str, action: Callable[[Any], Any]) -> Any:
        from langchain_postgres import PostgresChatMessageHistory

        async with self.pool.connection() as conn:
            history = PostgresChatMessageHistory(PG_TABLE, session, async_connection=conn)
            return await action(history)

    async def add_turn(self, session: str, turn: Sequence[BaseMessage]) -> None:
        """`aadd_messages` on a pooled connection."""
        await self._use(session, lambda history: history.aadd_messages(turn))

    async def read(self, session: str) -> list[Any]:
        """`aget_messages` on a pooled connection."""
        return list(await self._use(session, lambda history: history.aget_messages()))
