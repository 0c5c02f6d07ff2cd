"""`AsyncConversationDB`: the seed's async store, complete, over any backend."""

from __future__ import annotations

import asyncio
import copy
import os
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from . import _validate as check
from .backends import open_backend
from .backends.base import Backend, MashupRow, MessageRow, SourceRow, ToolCallRow, ToolCallUpdate
from .enums import ConversationPhase, MessageRole, ToolCallStatus, ToolCallType
from .errors import ConversationExistsError, ConversationNotFound, InvalidInputError
from .flow import DEFAULT_FLOW, PhaseFlow
from .models import (
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
from .redact import Redactor, default_redactor
from .scoped import OwnerScopedBackend
from .transfer import ConversationDocument, build_document, parse_document

__all__ = ["AsyncConversationDB", "NewMessage"]

NewMessage = Mapping[str, Any]
"""A message to store: ``{"role", "content"}`` and optionally ``metadata``, ``uid``, ``payload``."""

_MESSAGE_KEYS = frozenset({"role", "content", "metadata", "uid", "payload"})


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _phases(phases: Iterable[ConversationPhase | str] | None) -> frozenset[str] | None:
    if phases is None:
        return None
    if isinstance(phases, (str, ConversationPhase)):
        phases = [phases]
    return frozenset(ConversationPhase.parse(p).value for p in phases)


class AsyncConversationDB:
    """Conversation memory: conversations, messages, tool calls, sources, mashups, phases.

    ``AsyncConversationDB()`` opens the embedded default (``$LIT_MEMORY_URL`` or the SQLite
    file ``./lit_memory.db``); give a path, ``:memory:`` or a ``postgresql://`` URL otherwise.
    Use it as an async context manager; every method opens and migrates the database on
    first use if `init_db` was not called. Storage failures raise `StorageError`; bad
    arguments raise `InvalidInputError` before anything is written.
    """

    def __init__(
        self,
        path_or_url: str | os.PathLike[str] | None = None,
        *,
        flow: PhaseFlow | None = None,
        strict_phases: bool = False,
        redact: Redactor | None = default_redactor,
        **backend_options: Any,
    ) -> None:
        self._backend: Backend = open_backend(path_or_url, **backend_options)
        self.redact: Redactor = redact or _keep
        self.flow = flow or DEFAULT_FLOW
        self.strict_phases = strict_phases
        self._initialized = False
        self._init_lock: asyncio.Lock | None = None
        self._is_view = False

    def for_owner(self, owner: str) -> AsyncConversationDB:
        """A view of this store limited to `owner`'s conversations.

        It shares this store's connections (close this store, not the view). Through it,
        another owner's conversations look exactly like missing ones, new conversations
        belong to `owner`, and listing, search, purge and erasure see only `owner`'s data.
        """
        view = copy.copy(self)
        view._backend = OwnerScopedBackend(self._backend, check.identifier("owner", owner))
        view._is_view = True
        return view

    @property
    def owner(self) -> str | None:
        """The owner this store is scoped to (None when it sees every conversation)."""
        return self._backend.owner if isinstance(self._backend, OwnerScopedBackend) else None

    @property
    def backend(self) -> Backend:
        """The database engine behind this store."""
        return self._backend

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> AsyncConversationDB:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the database connections (without migrating)."""
        await self._backend.open()

    async def init_db(self) -> None:
        """Open the database and bring its schema up to date; safe to call again and from
        several processes at once (migrations run under the database's write lock)."""
        if self._initialized:
            return
        if self._init_lock is None:
            self._init_lock = asyncio.Lock()
        async with self._init_lock:
            if not self._initialized:
                await self._backend.open()
                await self._backend.migrate()
                self._initialized = True

    async def migrate(self, target: int | None = None) -> tuple[int, int]:
        """Apply missing migrations (up to `target`); return the versions before and after."""
        goal = check.limit("target", target)
        if goal is not None and goal > self._backend.latest_version:
            raise InvalidInputError(
                f"target {goal} is beyond the latest schema version this lit-memory knows "
                f"({self._backend.latest_version})"
            )
        await self._backend.open()
        before, after = await self._backend.migrate(goal)
        self._initialized = after == self._backend.latest_version
        return before, after

    async def schema_version(self) -> int:
        """The database's schema version (0 for a new database)."""
        await self._backend.open()
        return await self._backend.schema_version()

    async def close(self) -> None:
        """Wait for queued writes, then close every connection (idempotent)."""
        self._initialized = False
        await self._backend.close()

    def __del__(self) -> None:
        if getattr(self, "_initialized", False) and not getattr(self, "_is_view", True):
            warnings.warn(
                f"{self!r} was not closed; use 'async with' or 'await db.close()'",
                ResourceWarning,
                stacklevel=2,
            )

    async def _ready(self) -> Backend:
        if not self._initialized:
            await self.init_db()
        return self._backend

    # -- conversations -------------------------------------------------------------------------

    async def create_conversation(
        self,
        conversation_id: str,
        metadata: dict[str, Any] | None = None,
        *,
        owner: str | None = None,
    ) -> bool:
        """Create a conversation in the flow's initial phase; False if the id already exists."""
        cid = check.identifier("conversation_id", conversation_id)
        meta = check.json_text("metadata", self.redact(metadata), require_object=True)
        own = check.optional_identifier("owner", owner)
        backend = await self._ready()
        return await backend.create_conversation(cid, own, self.flow.initial.value, meta, _now())

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation, or None if it does not exist."""
        cid = check.identifier("conversation_id", conversation_id)
        return await (await self._ready()).get_conversation(cid)

    async def get_conversation_summary(self, conversation_id: str) -> ConversationSummary | None:
        """The conversation with its message, tool-call, mashup and source counts, or None."""
        cid = check.identifier("conversation_id", conversation_id)
        return await (await self._ready()).get_summary(cid)

    async def list_conversations(
        self,
        *,
        phase: ConversationPhase | str | None = None,
        owner: str | None = None,
        limit: int = 50,
        before: tuple[datetime, str] | None = None,
    ) -> list[ConversationSummary]:
        """Conversations by last activity, newest first, with their counts.

        Page with ``before=(last.updated_at, last.conversation_id)`` from the previous page.
        """
        phase_value = None if phase is None else ConversationPhase.parse(phase).value
        own = check.optional_identifier("owner", owner)
        size = check.limit("limit", limit, allow_none=False)
        cursor = None
        if before is not None:
            stamp = check.timestamp("before[0]", before[0])
            assert stamp is not None
            cursor = (stamp, check.identifier("before[1]", before[1]))
        backend = await self._ready()
        return await backend.list_conversations(
            phase=phase_value, owner=own, before=cursor, limit=size or 0
        )

    async def update_conversation_phase(
        self,
        conversation_id: str,
        phase: ConversationPhase | str,
        *,
        reason: str | None = None,
        run_id: str | None = None,
        strict: bool | None = None,
        flow: PhaseFlow | None = None,
        only_from: Iterable[ConversationPhase | str] | None = None,
    ) -> bool:
        """Move the conversation to `phase` and record the transition; False if it does not exist.

        With ``strict`` (default: the store's `strict_phases`), a transition the flow forbids
        is recorded as refused and raises `PhaseTransitionError`; the phase does not change.
        `flow` checks this one call against another flow than the store's. With `only_from`,
        a conversation in none of those phases is left as it is and nothing is recorded; the
        check and the move happen in one transaction, so a concurrent move cannot slip
        between them.
        """
        cid = check.identifier("conversation_id", conversation_id)
        target = ConversationPhase.parse(phase)
        why = check.optional_text("reason", reason)
        run = check.optional_identifier("run_id", run_id)
        sources = _phases(only_from)
        rules = flow or self.flow
        use_flow = rules if (self.strict_phases if strict is None else strict) else None
        backend = await self._ready()
        change = await backend.change_phase(
            cid, target.value, reason=why, run_id=run, flow=use_flow, now=_now(),
            only_from=sources,
        )  # fmt: skip
        if change.transition is not None and not change.transition.accepted:
            rules.check(change.transition.from_phase, target)
        return change.found

    async def get_phase_history(self, conversation_id: str) -> list[PhaseTransition]:
        """Every phase transition of the conversation (refusals included), oldest first."""
        cid = check.identifier("conversation_id", conversation_id)
        return await (await self._ready()).get_phase_history(cid)

    async def clear_messages(self, conversation_id: str) -> bool:
        """Delete the conversation's messages (and their search entries), keeping the
        conversation, its tool calls, sources, mashups and phase history; False if it does
        not exist."""
        cid = check.identifier("conversation_id", conversation_id)
        return await (await self._ready()).clear_messages(cid)

    async def delete_conversation(self, conversation_id: str) -> bool:
        """Delete the conversation and everything under it; False if it did not exist."""
        cid = check.identifier("conversation_id", conversation_id)
        return await (await self._ready()).delete_conversation(cid)

    # -- messages ------------------------------------------------------------------------------

    async def add_message(
        self,
        conversation_id: str,
        role: MessageRole | str,
        content: str,
        metadata: dict[str, Any] | None = None,
        *,
        uid: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> bool:
        """Append one message; False if the conversation does not exist or `uid` is stored."""
        message = {"role": role, "content": content, "metadata": metadata}
        message.update(uid=uid, payload=payload)
        return await self._store_messages(conversation_id, [message], None) == 1

    async def add_messages(
        self,
        conversation_id: str,
        messages: Iterable[NewMessage],
        *,
        create: bool = False,
        owner: str | None = None,
    ) -> int:
        """Append a turn of messages in one transaction; return how many were new.

        A message whose `uid` is already stored is skipped, so a retried turn is stored once.
        Raises `ConversationNotFound` if the conversation does not exist, unless `create` is
        set (then it is created, with `owner`, in the same transaction).
        """
        create_owner = (check.optional_identifier("owner", owner),) if create else None
        stored = await self._store_messages(conversation_id, messages, create_owner)
        if stored is None:
            raise ConversationNotFound(
                f"conversation {conversation_id!r} does not exist; create it first"
            )
        return stored

    async def _store_messages(
        self,
        conversation_id: str,
        messages: Iterable[NewMessage],
        create_owner: tuple[str | None] | None,
    ) -> int | None:
        cid = check.identifier("conversation_id", conversation_id)
        batch = check.items("messages", messages)
        rows = [_message_row(i, m, self.redact) for i, m in enumerate(batch)]
        backend = await self._ready()
        return await backend.add_messages(cid, rows, _now(), create_owner=create_owner)

    async def get_messages(
        self,
        conversation_id: str,
        limit: int | None = None,
        offset: int = 0,
        *,
        after_seq: int = 0,
    ) -> list[Message]:
        """Messages in order; `limit`/`offset` as in the seed, `after_seq` for keyset paging."""
        cid = check.identifier("conversation_id", conversation_id)
        size = check.limit("limit", limit)
        skip = check.limit("offset", offset, allow_none=False) or 0
        after = check.limit("after_seq", after_seq, allow_none=False) or 0
        backend = await self._ready()
        return await backend.get_messages(cid, after_seq=after, limit=size, offset=skip)

    async def get_last_messages(
        self, conversation_id: str, n: int, *, before_seq: int | None = None
    ) -> list[Message]:
        """The last `n` messages (before `before_seq` when given), in chronological order."""
        cid = check.identifier("conversation_id", conversation_id)
        count = check.limit("n", n, allow_none=False) or 0
        bound = check.limit("before_seq", before_seq)
        return await (await self._ready()).get_last_messages(cid, count, before_seq=bound)

    async def count_messages(self, conversation_id: str) -> int:
        """How many messages the conversation holds (counted in SQL, no rows loaded)."""
        cid = check.identifier("conversation_id", conversation_id)
        return await (await self._ready()).count_messages(cid)

    # -- tool calls and sources --------------------------------------------------------------

    async def add_tool_call(
        self,
        conversation_id: str,
        tool_type: ToolCallType | str,
        input_data: Any,
        output_data: Any = None,
        status: ToolCallStatus | str = "pending",
        error_message: str | None = None,
        *,
        tool_name: str | None = None,
        run_id: Any = None,
        parent_run_id: Any = None,
        call_id: str | None = None,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
        duration_ms: float | None = None,
        error_type: str | None = None,
        create: bool = False,
        owner: str | None = None,
        sources: Iterable[Mapping[str, Any]] | None = None,
        skip_known_urls: bool = False,
    ) -> int | None:
        """Record a tool call; its id, or None if the conversation does not exist or the
        `run_id` is already recorded for it. Text input/output is stored as given,
        anything else as JSON. With `create`, a missing conversation is created (with
        `owner`) in the same transaction; so are the call's `sources` (as in
        `add_web_sources`), so a finished call is never seen without them."""
        scrub = self.redact
        row = _tool_call_row(
            check.identifier("conversation_id", conversation_id), tool_type, scrub(input_data),
            scrub(output_data), status, scrub(error_message), tool_name, run_id, parent_run_id,
            call_id, started_at, completed_at, duration_ms, error_type,
        )  # fmt: skip
        create_owner = (check.optional_identifier("owner", owner),) if create else None
        rows = self._source_rows(sources)
        return await (await self._ready()).add_tool_call(
            row, create_owner=create_owner, sources=rows, skip_known_urls=skip_known_urls
        )

    async def update_tool_call(
        self,
        tool_call_id: int,
        output_data: Any = None,
        status: ToolCallStatus | str | None = None,
        error_message: str | None = None,
        *,
        error_type: str | None = None,
        call_id: str | None = None,
        completed_at: datetime | None = None,
        duration_ms: float | None = None,
        sources: Iterable[Mapping[str, Any]] | None = None,
        skip_known_urls: bool = False,
    ) -> bool:
        """Update a tool call (None leaves a field unchanged); False if it does not exist.

        A status that ends the call (completed, error, cancelled) stamps `completed_at` and
        the duration once, unless they are given. `sources` are added in the same
        transaction (as in `add_web_sources`).
        """
        tid = check.row_id("tool_call_id", tool_call_id)
        state = None if status is None else ToolCallStatus.parse(status)
        now = _now()
        ended = check.timestamp("completed_at", completed_at)
        if ended is None and state is not None and state.is_finished:
            ended = now
        update = ToolCallUpdate(
            output_data=check.data_text("output_data", self.redact(output_data)),
            status=None if state is None else state.value,
            error_message=check.optional_text("error_message", self.redact(error_message)),
            error_type=check.optional_text("error_type", error_type),
            call_id=check.optional_identifier("call_id", call_id),
            completed_at=ended,
            duration_ms=check.duration(duration_ms),
            now=now,
        )
        rows = self._source_rows(sources)
        return await (await self._ready()).update_tool_call(
            tid, update, sources=rows, skip_known_urls=skip_known_urls
        )

    async def get_tool_call(self, tool_call_id: int) -> ToolCall | None:
        """One tool call with its sources, or None."""
        tid = check.row_id("tool_call_id", tool_call_id)
        return await (await self._ready()).get_tool_call(tid)

    async def get_tool_call_by_run(self, conversation_id: str, run_id: Any) -> ToolCall | None:
        """The conversation's tool call recorded for a framework run id, or None."""
        cid = check.identifier("conversation_id", conversation_id)
        run = check.optional_identifier("run_id", run_id)
        if run is None:
            raise InvalidInputError("run_id must not be None")
        return await (await self._ready()).get_tool_call_by_run(cid, run)

    async def get_tool_calls(
        self, conversation_id: str, *, with_sources: bool = True
    ) -> list[ToolCall]:
        """The conversation's tool calls in order, each with its web sources."""
        cid = check.identifier("conversation_id", conversation_id)
        return await (await self._ready()).get_tool_calls(cid, with_sources=with_sources)

    async def add_web_source(
        self,
        tool_call_id: int,
        url: str,
        title: str | None = None,
        snippet: str | None = None,
        relevance_score: float | None = None,
        *,
        rank: int | None = None,
    ) -> bool:
        """Record a web source found by a tool call; False if the call does not exist or
        already has this URL."""
        source = {
            "url": url,
            "title": title,
            "snippet": snippet,
            "relevance_score": relevance_score,
        }
        if rank is not None:
            source["rank"] = rank
        return await self.add_web_sources(tool_call_id, [source]) == 1

    async def add_web_sources(
        self,
        tool_call_id: int,
        sources: Iterable[Mapping[str, Any]],
        *,
        skip_known_urls: bool = False,
    ) -> int:
        """Record several sources of one tool call in one transaction; how many were new.

        Each source is a mapping with ``url`` and optionally ``title``, ``snippet``,
        ``relevance_score`` and ``rank``. With `skip_known_urls`, a URL the conversation
        already cited (through any tool call) is not stored again. Returns 0 if the tool
        call does not exist.
        """
        tid = check.row_id("tool_call_id", tool_call_id)
        rows = self._source_rows(sources)
        backend = await self._ready()
        stored = await backend.add_web_sources(tid, rows, _now(), skip_known_urls=skip_known_urls)
        return stored or 0

    def _source_rows(self, sources: Iterable[Mapping[str, Any]] | None) -> list[SourceRow]:
        if sources is None:
            return []
        return [_source_row(self.redact(s)) for s in check.items("sources", sources)]

    async def get_web_sources(self, conversation_id: str) -> list[WebSource]:
        """Every source the conversation's tool calls found, by call then rank."""
        cid = check.identifier("conversation_id", conversation_id)
        return await (await self._ready()).get_web_sources(cid)

    # -- mashups -------------------------------------------------------------------------------

    async def create_mashup(
        self,
        conversation_id: str,
        title: str,
        description: str | None = None,
        audio_file_path: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        tool_call_id: int | None = None,
    ) -> int | None:
        """Record a generated mashup; its id, or None if the conversation (or the tool call)
        does not exist. The audio path is stored as data and never opened."""
        row = MashupRow(
            conversation_id=check.identifier("conversation_id", conversation_id),
            title=check.text("title", title),
            description=check.optional_text("description", description),
            audio_file_path=check.optional_text("audio_file_path", audio_file_path),
            metadata=check.json_text("metadata", self.redact(metadata), require_object=True),
            tool_call_id=None
            if tool_call_id is None
            else check.row_id("tool_call_id", tool_call_id),
            created_at=_now(),
        )
        return await (await self._ready()).create_mashup(row)

    async def get_mashups(self, conversation_id: str) -> list[Mashup]:
        """The conversation's mashups in creation order."""
        cid = check.identifier("conversation_id", conversation_id)
        return await (await self._ready()).get_mashups(cid)

    # -- search, retention, export -------------------------------------------------------------

    async def search_messages(
        self,
        query: str,
        *,
        conversation_id: str | None = None,
        owner: str | None = None,
        limit: int = 20,
        raw: bool = False,
    ) -> list[SearchHit]:
        """Full-text search over message content, best match first, with highlighted snippets.

        The query is plain words that must all match (punctuation is literal); with ``raw``
        it is the engine's own syntax (SQLite FTS5 / PostgreSQL websearch), and a syntax
        error raises `InvalidInputError`.
        """
        words = check.text("query", query)
        if not words.strip():
            raise InvalidInputError("the search query is empty")
        cid = check.optional_identifier("conversation_id", conversation_id)
        own = check.optional_identifier("owner", owner)
        size = check.limit("limit", limit, allow_none=False) or 0
        backend = await self._ready()
        return await backend.search_messages(
            words, raw=raw, conversation_id=cid, owner=own, limit=size
        )

    async def purge_conversations(
        self,
        *,
        idle_since: datetime,
        phase: ConversationPhase | str | None = None,
        owner: str | None = None,
        dry_run: bool = False,
    ) -> list[ConversationSummary]:
        """Delete the conversations with no activity since `idle_since` (optionally only in
        `phase` or of `owner`), with everything under them; return them as they were.

        With ``dry_run`` nothing is deleted and the same list is returned.
        """
        cutoff = check.timestamp("idle_since", idle_since)
        if cutoff is None:
            raise InvalidInputError("idle_since is required: purge removes data idle since then")
        phase_value = None if phase is None else ConversationPhase.parse(phase).value
        own = check.optional_identifier("owner", owner)
        backend = await self._ready()
        return await backend.delete_conversations(
            owner=own, idle_before=cutoff, phase=phase_value, dry_run=dry_run
        )

    async def erase_owner(self, owner: str) -> dict[str, int]:
        """Delete every conversation of `owner` and all that hangs off them; return how many
        rows of each kind were removed."""
        own = check.identifier("owner", owner)
        backend = await self._ready()
        removed = await backend.delete_conversations(
            owner=own, idle_before=None, phase=None, dry_run=False
        )
        return {
            "conversations": len(removed),
            "messages": sum(c.message_count for c in removed),
            "tool_calls": sum(c.tool_call_count for c in removed),
            "web_sources": sum(c.web_source_count for c in removed),
            "mashups": sum(c.mashup_count for c in removed),
        }

    async def stats(self, *, busiest: int = 5) -> StoreStats:
        """Counts of everything stored, the database size, the schema version and the
        conversations with the most messages."""
        top = check.limit("busiest", busiest, allow_none=False) or 0
        return await (await self._ready()).stats(busiest=top)

    async def export_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """The whole conversation as a JSON-able document (every row, timestamps kept), or
        None if it does not exist. `import_conversation` restores it exactly."""
        cid = check.identifier("conversation_id", conversation_id)
        backend = await self._ready()
        conversation = await backend.get_conversation(cid)
        if conversation is None:
            return None
        document = build_document(
            conversation,
            await backend.get_messages(cid, after_seq=0, limit=None, offset=0),
            await backend.get_tool_calls(cid, with_sources=True),
            await backend.get_mashups(cid),
            await backend.get_phase_history(cid),
        )
        return document.model_dump(mode="json")

    async def import_conversation(
        self, document: Mapping[str, Any] | str | bytes, *, replace: bool = False
    ) -> str:
        """Restore an exported conversation exactly; return its id.

        Refuses a document that does not match the schema (`InvalidInputError`), and one
        whose conversation already exists unless ``replace`` (`ConversationExistsError`).
        """
        parsed: ConversationDocument = parse_document(document)
        cid = parsed.conversation.conversation_id
        backend = await self._ready()
        if not await backend.import_conversation(parsed, replace=replace):
            raise ConversationExistsError(
                f"conversation {cid!r} already exists; pass replace=True to overwrite it",
                conversation_id=cid,
            )
        return cid


def _keep(value: Any) -> Any:
    return value


def _message_row(index: int, message: NewMessage, redact: Redactor) -> MessageRow:
    if not isinstance(message, Mapping):
        raise InvalidInputError(f"messages[{index}] must be a mapping with role and content")
    unknown = set(message) - _MESSAGE_KEYS
    if unknown:
        raise InvalidInputError(f"messages[{index}] has unknown keys: {sorted(unknown)}")
    if "role" not in message or "content" not in message:
        raise InvalidInputError(f"messages[{index}] needs a role and a content")
    return MessageRow(
        role=MessageRole.parse(message["role"]).value,
        content=check.text(f"messages[{index}].content", message["content"]),
        metadata=check.json_text(
            f"messages[{index}].metadata", redact(message.get("metadata")), require_object=True
        ),
        uid=check.optional_identifier(f"messages[{index}].uid", message.get("uid")),
        payload=check.json_text(
            f"messages[{index}].payload", message.get("payload"), require_object=True
        ),
    )


def _source_row(source: Mapping[str, Any]) -> SourceRow:
    if not isinstance(source, Mapping):
        raise InvalidInputError("each web source must be a mapping with a url")
    unknown = set(source) - {"url", "title", "snippet", "relevance_score", "rank"}
    if unknown:
        raise InvalidInputError(f"a web source has unknown keys: {sorted(unknown)}")
    url = check.text("url", source.get("url"))
    if not url.strip():
        raise InvalidInputError("url must not be empty")
    rank = source.get("rank")
    return SourceRow(
        url=url,
        title=check.optional_text("title", source.get("title")),
        snippet=check.optional_text("snippet", source.get("snippet")),
        relevance_score=check.score(source.get("relevance_score")),
        rank=None if rank is None else check.row_id("rank", rank, maximum=2**31 - 1),
    )


def _tool_call_row(
    conversation_id: str,
    tool_type: ToolCallType | str,
    input_data: Any,
    output_data: Any,
    status: ToolCallStatus | str,
    error_message: str | None,
    tool_name: str | None,
    run_id: Any,
    parent_run_id: Any,
    call_id: str | None,
    started_at: datetime | None,
    completed_at: datetime | None,
    duration_ms: float | None,
    error_type: str | None,
) -> ToolCallRow:
    now = _now()
    state = ToolCallStatus.parse(status)
    started = check.timestamp("started_at", started_at)
    if started is None and state is not ToolCallStatus.PENDING:
        started = now
    ended = check.timestamp("completed_at", completed_at)
    if ended is None and state.is_finished:
        ended = now
    took = check.duration(duration_ms)
    if took is None and started is not None and ended is not None:
        took = max((ended - started).total_seconds() * 1000.0, 0.0)
    data = check.data_text("input_data", input_data)
    return ToolCallRow(
        conversation_id=conversation_id,
        tool_type=ToolCallType.parse(tool_type).value,
        tool_name=check.optional_text("tool_name", tool_name),
        input_data="" if data is None else data,
        output_data=check.data_text("output_data", output_data),
        status=state.value,
        created_at=now,
        started_at=started,
        completed_at=ended,
        duration_ms=took,
        error_message=check.optional_text("error_message", error_message),
        error_type=check.optional_text("error_type", error_type),
        run_id=check.optional_identifier("run_id", run_id),
        parent_run_id=check.optional_identifier("parent_run_id", parent_run_id),
        call_id=check.optional_identifier("call_id", call_id),
    )
