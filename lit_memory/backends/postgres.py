"""The PostgreSQL backend, on asyncpg with a connection pool.

Each operation borrows a pooled connection for one statement or one transaction; there is
no lock around the pool, so independent conversations are read and written in parallel, by
many tasks, processes and machines. Every write to a conversation locks that conversation's
row, which queues writers of one conversation behind each other: that is what keeps each
conversation's message `seq` gap-free and in commit order. Most writes lock it first
(`SELECT ... FOR UPDATE`, in a transaction); an append is one statement that locks it as it
goes, and takes the first way only when another writer changed the conversation meanwhile.
Needs PostgreSQL 15 or newer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from .. import _validate as check
from ..errors import (
    ConfigurationError,
    LitMemoryError,
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
from ..transfer import ConversationDocument, DocMashup, DocMessage, DocToolCall, DocTransition
from . import _rows
from . import postgres_sql as sql
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
Connection = Any  # an asyncpg.Connection
Op = Callable[[Connection], Awaitable[T]]

# What asyncpg raises: server errors, client-side errors, and socket errors and timeouts.
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)
_BUSY = {"55P03", "40001", "40P01", "57014"}  # lock timeout, serialization, deadlock, cancel
_READ_ONLY = {"25006"}
_NO_PRIVILEGE = {"42501"}
_FULL = {"53100"}
_CORRUPT = {"XX001", "XX002"}
# Connection lost or refused: class 08, operator shutdown, bad login, missing database,
# too many connections.
_CONNECTION_PREFIXES = ("08", "57P", "28", "3D", "53300")


def translate(exc: BaseException) -> StorageError:
    """An asyncpg or socket error as the matching `StorageError`, with what to do about it."""
    state = str(getattr(exc, "sqlstate", None) or "")
    text = f"{type(exc).__name__}: {exc}" + (f" [SQLSTATE {state}]" if state else "")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return StorageBusyError(
            f"PostgreSQL did not answer within command_timeout ({text}); retry, or raise "
            "command_timeout"
        )
    if state in _BUSY:
        return StorageBusyError(f"PostgreSQL could not get a lock in time ({text}); retry")
    if state in _READ_ONLY:
        return StorageReadOnlyError(
            f"the PostgreSQL session is read-only ({text}); connect to the primary, or to a "
            "database and role where default_transaction_read_only is off"
        )
    if state in _NO_PRIVILEGE:
        return StorageReadOnlyError(
            f"the PostgreSQL role lacks a privilege ({text}); grant it the lit-memory tables"
        )
    if state in _FULL:
        return StorageFullError(f"the PostgreSQL server's disk is full ({text}); free space")
    if state in _CORRUPT:
        return StorageCorruptError(f"PostgreSQL reports corrupt data ({text}); restore a backup")
    if _is_connection_error(exc, state):
        return StorageConnectionError(
            f"lost or could not open the connection to PostgreSQL ({text}); check that the "
            "server is up and the URL, role and database are right, then retry"
        )
    return StorageError(f"PostgreSQL failed: {text}")


def _is_connection_error(exc: BaseException, state: str) -> bool:
    if state.startswith(_CONNECTION_PREFIXES) or isinstance(exc, OSError):
        return True
    # asyncpg's client-side "connection is closed" / "pool is closed" errors carry no SQLSTATE.
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


def _count(status: str) -> int:
    """The row count of a command status such as ``INSERT 0 1`` or ``DELETE 1``."""
    return int(status.rsplit(" ", 1)[-1])


async def _keep_session(conn: Connection) -> None:
    """The pool's reset on release, in place of asyncpg's RESET ALL / UNLISTEN / unlock round
    trip: the store leaves no session state behind (its advisory locks are transaction-scoped,
    and it uses no LISTEN, SET or cursors); asyncpg still rolls back an open transaction."""


_STORED_UID = object()
"""What a one-statement append returns when a message's uid is stored already."""


async def _lock_conversation(conn: Connection, conversation_id: str) -> str | None:
    """Lock the conversation's row until commit; its phase, or None when it is missing."""
    phase: str | None = await conn.fetchval(sql.LOCK_CONVERSATION, conversation_id)
    return phase


class PostgresBackend(Backend):
    """PostgreSQL through an asyncpg pool (created on `open`, or given and then not closed).

    `statement_cache_size=0` turns asyncpg's prepared-statement cache off, as transaction
    poolers such as PgBouncer need; `command_timeout` bounds each statement, in seconds.
    """

    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        pool: Any = None,
        min_size: int = 1,
        max_size: int = 10,
        statement_cache_size: int | None = None,
        command_timeout: float | None = None,
    ) -> None:
        scheme, sep, rest = url.partition("://")
        # asyncpg reads postgresql:// and postgres:// only; drop a "+driver" suffix.
        self.url = f"{scheme.split('+')[0]}{sep}{rest}"
        self._given_pool = pool
        self._pool_options: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "reset": _keep_session,
        }
        if statement_cache_size is not None:
            self._pool_options["statement_cache_size"] = statement_cache_size
        if command_timeout is not None:
            self._pool_options["command_timeout"] = command_timeout
        self._pool: Any = None
        self._keeper: AsyncGenerator[None, None] | None = None  # set when the pool is ours
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the pool belongs to
        self._moved = False  # the pool was dropped because the store moved to another loop
        self._open_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        # The URL may carry a password: leave it out.
        return f"<PostgresBackend open={self.is_open}>"

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the connection pool, or adopt the given one (idempotent)."""
        if self._pool is not None:
            return
        if self._given_pool is not None:
            self._pool = self._given_pool
            return
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._pool is None:
                pool = await self._create_pool()
                keeper = _keep(pool)
                await keeper.__anext__()  # started: the running loop now finalises it
                self._pool, self._keeper = pool, keeper
                self._loop, self._moved = asyncio.get_running_loop(), False

    async def _create_pool(self) -> Any:
        try:
            return await asyncpg.create_pool(self.url, **self._pool_options)
        except asyncpg.ClientConfigurationError as exc:
            raise ConfigurationError(f"bad PostgreSQL URL or option: {exc}") from exc
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise StorageConnectionError(
                "PostgreSQL did not accept a connection in time; check that the server is up "
                "and reachable"
            ) from exc
        except _DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    async def close(self) -> None:
        """Wait for borrowed connections to come back, then close the pool we created."""
        pool, keeper = self._pool, self._keeper
        self._pool = self._keeper = self._open_lock = None
        self._moved = False
        if keeper is None:
            return  # closed already, or the pool is the caller's
        if self._loop is not asyncio.get_running_loop():
            _abandon(pool)
            return
        try:
            await keeper.aclose()
        except _DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    @property
    def is_open(self) -> bool:
        """Whether the pool is open."""
        return self._pool is not None

    # -- plumbing ---------------------------------------------------------------------------

    def _require_pool(self) -> Any:
        if self._pool is None:
            raise StorageConnectionError(
                "the store is closed; open it with `async with` or init_db()"
            )
        return self._pool

    async def _current_pool(self) -> Any:
        """The pool; reopened on this event loop first if the store has moved to it."""
        if self._keeper is not None and self._loop is not asyncio.get_running_loop():
            # asyncpg connections belong to the loop that opened them (aiosqlite's do not):
            # a store that moved on, as with one asyncio.run() per call, reopens here. The
            # old pool goes at once, so tasks arriving meanwhile wait in open() for the new.
            _abandon(self._pool)
            self._pool = self._keeper = self._open_lock = None
            self._moved = True
        if self._pool is None and self._moved:
            await self.open()
        return self._require_pool()

    async def _write(self, op: Op[T]) -> T:
        """Run `op` in one transaction on a pooled connection; driver errors translated."""
        pool = await self._current_pool()
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await op(conn)
        except LitMemoryError:
            raise  # ours already (StorageError is an OSError too)
        except _DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    async def _fetch(self, query: str, *args: Any) -> list[Any]:
        pool = await self._current_pool()
        try:
            return list(await pool.fetch(query, *args))
        except _DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    async def _fetchrow(self, query: str, *args: Any) -> Any:
        rows = await self._fetch(query, *args)
        return rows[0] if rows else None

    # -- migrations -------------------------------------------------------------------------

    @property
    def latest_version(self) -> int:
        """The schema version this code migrates to."""
        return len(sql.MIGRATIONS)

    async def schema_version(self) -> int:
        """The database's schema version (0 when it has none)."""
        if not (await self._fetchrow(sql.SELECT_HAS_MIGRATIONS_TABLE))[0]:
            return 0
        return int((await self._fetchrow(sql.SELECT_VERSION))[0])

    async def migrate(self, target: int | None = None) -> tuple[int, int]:
        """Apply missing migrations in one transaction under a per-database advisory lock."""
        goal = self.latest_version if target is None else target
        # An up-to-date schema is only read: no lock to queue for, and a read-only session
        # (a hot standby, default_transaction_read_only) can still open the store.
        current = await self.schema_version()
        if current <= self.latest_version and goal <= current:
            return current, current

        async def op(conn: Connection) -> tuple[int, int]:
            # The lock comes first: concurrent starters queue here, then see the winner's work.
            await conn.execute(sql.LOCK_MIGRATIONS, sql.MIGRATION_LOCK_KEY)
            await conn.execute(sql.CREATE_MIGRATIONS_TABLE)
            before = int(await conn.fetchval(sql.SELECT_VERSION))
            if before > self.latest_version:
                raise self._too_new(before)
            if before < goal:
                _require_server_version(conn)
            now = datetime.now(timezone.utc)
            for version in range(before + 1, goal + 1):
                await conn.execute(sql.MIGRATIONS[version - 1])
                await conn.execute(sql.INSERT_VERSION, version, now)
            return before, max(before, goal)

        if current > self.latest_version:
            raise self._too_new(current)
        return await self._write(op)

    def _too_new(self, version: int) -> SchemaVersionError:
        return SchemaVersionError(
            f"the PostgreSQL database has schema version {version}, newer than this "
            f"lit-memory knows ({self.latest_version}); upgrade lit-memory to use it"
        )

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

        async def op(conn: Connection) -> bool:
            status = await conn.execute(
                sql.INSERT_CONVERSATION, conversation_id, owner, phase, now, metadata
            )
            return _count(status) == 1

        return await self._write(op)

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation, or None."""
        row = await self._fetchrow(sql.SELECT_CONVERSATION, conversation_id)
        return None if row is None else _rows.conversation(row)

    async def get_summary(self, conversation_id: str) -> ConversationSummary | None:
        """The conversation with its counts, or None."""
        row = await self._fetchrow(sql.SELECT_SUMMARY, conversation_id)
        return None if row is None else _rows.summary(row)

    async def list_conversations(
        self,
        *,
        phase: str | None,
        owner: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[ConversationSummary]:
        """Conversations by last activity, newest first."""
        query, params = sql.list_conversations(phase=phase, owner=owner, before=before, limit=limit)
        return [_rows.summary(r) for r in await self._fetch(query, *params)]

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

        async def op(conn: Connection) -> PhaseChange:
            from_phase = await _lock_conversation(conn, conversation_id)
            if from_phase is None:
                return PhaseChange(found=False)
            if from_phase == to_phase or (only_from is not None and from_phase not in only_from):
                return PhaseChange(found=True)
            accepted = flow is None or flow.can_transition(from_phase, to_phase)
            if accepted:
                await conn.execute(sql.UPDATE_PHASE, conversation_id, to_phase, now)
            row = await conn.fetchrow(
                sql.INSERT_TRANSITION,
                conversation_id, from_phase, to_phase, reason, run_id, accepted, now,
            )  # fmt: skip
            return PhaseChange(found=True, transition=_rows.transition(row))

        return await self._write(op)

    async def delete_conversation(self, conversation_id: str) -> bool:
        """Delete the conversation and everything under it (foreign keys cascade)."""

        async def op(conn: Connection) -> bool:
            return _count(await conn.execute(sql.DELETE_CONVERSATION, conversation_id)) == 1

        return await self._write(op)

    async def clear_messages(self, conversation_id: str) -> bool:
        """Delete the conversation's messages, keep everything else."""

        async def op(conn: Connection) -> bool:
            # A new version of the row, not just a lock: appends that read the messages
            # before this commits must see that they changed (see APPEND_MESSAGES).
            if await conn.fetchval(sql.LOCK_AND_RENEW_CONVERSATION, conversation_id) is None:
                return False
            await conn.execute(sql.CLEAR_MESSAGES, conversation_id)
            return True

        return await self._write(op)

    # -- messages ---------------------------------------------------------------------------

    async def add_messages(
        self,
        conversation_id: str,
        rows: Sequence[MessageRow],
        now: datetime,
        *,
        create_owner: tuple[str | None] | None = None,
    ) -> int | None:
        """Append messages atomically; how many were new, or None if no conversation.

        Usually one statement, one round trip (see `APPEND_MESSAGES`); a transaction that
        locks the conversation first when another writer changed it meanwhile, or when a
        message's uid is stored already."""
        if not rows and create_owner is None:
            return 0 if await self.get_conversation(conversation_id) else None
        params = (conversation_id, now, *_message_columns(rows))
        found = await self._append_at_once(params)
        if found is None:  # no conversation, as the statement saw it
            if create_owner is None:
                return None
            found = await self._append_at_once(params, create_owner=create_owner)
        if found is not None and found is not _STORED_UID and found[0] is not None:
            return int(found[0])
        # Another writer changed, or created, the conversation while the statement ran, or
        # the turn holds a uid already stored (a retry): lock it, then skip the stored uids.
        return await self._write(lambda conn: _append_locked(conn, params, create_owner))

    async def _append_at_once(
        self, params: tuple[Any, ...], *, create_owner: tuple[str | None] | None = None
    ) -> Any:
        """APPEND_MESSAGES (CREATE_WITH_MESSAGES with `create_owner`): the statement's row
        (None when it returns none), or `_STORED_UID` when it wrote nothing because a
        message's uid is stored already."""
        pool = await self._current_pool()
        try:
            if create_owner is None:
                rows = await pool.fetch(sql.APPEND_MESSAGES, *params)
            else:
                rows = await pool.fetch(
                    sql.CREATE_WITH_MESSAGES, *params, create_owner[0], "initial"
                )
        except asyncpg.UniqueViolationError:
            return _STORED_UID
        except _DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        return rows[0] if rows else None

    async def get_messages(
        self, conversation_id: str, *, after_seq: int, limit: int | None, offset: int
    ) -> list[Message]:
        """Messages after `after_seq`, in order (no limit when `limit` is None)."""
        rows = await self._fetch(sql.SELECT_MESSAGES, conversation_id, after_seq, limit, offset)
        return [_rows.message(r) for r in rows]

    async def get_last_messages(
        self, conversation_id: str, n: int, *, before_seq: int | None
    ) -> list[Message]:
        """The last `n` messages in chronological order."""
        bound = (1 << 62) if before_seq is None else before_seq
        rows = await self._fetch(sql.SELECT_LAST_MESSAGES, conversation_id, bound, n)
        return [_rows.message(r) for r in rows]

    async def count_messages(self, conversation_id: str) -> int:
        """How many messages the conversation holds."""
        return int((await self._fetchrow(sql.COUNT_MESSAGES, conversation_id))[0])

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
            row.status, row.created_at, row.started_at, row.completed_at, row.duration_ms,
            row.error_message, row.error_type, row.run_id, row.parent_run_id, row.call_id,
        )  # fmt: skip

        async def op(conn: Connection) -> int | None:
            if await _lock_conversation(conn, row.conversation_id) is None:
                if create_owner is None:
                    return None
                await conn.execute(
                    sql.INSERT_CONVERSATION,
                    row.conversation_id, create_owner[0], "initial", row.created_at, None,
                )  # fmt: skip
                # A concurrent creator may have won the insert: lock whichever row stands.
                await _lock_conversation(conn, row.conversation_id)
            tool_call_id = await conn.fetchval(sql.INSERT_TOOL_CALL, *params)
            if tool_call_id is None:
                return None
            await conn.execute(sql.TOUCH_CONVERSATION, row.conversation_id, row.created_at)
            await _insert_sources(
                conn, row.conversation_id, tool_call_id, row.created_at, sources, skip_known_urls
            )
            return int(tool_call_id)

        return await self._write(op)

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
            update.call_id, update.completed_at, update.duration_ms,
        )  # fmt: skip

        async def op(conn: Connection) -> bool:
            conversation_id = await _lock_conversation_of_call(conn, tool_call_id)
            if conversation_id is None:
                return False
            status = await conn.execute(
                sql.UPDATE_TOOL_CALL, conversation_id, tool_call_id, *params
            )
            if _count(status) != 1:
                return False
            await conn.execute(sql.TOUCH_CONVERSATION, conversation_id, update.now)
            await _insert_sources(
                conn, conversation_id, tool_call_id, update.now, sources, skip_known_urls
            )
            return True

        return await self._write(op)

    async def get_tool_call(self, tool_call_id: int) -> ToolCall | None:
        """One tool call with its sources, or None."""
        return await self._with_sources(await self._fetchrow(sql.SELECT_TOOL_CALL, tool_call_id))

    async def get_tool_call_by_run(self, conversation_id: str, run_id: str) -> ToolCall | None:
        """The tool call recorded for a run id, with its sources, or None."""
        row = await self._fetchrow(sql.SELECT_TOOL_CALL_BY_RUN, conversation_id, run_id)
        return await self._with_sources(row)

    async def _with_sources(self, row: Any) -> ToolCall | None:
        if row is None:
            return None
        sources = await self._fetch(sql.SELECT_SOURCES_OF_TOOL_CALL, row[1], row[0])
        return _rows.tool_call(row, [_rows.web_source(s) for s in sources])

    async def get_tool_calls(self, conversation_id: str, *, with_sources: bool) -> list[ToolCall]:
        """The conversation's tool calls in order, with their sources when asked."""
        rows = await self._fetch(sql.SELECT_TOOL_CALLS, conversation_id)
        calls = [_rows.tool_call(r) for r in rows]
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

        async def op(conn: Connection) -> int | None:
            conversation_id = await _lock_conversation_of_call(conn, tool_call_id)
            if conversation_id is None:
                return None
            return await _insert_sources(
                conn, conversation_id, tool_call_id, now, rows, skip_known_urls
            )

        return await self._write(op)

    async def get_web_sources(self, conversation_id: str) -> list[WebSource]:
        """The conversation's sources by tool call, then rank (unranked first, as SQLite)."""
        rows = await self._fetch(sql.SELECT_SOURCES_OF_CONVERSATION, conversation_id)
        return [_rows.web_source(r) for r in rows]

    # -- mashups and phase history -----------------------------------------------------------

    async def create_mashup(self, row: MashupRow) -> int | None:
        """Insert a mashup; its id, or None when the conversation or tool call is missing.

        The tool call must belong to the same conversation (the foreign key includes it).
        """
        cid = row.conversation_id
        params = (
            cid, row.title, row.description, row.audio_file_path, row.metadata,
            row.tool_call_id, row.created_at,
        )  # fmt: skip

        async def op(conn: Connection) -> int | None:
            if await _lock_conversation(conn, cid) is None:
                return None
            call = row.tool_call_id
            if (
                call is not None
                and await conn.fetchval(sql.SELECT_TOOL_CALL_EXISTS, cid, call) is None
            ):
                return None
            mashup_id = await conn.fetchval(sql.INSERT_MASHUP, *params)
            await conn.execute(sql.TOUCH_CONVERSATION, cid, row.created_at)
            return int(mashup_id)

        return await self._write(op)

    async def get_mashups(self, conversation_id: str) -> list[Mashup]:
        """The conversation's mashups in creation order."""
        return [_rows.mashup(r) for r in await self._fetch(sql.SELECT_MASHUPS, conversation_id)]

    async def get_phase_history(self, conversation_id: str) -> list[PhaseTransition]:
        """The conversation's transitions and refusals in order."""
        rows = await self._fetch(sql.SELECT_TRANSITIONS, conversation_id)
        return [_rows.transition(r) for r in rows]

    # -- search, retention, statistics, import ------------------------------------------------

    async def search_messages(
        self,
        query: str,
        *,
        raw: bool,
        conversation_id: str | None,
        owner: str | None,
        limit: int,
    ) -> list[SearchHit]:
        """Ranked tsvector matches (ts_rank), best first; raw queries use web search syntax,
        which accepts any text."""
        statement, params = sql.search_messages(
            query, raw=raw, conversation_id=conversation_id, owner=owner, limit=limit
        )
        return [_rows.hit(r) for r in await self._fetch(statement, *params)]

    async def delete_conversations(
        self,
        *,
        owner: str | None,
        idle_before: datetime | None,
        phase: str | None,
        dry_run: bool,
    ) -> list[ConversationSummary]:
        """Lock, count and delete the matching conversations in one transaction."""
        query, params = sql.select_conversations_to_delete(
            owner=owner, idle_before=idle_before, phase=phase, lock=not dry_run
        )
        if dry_run:
            return [_rows.summary(r) for r in await self._fetch(query, *params)]

        async def op(conn: Connection) -> list[ConversationSummary]:
            # Locked first (in id order, so two purges cannot deadlock), then counted in a
            # later snapshot: the counts are exactly what the delete removes.
            ids = [r[0] for r in await conn.fetch(query, *params)]
            found = [_rows.summary(r) for r in await conn.fetch(sql.SELECT_SUMMARIES, ids)]
            await conn.execute(sql.DELETE_CONVERSATIONS, ids)
            return found

        return await self._write(op)

    async def stats(self, *, busiest: int) -> StoreStats:
        """Table counts, database size, schema version and the busiest conversations."""
        counts = await self._fetchrow(sql.COUNT_ALL)
        size = (await self._fetchrow(sql.DATABASE_SIZE))[0]
        top = [_rows.summary(r) for r in await self._fetch(sql.SELECT_BUSIEST, busiest)]
        top.sort(key=lambda c: (-c.message_count, c.conversation_id))
        return _rows.stats(counts, size, await self.schema_version(), top)

    async def import_conversation(self, document: ConversationDocument, *, replace: bool) -> bool:
        """Insert every row of the document with its own timestamps, in one transaction."""

        async def op(conn: Connection) -> bool:
            if not await _claim_conversation(conn, document, replace=replace):
                return False
            await _insert_document(conn, document)
            return True

        return await self._write(op)


async def _claim_conversation(
    conn: Connection, document: ConversationDocument, *, replace: bool
) -> bool:
    """Insert the document's conversation row (replacing a stored one when asked); False
    when it exists and may not be replaced."""
    c = document.conversation
    meta = check.json_text("metadata", c.metadata)
    row = (c.conversation_id, c.owner, c.phase.value, c.created_at, c.updated_at, meta)
    # Twice at most: a conversation created by another writer after our first look
    # makes the insert do nothing; the second look sees (and locks) it.
    for _ in range(2):
        if await _lock_conversation(conn, c.conversation_id) is not None:
            if not replace:
                return False
            await conn.execute(sql.DELETE_CONVERSATION, c.conversation_id)
        if _count(await conn.execute(sql.IMPORT_CONVERSATION, *row)) == 1:
            return True
    raise StorageBusyError(
        f"conversation {c.conversation_id!r} kept being created and deleted by other writers "
        "during the import; retry"
    )


async def _insert_document(conn: Connection, doc: ConversationDocument) -> None:
    cid = doc.conversation.conversation_id
    await conn.executemany(sql.IMPORT_MESSAGE, [_doc_message(cid, m) for m in doc.messages])
    call_ids: list[int | None] = []
    for call in doc.tool_calls:
        call_id = await conn.fetchval(sql.INSERT_TOOL_CALL, *_doc_tool_call(cid, call))
        call_ids.append(call_id)
        if call_id is None:
            continue  # a run id the document repeats: its first call keeps the sources
        sources = [
            (cid, call_id, s.url, s.title, s.snippet, s.relevance_score, s.rank, s.created_at)
            for s in call.sources
        ]
        await conn.executemany(sql.IMPORT_WEB_SOURCE, sources)
    mashups = [_doc_mashup(cid, m, call_ids) for m in doc.mashups]
    await conn.executemany(sql.INSERT_MASHUP, mashups)
    transitions = [_doc_transition(cid, t) for t in doc.phase_transitions]
    await conn.executemany(sql.IMPORT_TRANSITION, transitions)


def _doc_message(cid: str, m: DocMessage) -> tuple[Any, ...]:
    meta, payload = check.json_text("metadata", m.metadata), check.json_text("payload", m.payload)
    return (cid, m.seq, m.role.value, m.content, m.timestamp, meta, m.uid, payload)


def _doc_tool_call(cid: str, t: DocToolCall) -> tuple[Any, ...]:
    return (
        cid, t.tool_type.value, t.tool_name, t.input_data, t.output_data, t.status.value,
        t.created_at, t.started_at, t.completed_at, t.duration_ms, t.error_message,
        t.error_type, t.run_id, t.parent_run_id, t.call_id,
    )  # fmt: skip


def _doc_mashup(cid: str, m: DocMashup, call_ids: list[int | None]) -> tuple[Any, ...]:
    call = None if m.tool_call_ref is None else call_ids[m.tool_call_ref - 1]
    meta = check.json_text("metadata", m.metadata)
    return (cid, m.title, m.description, m.audio_file_path, meta, call, m.created_at)


def _doc_transition(cid: str, t: DocTransition) -> tuple[Any, ...]:
    return (
        cid, t.from_phase.value, t.to_phase.value, t.reason, t.run_id, t.accepted, t.created_at,
    )  # fmt: skip


async def _keep(pool: Any) -> AsyncGenerator[None, None]:
    """Holds our pool open until `close()`, or until its event loop shuts down.

    A started async generator is finalised by its loop before the loop closes
    (`asyncio.run` does it), so the pool is closed on the loop its connections belong to,
    even when the store was never closed there.
    """
    try:
        yield
    finally:
        await pool.close()


def _abandon(pool: Any) -> None:
    """Close a pool of another event loop at once, without waiting on that loop."""
    # A pool whose loop was closed without finalising it cannot close its sockets any more:
    # asyncpg then warns (ResourceWarning) about each connection, as about any left open.
    with contextlib.suppress(RuntimeError):
        pool.terminate()


async def _insert_sources(
    conn: Connection,
    conversation_id: str,
    tool_call_id: int,
    now: datetime,
    rows: Sequence[SourceRow],
    skip_known_urls: bool,
) -> int:
    """Insert an existing (locked) tool call's sources; how many were new."""
    if not rows:
        return 0
    insert = sql.INSERT_NEW_WEB_SOURCES if skip_known_urls else sql.INSERT_WEB_SOURCES
    columns = [
        [r.url for r in rows],
        [r.title for r in rows],
        [r.snippet for r in rows],
        [r.relevance_score for r in rows],
        [r.rank for r in rows],
    ]
    return int(await conn.fetchval(insert, conversation_id, tool_call_id, now, *columns))


async def _append_locked(
    conn: Connection, params: tuple[Any, ...], create_owner: tuple[str | None] | None
) -> int | None:
    """APPEND_NEW_MESSAGES after taking the conversation's lock (creating it when asked),
    inside the caller's transaction: its snapshot then follows the lock."""
    conversation_id, now = params[0], params[1]
    if await _lock_conversation(conn, conversation_id) is None:
        if create_owner is None:
            return None
        await conn.execute(
            sql.INSERT_CONVERSATION, conversation_id, create_owner[0], "initial", now, None
        )
        # A concurrent creator may have won the insert: lock whichever row stands.
        await _lock_conversation(conn, conversation_id)
    return int(await conn.fetchval(sql.APPEND_NEW_MESSAGES, *params))


def _message_columns(rows: Sequence[MessageRow]) -> list[list[str | None]]:
    """The rows as the column arrays the appends take, each uid once (first wins)."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        if row.uid is not None:
            if row.uid in seen:
                continue
            seen.add(row.uid)
        kept.append(row)
    return [
        [r.role for r in kept],
        [r.content for r in kept],
        [r.metadata for r in kept],
        [r.uid for r in kept],
        [r.payload for r in kept],
    ]


async def _lock_conversation_of_call(conn: Connection, tool_call_id: int) -> str | None:
    """Lock the conversation a tool call belongs to; its id, or None when either is missing."""
    conversation_id: str | None = await conn.fetchval(
        sql.SELECT_CONVERSATION_OF_TOOL_CALL, tool_call_id
    )
    if conversation_id is None or await _lock_conversation(conn, conversation_id) is None:
        return None
    return conversation_id


def _require_server_version(conn: Connection) -> None:
    major = conn.get_server_version().major
    if major < sql.MINIMUM_SERVER_VERSION:
        raise StorageError(
            f"lit-memory needs PostgreSQL {sql.MINIMUM_SERVER_VERSION} or newer to create its "
            f"tables; this server runs {major}. Upgrade the server."
        )
