"""The backend contract: the few async operations a database engine must provide.

`AsyncConversationDB` validates and encodes input, then calls these; a backend only runs its
dialect's SQL and turns rows into models. Every method raises a `StorageError` subclass when
the database fails, never a driver error. Values are already validated and JSON-encoded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

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
from ..transfer import ConversationDocument

__all__ = [
    "Backend",
    "MessageRow",
    "ToolCallRow",
    "ToolCallUpdate",
    "SourceRow",
    "MashupRow",
    "PhaseChange",
]


@dataclass(frozen=True, slots=True)
class MessageRow:
    """A validated message ready to insert (JSON fields already encoded)."""

    role: str
    content: str
    metadata: str | None
    uid: str | None
    payload: str | None


@dataclass(frozen=True, slots=True)
class ToolCallRow:
    """A validated tool call ready to insert."""

    conversation_id: str
    tool_type: str
    tool_name: str | None
    input_data: str
    output_data: str | None
    status: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: float | None
    error_message: str | None
    error_type: str | None
    run_id: str | None
    parent_run_id: str | None
    call_id: str | None


@dataclass(frozen=True, slots=True)
class ToolCallUpdate:
    """Changes to a tool call; None leaves a field as it is."""

    output_data: str | None
    status: str | None
    error_message: str | None
    error_type: str | None
    call_id: str | None
    completed_at: datetime | None
    duration_ms: float | None
    now: datetime


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A validated web source ready to insert."""

    url: str
    title: str | None
    snippet: str | None
    relevance_score: float | None
    rank: int | None


@dataclass(frozen=True, slots=True)
class MashupRow:
    """A validated mashup ready to insert."""

    conversation_id: str
    title: str
    description: str | None
    audio_file_path: str | None
    metadata: str | None
    tool_call_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PhaseChange:
    """The outcome of a phase change.

    `found` is False when the conversation is missing; `transition` is the recorded row
    (None when the phase was already `to_phase`, which records nothing).
    """

    found: bool
    transition: PhaseTransition | None = None


class Backend(ABC):
    """One database engine behind `AsyncConversationDB`."""

    dialect: str = ""

    @abstractmethod
    async def open(self) -> None:
        """Connect (idempotent). Raises StorageError when the database cannot be opened."""

    @abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release every connection and thread (idempotent)."""

    @abstractmethod
    async def migrate(self, target: int | None = None) -> tuple[int, int]:
        """Apply missing migrations under a cross-process lock; return (version before, after).

        Raises SchemaVersionError when the database is newer than this code knows.
        """

    @abstractmethod
    async def schema_version(self) -> int:
        """The database's schema version (0 for an empty database)."""

    @property
    @abstractmethod
    def latest_version(self) -> int:
        """The schema version this code migrates to."""

    @abstractmethod
    async def create_conversation(
        self,
        conversation_id: str,
        owner: str | None,
        phase: str,
        metadata: str | None,
        now: datetime,
    ) -> bool:
        """Insert a conversation; False when the id already exists."""

    @abstractmethod
    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation, or None."""

    @abstractmethod
    async def get_summary(self, conversation_id: str) -> ConversationSummary | None:
        """The conversation with its counts, or None."""

    @abstractmethod
    async def list_conversations(
        self,
        *,
        phase: str | None,
        owner: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[ConversationSummary]:
        """Conversations by last activity, newest first, older than `before` when given."""

    @abstractmethod
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
        """Move the conversation to `to_phase` and record the transition, atomically.

        With a flow, a forbidden move changes nothing but records a refused transition
        (``accepted=False``), which is returned. With `only_from`, a conversation in another
        phase is left as it is and nothing is recorded (checked in the same transaction).
        """

    @abstractmethod
    async def add_messages(
        self,
        conversation_id: str,
        rows: Sequence[MessageRow],
        now: datetime,
        *,
        create_owner: tuple[str | None] | None = None,
    ) -> int | None:
        """Append messages in one transaction; return how many were new (duplicates by uid
        are skipped), or None when the conversation does not exist. With `create_owner`,
        a missing conversation is created first (owner inside the tuple)."""

    @abstractmethod
    async def get_messages(
        self, conversation_id: str, *, after_seq: int, limit: int | None, offset: int
    ) -> list[Message]:
        """Messages with seq > after_seq in order, paged by limit/offset."""

    @abstractmethod
    async def get_last_messages(
        self, conversation_id: str, n: int, *, before_seq: int | None
    ) -> list[Message]:
        """The last `n` messages (before `before_seq` when given), in chronological order."""

    @abstractmethod
    async def count_messages(self, conversation_id: str) -> int:
        """How many messages the conversation holds."""

    @abstractmethod
    async def add_tool_call(
        self,
        row: ToolCallRow,
        *,
        create_owner: tuple[str | None] | None = None,
        sources: Sequence[SourceRow] = (),
        skip_known_urls: bool = False,
    ) -> int | None:
        """Insert a tool call; its id, or None when the conversation is missing or the run id
        is already recorded for it. With `create_owner`, a missing conversation is created
        first (owner inside the tuple), in the same transaction; so are `sources` (see
        `add_web_sources`)."""

    @abstractmethod
    async def update_tool_call(
        self,
        tool_call_id: int,
        update: ToolCallUpdate,
        *,
        sources: Sequence[SourceRow] = (),
        skip_known_urls: bool = False,
    ) -> bool:
        """Apply the update and add `sources` in one transaction; False when the tool call
        does not exist."""

    @abstractmethod
    async def get_tool_call(self, tool_call_id: int) -> ToolCall | None:
        """One tool call with its sources, or None."""

    @abstractmethod
    async def get_tool_call_by_run(self, conversation_id: str, run_id: str) -> ToolCall | None:
        """The conversation's tool call recorded for a framework run id, or None."""

    @abstractmethod
    async def get_tool_calls(self, conversation_id: str, *, with_sources: bool) -> list[ToolCall]:
        """The conversation's tool calls in order, each with its sources when asked."""

    @abstractmethod
    async def add_web_sources(
        self,
        tool_call_id: int,
        rows: Sequence[SourceRow],
        now: datetime,
        *,
        skip_known_urls: bool = False,
    ) -> int | None:
        """Insert sources for a tool call; how many were new, or None when the call is missing.
        With `skip_known_urls`, a URL the conversation already cited is not stored again."""

    @abstractmethod
    async def get_web_sources(self, conversation_id: str) -> list[WebSource]:
        """The conversation's sources, by tool call then rank."""

    @abstractmethod
    async def create_mashup(self, row: MashupRow) -> int | None:
        """Insert a mashup; its id, or None when the conversation (or tool call) is missing."""

    @abstractmethod
    async def get_mashups(self, conversation_id: str) -> list[Mashup]:
        """The conversation's mashups in creation order."""

    @abstractmethod
    async def get_phase_history(self, conversation_id: str) -> list[PhaseTransition]:
        """The conversation's phase transitions (and refusals) in order."""

    @abstractmethod
    async def clear_messages(self, conversation_id: str) -> bool:
        """Delete the conversation's messages (search entries included) and keep everything
        else; False when the conversation does not exist."""

    @abstractmethod
    async def delete_conversation(self, conversation_id: str) -> bool:
        """Delete the conversation and everything under it; False when it did not exist."""

    @abstractmethod
    async def search_messages(
        self,
        query: str,
        *,
        raw: bool,
        conversation_id: str | None,
        owner: str | None,
        limit: int,
    ) -> list[SearchHit]:
        """Ranked full-text matches, best first. With `raw`, `query` is in the engine's own
        syntax and a syntax error raises InvalidInputError; otherwise it is plain words, all
        of which must match."""

    @abstractmethod
    async def delete_conversations(
        self,
        *,
        owner: str | None,
        idle_before: datetime | None,
        phase: str | None,
        dry_run: bool,
    ) -> list[ConversationSummary]:
        """Delete (unless `dry_run`) the conversations matching every given filter, with all
        that hangs off them, in one transaction; return them as they were."""

    @abstractmethod
    async def stats(self, *, busiest: int) -> StoreStats:
        """Counts of every table, the database size and the busiest conversations."""

    @abstractmethod
    async def import_conversation(self, document: ConversationDocument, *, replace: bool) -> bool:
        """Restore a conversation exactly, in one transaction; False when it exists and
        `replace` is not set (then nothing changes)."""
