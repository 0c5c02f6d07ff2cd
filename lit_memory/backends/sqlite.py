"""The embedded SQLite backend, on aiosqlite.

One writer connection owns every write: concurrent writers' operations are queued and
committed together in one `BEGIN IMMEDIATE` transaction (group commit), and each caller is
answered only once its transaction has committed. A write operation is a plain function of
the `sqlite3.Connection`; a whole batch (begin, every operation, commit or rollback) runs in
one call on the writer's own thread, so it costs one thread hop however many operations and
statements it holds. Reads go through a separate connection, so WAL lets them run beside
the writer. Several processes may share one file: SQLite's busy timeout makes them wait for
each other's write transactions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from .. import _validate as check
from .._exit import at_exit
from ..errors import (
    InvalidInputError,
    SchemaVersionError,
    StorageBusyError,
    StorageConnectionError,
    StorageCorruptError,
    StorageError,
    StorageFullError,
    StorageReadOnlyError,
)
from ..flow import PhaseFlow
from ..models import (
    Conversation,
    ConversationSummary,
    Mashup,
    Message,
    PhaseTransition,
    SearchHit,
    StoreStats,
    ToolCall,
    WebSource,
)
from ..transfer import (
    ConversationDocument,
    DocMashup,
    DocMessage,
    DocSource,
    DocToolCall,
    DocTransition,
)
from . import _rows
from . import sqlite_sql as sql
from .base import (
    Backend,
    MashupRow,
    MessageRow,
    PhaseChange,
    SourceRow,
    ToolCallRow,
    ToolCallUpdate,
)

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
"""A write operation: runs on the writer connection's thread, inside the batch's transaction."""

logger = logging.getLogger("lit_memory")

_INDEX_BATCH = 512
"""Appended messages a store lets wait before it indexes them for search."""

# SQLite's primary result codes (Python 3.11+ names them on the exception), and for older
# Pythons the exact messages SQLite gives for them. Classification never looks at text we
# compose (file names, query text), only at what SQLite reported.
_MESSAGES = {
    "database is locked": "SQLITE_BUSY",
    "database table is locked": "SQLITE_LOCKED",
    "database or disk is full": "SQLITE_FULL",
    "attempt to write a readonly database": "SQLITE_READONLY",
    "database disk image is malformed": "SQLITE_CORRUPT",
    "file is not a database": "SQLITE_NOTADB",
    "unable to open database file": "SQLITE_CANTOPEN",
    "disk I/O error": "SQLITE_IOERR",
}
DRIVER_ERRORS = (sqlite3.Error, UnicodeDecodeError)
"""What the driver raises: SQLite's errors, and undecodable text read from a damaged file."""


def _primary_code(exc: BaseException) -> str:
    name = getattr(exc, "sqlite_errorname", None)
    if name:
        return "_".join(name.split("_")[:2])  # SQLITE_BUSY_SNAPSHOT -> SQLITE_BUSY
    return _MESSAGES.get(str(exc), "")


def translate(exc: BaseException, path: str = "") -> StorageError:
    """A driver error as the matching `StorageError`, with a message that names the file
    (when given) and says what to do."""
    code = _primary_code(exc)
    text = str(exc) + (f" in {path}" if path else "")
    if code in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return StorageBusyError(
            f"the SQLite database stayed locked by another writer past the busy timeout "
            f"({text}); retry, or raise busy_timeout"
        )
    if code == "SQLITE_FULL":
        return StorageFullError(f"the disk or database is full ({text}); free space and retry")
    if code == "SQLITE_READONLY":
        return StorageReadOnlyError(
            f"the SQLite database cannot be written ({text}); check the file's and its "
            "directory's permissions and that the filesystem is not mounted read-only"
        )
    if (
        code in ("SQLITE_CORRUPT", "SQLITE_NOTADB")
        or isinstance(exc, UnicodeDecodeError)
        or str(exc).startswith("Could not decode to UTF-8")
    ):
        return StorageCorruptError(
            f"the SQLite file is not a usable database ({text}); restore it from a backup"
        )
    if code == "SQLITE_CANTOPEN":
        return StorageConnectionError(
            f"cannot open the SQLite database ({text}); check that the directory exists and "
            "that the file and its directory are readable and writable (SQLite creates "
            "-wal and -shm files beside it)"
        )
    if code == "SQLITE_IOERR":
        return StorageError(
            f"SQLite could not read or write the file ({text}); check free space, file-size "
            "limits (ulimit -f) and the disk, then retry"
        )
    return StorageError(f"SQLite failed: {text}")


def _insert_sources(
    conn: sqlite3.Connection,
    tool_call_id: int,
    rows: Sequence[SourceRow],
    stamp: str,
    skip_known_urls: bool,
) -> int:
    """Insert an existing tool call's sources; how many were new."""
    if not rows:
        return 0
    insert = sql.INSERT_NEW_WEB_SOURCE if skip_known_urls else sql.INSERT_WEB_SOURCE
    params = [
        (tool_call_id, r.url, r.title, r.snippet, r.relevance_score, r.rank, stamp) for r in rows
    ]
    return max(conn.executemany(insert, params).rowcount, 0)


def _is_foreign_key_error(exc: sqlite3.IntegrityError) -> bool:
    return "FOREIGN KEY" in str(exc)


def _split_script(script: str) -> list[str]:
    """Split a migration into statements (trigger bodies hold semicolons of their own)."""
    statements: list[str] = []
    current = ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n\t;"):
                statements.append(current.strip())
            current = ""
    return statements


async def _execute(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` run on `conn`'s own thread, the only thread that may touch `conn._conn`."""
    # aiosqlite has no public way to run a function on its connection thread; `_execute` is
    # what its own methods use. It is private, so the dependency is pinned to one minor
    # version and tests/core/test_aiosqlite_private_api.py fails loudly if it changes.
    result: T = await conn._execute(fn, *args)  # type: ignore[no-untyped-call]
    return result


def _run_batch(conn: aiosqlite.Connection, ops: list[Op], reads_first: bool) -> list[Any]:
    """On the writer's thread: run `ops` in one transaction and commit; on any error roll
    back and re-raise, so nothing of a failed batch stays behind."""
    raw = conn._conn  # read here, on the thread that owns it, never on the event loop's
    try:
        # A first statement that is DML opens BEGIN IMMEDIATE implicitly (the connection's
        # isolation level); one that reads first needs the lock before it reads.
        if reads_first:
            raw.execute("BEGIN IMMEDIATE")
        results = [op(raw) for op in ops]
        raw.commit()
    except BaseException:
        _rollback(raw)
        raise
    return results


def _rollback(raw: sqlite3.Connection) -> None:
    """Roll back whatever the failed batch began (a no-op when nothing began)."""
    try:
        raw.rollback()
    except Exception:  # noqa: S110 - the original error is what the caller needs
        pass


class _GroupCommitWriter:
    """Runs queued write operations on one connection, many per transaction."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self._path = path
        self._pending: list[tuple[Op, bool, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, op: Op, *, reads_first: bool = False) -> Any:
        """Queue `op`; return its result once the transaction holding it has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((op, reads_first, future))
        if self._task is None:
            # A task of its own, so a caller's cancellation never aborts others' batch.
            self._task = loop.create_task(self._drain())
        return await future

    async def wait_idle(self) -> None:
        """Wait until every queued operation has been committed or failed."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._commit(batch)
        finally:
            self._task = None

    async def _commit(self, batch: list[tuple[Op, bool, asyncio.Future[Any]]]) -> None:
        ops = [op for op, _, _ in batch]
        try:
            # One hop: the whole transaction (or its rollback) happens on the writer's thread.
            results = await _execute(self._conn, _run_batch, self._conn, ops, batch[0][1])
        except Exception as exc:
            if len(batch) > 1 and not _is_busy(exc):
                # Isolate the failing operation: the others still get their own transaction.
                for item in batch:
                    await self._commit([item])
                return
            # A lock held past the busy timeout fails the whole batch at once: retrying each
            # operation alone would make the last caller wait one timeout per operation.
            for _, _, future in batch:
                _fail(future, exc, self._path)
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


_OPEN_BACKENDS: weakref.WeakSet[SQLiteBackend] = weakref.WeakSet()


def _stop_open_backends() -> None:
    for backend in list(_OPEN_BACKENDS):
        backend._stop_threads()


# A script that never closes its store must still exit (after facades closed gracefully).
at_exit(_stop_open_backends, order=20)


def _is_busy(exc: Exception) -> bool:
    return isinstance(exc, DRIVER_ERRORS) and isinstance(translate(exc), StorageBusyError)


def _fail(future: asyncio.Future[Any], exc: Exception, path: str) -> None:
    if future.done():
        return
    if isinstance(exc, DRIVER_ERRORS):
        error: BaseException = translate(exc, path)
        error.__cause__ = exc
    else:
        error = exc
    future.set_exception(error)


class SQLiteBackend(Backend):
    """SQLite through aiosqlite: WAL, busy timeout, `synchronous=NORMAL`, foreign keys on."""

    dialect = "sqlite"

    def __init__(self, path: str, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._memory = path == ":memory:" or path.startswith("file::memory:")
        self._writer_conn: aiosqlite.Connection | None = None
        self._reader_conn: aiosqlite.Connection | None = None
        self._writer: _GroupCommitWriter | None = None
        self._open_lock = asyncio.Lock()
        self._reopen = False
        # Search indexing in batches (schema v5): set once the schema has it.
        self._deferred_index = False
        self._unindexed = 0
        """Messages this store appended since it last indexed (touched on the writer thread)."""

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the writer and reader connections (creating the file owner-only); callers
        opening at the same time share one set of connections."""
        if self._writer is not None:
            return
        async with self._open_lock:
            if self._writer is None:
                await self._open()

    async def _open(self) -> None:
        if not self._memory:
            self._create_private_file()
        writer = await self._connect("IMMEDIATE")
        try:
            reader = writer if self._memory else await self._connect(None)
        except BaseException:
            await writer.close()  # failed or cancelled half-way: leak no connection
            raise
        self._writer_conn, self._reader_conn = writer, reader
        self._writer = _GroupCommitWriter(writer, self.path)
        _OPEN_BACKENDS.add(self)

    def _create_private_file(self) -> None:
        path = Path(self.path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise StorageConnectionError(
                f"cannot create the SQLite file {self.path}: {exc}"
            ) from exc

    async def _connect(self, isolation: str | None) -> aiosqlite.Connection:
        try:
            conn = await aiosqlite.connect(
                self.path, timeout=self.busy_timeout, isolation_level=isolation
            )
        except DRIVER_ERRORS as exc:
            raise translate(exc, self.path) from exc
        try:
            await self._apply_pragmas(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _apply_pragmas(self, conn: aiosqlite.Connection) -> None:
        deadline = asyncio.get_running_loop().time() + self.busy_timeout
        for pragma in sql.PRAGMAS:
            while True:
                try:
                    await conn.execute(pragma)
                    break
                except sqlite3.OperationalError as exc:
                    # Switching a fresh file to WAL can report busy without waiting.
                    if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                        raise translate(exc, self.path) from exc
                    await asyncio.sleep(0.01)
                except DRIVER_ERRORS as exc:
                    raise translate(exc, self.path) from exc

    async def close(self) -> None:
        """Commit what is queued and index the messages this store appended for search, then
        close both connections and their threads. An indexing failure is raised once the
        connections are closed (the messages themselves are committed already)."""
        _OPEN_BACKENDS.discard(self)
        writer, self._writer = self._writer, None
        failure: Exception | None = None
        if writer is not None:
            if self._unindexed:
                try:
                    await writer.submit(self._index_op)
                except Exception as exc:
                    failure = exc
            await writer.wait_idle()
        conns = {id(c): c for c in (self._writer_conn, self._reader_conn) if c is not None}
        self._writer_conn = self._reader_conn = None
        for conn in conns.values():
            await conn.close()
        if failure is not None:
            raise failure

    def _stop_threads(self) -> None:
        """Stop the connection threads without the event loop (at exit, when a store was left
        open): committed data is on disk; writes not yet answered are not committed."""
        for conn in {id(c): c for c in (self._writer_conn, self._reader_conn) if c}.values():
            conn.stop()

    @property
    def is_open(self) -> bool:
        """Whether the connections are open."""
        return self._writer is not None

    # -- plumbing ---------------------------------------------------------------------------

    def _require_writer(self) -> _GroupCommitWriter:
        if self._writer is None:
            raise StorageConnectionError(
                "the store is closed; open it with `async with` or init_db()"
            )
        return self._writer

    async def _write(self, op: Op, *, reads_first: bool = False) -> Any:
        if self._reopen:
            # SQLite keeps a connection that found its file read-only read-only for good:
            # only new connections see the file writable again once the fault is gone.
            self._reopen = False
            await self.close()
            await self.open()
        try:
            return await self._require_writer().submit(op, reads_first=reads_first)
        except StorageReadOnlyError:
            self._reopen = not self._memory
            raise

    async def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        conn = self._reader_conn
        if conn is None:
            raise StorageConnectionError(
                "the store is closed; open it with `async with` or init_db()"
            )
        try:
            return list(await conn.execute_fetchall(query, params))
        except DRIVER_ERRORS as exc:
            raise translate(exc, self.path) from exc

    # -- migrations -------------------------------------------------------------------------

    @property
    def latest_version(self) -> int:
        """The schema version this code migrates to."""
        return len(sql.MIGRATIONS)

    async def schema_version(self) -> int:
        """The database's schema version (0 when it has none)."""
        if not await self._fetch(sql.SELECT_HAS_MIGRATIONS_TABLE):
            return 0
        rows = await self._fetch(sql.SELECT_VERSION)
        return int(rows[0][0])

    async def migrate(self, target: int | None = None) -> tuple[int, int]:
        """Apply missing migrations inside one BEGIN IMMEDIATE transaction per call."""
        goal = self.latest_version if target is None else target

        def op(conn: sqlite3.Connection) -> tuple[int, int]:
            conn.execute(sql.CREATE_MIGRATIONS_TABLE)
            before = int(conn.execute(sql.SELECT_VERSION).fetchall()[0][0])
            if before > self.latest_version:
                return before, -1
            now = _rows.iso(datetime.now(timezone.utc))
            for version in range(before + 1, goal + 1):
                for statement in _split_script(sql.MIGRATIONS[version - 1]):
                    conn.execute(statement)
                conn.execute(sql.INSERT_VERSION, (version, now))
            return before, max(before, goal)

        before, after = await self._write(op, reads_first=True)
        self._deferred_index = max(before, after) >= sql.DEFERRED_INDEX_VERSION
        if after < 0:
            raise SchemaVersionError(
                f"the database {self.path} has schema version {before}, newer than this "
                f"lit-memory knows ({self.latest_version}); upgrade lit-memory to use it"
            )
        return before, after

    # -- conversations ----------------------------------------------------------------------

    async def create_conversation(
        self,
        conversation_id: str,
        owner: str | None,
        phase: str,
        metadata: str | None,
        now: datetime,
    ) -> bool:
        """Insert a conversation; False when the id already exists."""
        stamp = _rows.iso(now)
        params = (conversation_id, owner, phase, stamp, stamp, metadata)

        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(sql.INSERT_CONVERSATION, params).rowcount == 1

        return bool(await self._write(op))

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation, or None."""
        rows = await self._fetch(sql.SELECT_CONVERSATION, (conversation_id,))
        return _rows.conversation(rows[0]) if rows else None

    async def get_summary(self, conversation_id: str) -> ConversationSummary | None:
        """The conversation with its counts, or None."""
        rows = await self._fetch(sql.SELECT_SUMMARY, (conversation_id,))
        return _rows.summary(rows[0]) if rows else None

    async def list_conversations(
        self,
        *,
        phase: str | None,
        owner: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[ConversationSummary]:
        """Conversations by last activity, newest first."""
        cursor = (_rows.iso(before[0]), before[1]) if before else None
        query, params = sql.list_conversations(phase=phase, owner=owner, before=cursor, limit=limit)
        return [_rows.summary(r) for r in await self._fetch(query, params)]

    async def change_phase(
        self,
        conversation_id: str,
        to_phase: str,
        *,
        reason: str | None,
        run_id: str | None,
        flow: PhaseFlow | None,
        now: datetime,
        only_from: frozenset[str] | None = None,
    ) -> PhaseChange:
        """Move the conversation and record the transition (or the refusal) atomically."""
        stamp = _rows.iso(now)

        def op(conn: sqlite3.Connection) -> PhaseChange:
            rows = conn.execute(sql.SELECT_PHASE, (conversation_id,)).fetchall()
            if not rows:
                return PhaseChange(found=False)
            from_phase = rows[0][0]
            if from_phase == to_phase or (only_from is not None and from_phase not in only_from):
                return PhaseChange(found=True)
            accepted = flow is None or flow.can_transition(from_phase, to_phase)
            if accepted:
                conn.execute(sql.UPDATE_PHASE, (to_phase, stamp, conversation_id))
            params = (conversation_id, from_phase, to_phase, reason, run_id, int(accepted), stamp)
            cursor = conn.execute(sql.INSERT_TRANSITION, params)
            row = (cursor.lastrowid, *params)
            return PhaseChange(found=True, transition=_rows.transition(row))

        result: PhaseChange = await self._write(op, reads_first=True)
        return result

    async def delete_conversation(self, conversation_id: str) -> bool:
        """Delete the conversation and everything under it (foreign keys cascade)."""

        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(sql.DELETE_CONVERSATION, (conversation_id,)).rowcount == 1

        return bool(await self._write(op))

    async def clear_messages(self, conversation_id: str) -> bool:
        """Delete the conversation's messages (and their search entries), keep the rest."""

        def op(conn: sqlite3.Connection) -> bool:
            conn.execute(sql.CLEAR_MESSAGES, (conversation_id,))
            return bool(conn.execute(sql.SELECT_PHASE, (conversation_id,)).fetchall())

        return bool(await self._write(op))

    # -- messages ---------------------------------------------------------------------------

    async def add_messages(
        self,
        conversation_id: str,
        rows: Sequence[MessageRow],
        now: datetime,
        *,
        create_owner: tuple[str | None] | None = None,
    ) -> int | None:
        """Append messages in one transaction; how many were new, or None if no conversation."""
        stamp = _rows.iso(now)
        params = [
            (conversation_id, r.role, r.content, stamp, r.metadata, r.uid, r.payload) for r in rows
        ]
        create = None
        if create_owner is not None:
            create = (conversation_id, create_owner[0], "initial", stamp, stamp, None)

        def op(conn: sqlite3.Connection) -> int | None:
            if not params:  # nothing to add: only make sure the conversation exists
                if create is not None:  # always: without it the call returns before writing
                    conn.execute(sql.INSERT_CONVERSATION, create)
                return 0
            try:
                cursor = conn.executemany(sql.INSERT_MESSAGE, params)
            except sqlite3.IntegrityError as exc:
                # The conversation is missing: the failed statement wrote nothing.
                if not _is_foreign_key_error(exc):
                    raise
                if create is None:
                    return None
                conn.execute(sql.INSERT_CONVERSATION, create)
                cursor = conn.executemany(sql.INSERT_MESSAGE, params)
            added = max(cursor.rowcount, 0)
            if self._deferred_index:
                self._unindexed += added
                if self._unindexed >= _INDEX_BATCH:
                    self._index_op(conn)  # in this transaction: one index segment per batch
            return added

        if not params and create is None:
            return 0 if await self.get_conversation(conversation_id) else None
        result: int | None = await self._write(op)
        return result

    async def get_messages(
        self, conversation_id: str, *, after_seq: int, limit: int | None, offset: int
    ) -> list[Message]:
        """Messages after `after_seq`, in order."""
        params = (conversation_id, after_seq, -1 if limit is None else limit, offset)
        return [_rows.message(r) for r in await self._fetch(sql.SELECT_MESSAGES, params)]

    async def get_last_messages(
        self, conversation_id: str, n: int, *, before_seq: int | None
    ) -> list[Message]:
        """The last `n` messages in chronological order."""
        bound = (1 << 62) if before_seq is None else before_seq
        rows = await self._fetch(sql.SELECT_LAST_MESSAGES, (conversation_id, bound, n))
        return [_rows.message(r) for r in reversed(rows)]  # read newest first

    async def count_messages(self, conversation_id: str) -> int:
        """How many messages the conversation holds."""
        rows = await self._fetch(sql.COUNT_MESSAGES, (conversation_id,))
        return int(rows[0][0])

    # -- tool calls and sources ---------------------------------------------------------------

    async def add_tool_call(
        self,
        row: ToolCallRow,
        *,
        create_owner: tuple[str | None] | None = None,
        sources: Sequence[SourceRow] = (),
        skip_known_urls: bool = False,
    ) -> int | None:
        """Insert a tool call (and its sources); its id, or None (conversation missing, or
        run id recorded). With `create_owner`, a missing conversation is created first."""
        params = (
            row.conversation_id, row.tool_type, row.tool_name, row.input_data, row.output_data,
            row.status, _rows.iso(row.created_at), _opt_iso(row.started_at),
            _opt_iso(row.completed_at), row.duration_ms, row.error_message, row.error_type,
            row.run_id, row.parent_run_id, row.call_id,
        )  # fmt: skip
        stamp = _rows.iso(row.created_at)
        create = None
        if create_owner is not None:
            create = (row.conversation_id, create_owner[0], "initial", stamp, stamp, None)

        def op(conn: sqlite3.Connection) -> int | None:
            try:
                cursor = conn.execute(sql.INSERT_TOOL_CALL, params)
            except sqlite3.IntegrityError as exc:
                if not _is_foreign_key_error(exc):
                    raise
                if create is None:
                    return None
                conn.execute(sql.INSERT_CONVERSATION, create)
                cursor = conn.execute(sql.INSERT_TOOL_CALL, params)
            if cursor.rowcount != 1:
                return None
            tool_call_id = cursor.lastrowid
            assert tool_call_id is not None
            _insert_sources(conn, tool_call_id, sources, stamp, skip_known_urls)
            return tool_call_id

        result: int | None = await self._write(op)
        return result

    async def update_tool_call(
        self,
        tool_call_id: int,
        update: ToolCallUpdate,
        *,
        sources: Sequence[SourceRow] = (),
        skip_known_urls: bool = False,
    ) -> bool:
        """Apply the update and add the sources; False when the tool call does not exist."""
        params = (
            update.output_data, update.status, update.error_message, update.error_type,
            update.call_id, _opt_iso(update.completed_at), update.duration_ms, tool_call_id,
        )  # fmt: skip
        touch = (_rows.iso(update.now), tool_call_id)

        def op(conn: sqlite3.Connection) -> bool:
            if conn.execute(sql.UPDATE_TOOL_CALL, params).rowcount != 1:
                return False
            conn.execute(sql.TOUCH_CONVERSATION_OF_TOOL_CALL, touch)
            _insert_sources(conn, tool_call_id, sources, touch[0], skip_known_urls)
            return True

        return bool(await self._write(op))

    async def get_tool_call(self, tool_call_id: int) -> ToolCall | None:
        """One tool call with its sources, or None."""
        rows = await self._fetch(sql.SELECT_TOOL_CALL, (tool_call_id,))
        if not rows:
            return None
        sources = await self._fetch(sql.SELECT_SOURCES_OF_TOOL_CALL, (tool_call_id,))
        return _rows.tool_call(rows[0], [_rows.web_source(s) for s in sources])

    async def get_tool_call_by_run(self, conversation_id: str, run_id: str) -> ToolCall | None:
        """The tool call recorded for a run id, with its sources, or None."""
        rows = await self._fetch(sql.SELECT_TOOL_CALL_BY_RUN, (conversation_id, run_id))
        return await self.get_tool_call(rows[0][0]) if rows else None

    async def get_tool_calls(self, conversation_id: str, *, with_sources: bool) -> list[ToolCall]:
        """The conversation's tool calls in order, with their sources when asked."""
        calls = [
            _rows.tool_call(r) for r in await self._fetch(sql.SELECT_TOOL_CALLS, (conversation_id,))
        ]
        if with_sources and calls:
            calls = _rows.attach_sources(calls, await self.get_web_sources(conversation_id))
        return calls

    async def add_web_sources(
        self,
        tool_call_id: int,
        rows: Sequence[SourceRow],
        now: datetime,
        *,
        skip_known_urls: bool = False,
    ) -> int | None:
        """Insert sources for a tool call; how many were new, or None if the call is missing."""
        stamp = _rows.iso(now)

        def op(conn: sqlite3.Connection) -> int | None:
            if not conn.execute(sql.SELECT_TOOL_CALL_EXISTS, (tool_call_id,)).fetchall():
                return None
            return _insert_sources(conn, tool_call_id, rows, stamp, skip_known_urls)

        result: int | None = await self._write(op, reads_first=True)
        return result

    async def get_web_sources(self, conversation_id: str) -> list[WebSource]:
        """The conversation's sources by tool call, then rank."""
        rows = await self._fetch(sql.SELECT_SOURCES_OF_CONVERSATION, (conversation_id,))
        return [_rows.web_source(r) for r in rows]

    # -- mashups and phase history -----------------------------------------------------------

    async def create_mashup(self, row: MashupRow) -> int | None:
        """Insert a mashup; its id, or None when the conversation or tool call is missing."""
        params = (
            row.conversation_id, row.title, row.description, row.audio_file_path, row.metadata,
            row.tool_call_id, _rows.iso(row.created_at),
        )  # fmt: skip

        def op(conn: sqlite3.Connection) -> int | None:
            try:
                cursor = conn.execute(sql.INSERT_MASHUP, params)
            except sqlite3.IntegrityError as exc:
                if _is_foreign_key_error(exc):
                    return None
                raise
            return cursor.lastrowid if cursor.rowcount == 1 else None

        result: int | None = await self._write(op)
        return result

    async def get_mashups(self, conversation_id: str) -> list[Mashup]:
        """The conversation's mashups in creation order."""
        return [_rows.mashup(r) for r in await self._fetch(sql.SELECT_MASHUPS, (conversation_id,))]

    async def get_phase_history(self, conversation_id: str) -> list[PhaseTransition]:
        """The conversation's transitions and refusals in order."""
        rows = await self._fetch(sql.SELECT_TRANSITIONS, (conversation_id,))
        return [_rows.transition(r) for r in rows]

    # -- search, retention, statistics, import ------------------------------------------------

    def _index_op(self, conn: sqlite3.Connection) -> None:
        """On the writer's thread, in its transaction: index every message waiting for it
        (this store's and any other process's)."""
        conn.execute(sql.INDEX_PENDING_MESSAGES)
        conn.execute(sql.MARK_MESSAGES_INDEXED)
        self._unindexed = 0

    async def index_pending(self) -> None:
        """Index the messages that wait for it, so a search sees every stored message."""
        if not self._deferred_index:
            return
        if not (await self._fetch(sql.SELECT_HAS_PENDING_MESSAGES))[0][0]:
            return
        try:
            await self._write(self._index_op)
        except StorageReadOnlyError:
            # The messages are intact; only the newest (appended since the writer last
            # indexed, at most a few hundred per process) cannot be found by this search.
            logger.warning(
                "lit-memory: %s is read-only, so the messages appended since it was last "
                "indexed are left out of this search",
                self.path,
            )

    async def search_messages(
        self,
        query: str,
        *,
        raw: bool,
        conversation_id: str | None,
        owner: str | None,
        limit: int,
    ) -> list[SearchHit]:
        """Ranked FTS5 matches (bm25), best first, over every message stored so far."""
        await self.index_pending()
        match = query if raw else sql.fts_words(query)
        statement, params = sql.search_messages(
            match, conversation_id=conversation_id, owner=owner, limit=limit
        )
        try:
            rows = await self._fetch(statement, params)
        except StorageError as exc:
            # A raw query is the caller's FTS5 text: SQLite reports its mistakes as
            # OperationalError ("fts5: syntax error", "unterminated string", ...).
            if raw and type(exc) is StorageError:
                raise InvalidInputError(f"bad full-text query {query!r}: {exc.__cause__}") from exc
            raise
        return [_rows.hit(r) for r in rows]

    async def delete_conversations(
        self,
        *,
        owner: str | None,
        idle_before: datetime | None,
        phase: str | None,
        dry_run: bool,
    ) -> list[ConversationSummary]:
        """Select and (unless dry_run) delete matching conversations in one transaction."""
        cutoff = None if idle_before is None else _rows.iso(idle_before)
        query, params = sql.select_conversations_to_delete(
            owner=owner, idle_before=cutoff, phase=phase, limit=-1
        )
        if dry_run:
            return [_rows.summary(r) for r in await self._fetch(query, params)]

        def op(conn: sqlite3.Connection) -> list[ConversationSummary]:
            found = [_rows.summary(r) for r in conn.execute(query, params).fetchall()]
            ids = [(c.conversation_id,) for c in found]
            conn.executemany(sql.DELETE_CONVERSATION, ids)
            return found

        result: list[ConversationSummary] = await self._write(op, reads_first=True)
        return result

    async def stats(self, *, busiest: int) -> StoreStats:
        """Table counts, file size, schema version and the busiest conversations."""
        counts = (await self._fetch(sql.COUNT_ALL))[0]
        size = (await self._fetch(sql.DATABASE_SIZE))[0][0]
        top = [_rows.summary(r) for r in await self._fetch(sql.SELECT_BUSIEST, (busiest,))]
        top.sort(key=lambda c: (-c.message_count, c.conversation_id))
        return _rows.stats(counts, size, await self.schema_version(), top)

    async def import_conversation(self, document: ConversationDocument, *, replace: bool) -> bool:
        """Insert every row of the document with its own timestamps, in one transaction."""
        cid = document.conversation.conversation_id

        def op(conn: sqlite3.Connection) -> bool:
            exists = conn.execute(sql.SELECT_PHASE, (cid,)).fetchall()
            if exists and not replace:
                return False
            conn.execute(sql.DELETE_CONVERSATION, (cid,))
            _insert_document(conn, document)
            return True

        return bool(await self._write(op, reads_first=True))


def _insert_document(conn: sqlite3.Connection, doc: ConversationDocument) -> None:
    c, cid = doc.conversation, doc.conversation.conversation_id
    meta = check.json_text("metadata", c.metadata)
    conn.execute(
        sql.IMPORT_CONVERSATION,
        (cid, c.owner, c.phase.value, _rows.iso(c.created_at), _rows.iso(c.updated_at), meta),
    )
    conn.executemany(sql.IMPORT_MESSAGE, [_doc_message(cid, m) for m in doc.messages])
    call_ids: list[int | None] = []
    for call in doc.tool_calls:
        cursor = conn.execute(sql.INSERT_TOOL_CALL, _doc_tool_call(cid, call))
        call_ids.append(cursor.lastrowid)
        sources = [_doc_source(cid, cursor.lastrowid, s) for s in call.sources]
        conn.executemany(sql.IMPORT_WEB_SOURCE, sources)
    mashups = [_doc_mashup(cid, m, call_ids) for m in doc.mashups]
    conn.executemany(sql.INSERT_MASHUP, mashups)
    transitions = [_doc_transition(cid, t) for t in doc.phase_transitions]
    conn.executemany(sql.IMPORT_TRANSITION, transitions)
    # The inserts above move "last activity" forward; the document's value is the truth.
    conn.execute(sql.RESTORE_UPDATED_AT, (_rows.iso(c.updated_at), cid))


def _opt_iso(value: datetime | None) -> str | None:
    return None if value is None else _rows.iso(value)


def _doc_message(cid: str, m: DocMessage) -> tuple[Any, ...]:
    meta, payload = check.json_text("metadata", m.metadata), check.json_text("payload", m.payload)
    return (cid, m.seq, m.role.value, m.content, _rows.iso(m.timestamp), meta, m.uid, payload)


def _doc_tool_call(cid: str, t: DocToolCall) -> tuple[Any, ...]:
    return (
        cid, t.tool_type.value, t.tool_name, t.input_data, t.output_data, t.status.value,
        _rows.iso(t.created_at), _opt_iso(t.started_at), _opt_iso(t.completed_at),
        t.duration_ms, t.error_message, t.error_type, t.run_id, t.parent_run_id, t.call_id,
    )  # fmt: skip


def _doc_source(cid: str, tool_call_id: int | None, s: DocSource) -> tuple[Any, ...]:
    return (
        cid, tool_call_id, s.url, s.title, s.snippet, s.relevance_score, s.rank,
        _rows.iso(s.created_at),
    )  # fmt: skip


def _doc_mashup(cid: str, m: DocMashup, call_ids: list[int | None]) -> tuple[Any, ...]:
    call = None if m.tool_call_ref is None else call_ids[m.tool_call_ref - 1]
    meta = check.json_text("metadata", m.metadata)
    return (
        cid, m.title, m.description, m.audio_file_path, meta, call, _rows.iso(m.created_at),
    )  # fmt: skip


def _doc_transition(cid: str, t: DocTransition) -> tuple[Any, ...]:
    return (
        cid, t.from_phase.value, t.to_phase.value, t.reason, t.run_id, int(t.accepted),
        _rows.iso(t.created_at),
    )  # fmt: skip
