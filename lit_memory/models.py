"""The rows the store returns, as pure pydantic models (no I/O).

Returned models also allow item access (``summary["message_count"]``, ``"phase" in conv``,
``conv.get("metadata")``), so code written against the seed's dictionaries keeps working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .enums import ConversationPhase, MessageRole, ToolCallStatus, ToolCallType

__all__ = [
    "Record",
    "Conversation",
    "ConversationSummary",
    "Message",
    "ToolCall",
    "WebSource",
    "Mashup",
    "PhaseTransition",
    "SearchHit",
    "StoreStats",
]


class Record(BaseModel):
    """Base of every returned row: attribute access, and item access like the seed's dicts."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields

    def get(self, key: str, default: Any = None) -> Any:
        """The field's value, or `default` when the model has no such field."""
        return getattr(self, key) if key in type(self).model_fields else default

    def keys(self) -> list[str]:
        """The field names, like a dict's keys."""
        return list(type(self).model_fields)


class Conversation(Record):
    """One conversation: its phase, owner and metadata."""

    conversation_id: str
    """The caller's identifier for the conversation."""
    phase: ConversationPhase = ConversationPhase.INITIAL
    """Where the conversation stands in its phase flow."""
    created_at: datetime
    """When the conversation was created (UTC)."""
    updated_at: datetime
    """Last activity: the latest write to the conversation or anything under it (UTC)."""
    metadata: dict[str, Any] | None = None
    """The caller's JSON metadata, as given."""
    owner: str | None = None
    """The user the conversation belongs to, if any."""


class ConversationSummary(Conversation):
    """A conversation with the counts of what hangs off it, computed in SQL."""

    message_count: int = 0
    """How many messages the conversation holds."""
    tool_call_count: int = 0
    """How many tool calls were recorded."""
    mashup_count: int = 0
    """How many mashups were generated."""
    web_source_count: int = 0
    """How many web sources were cited."""


class Message(Record):
    """One stored message."""

    message_id: int
    """The store's identifier for the row."""
    conversation_id: str
    """The conversation the message belongs to."""
    seq: int
    """Position in the conversation: 1, 2, 3, ... with no gaps, in the order writes committed."""
    role: MessageRole
    """Who wrote the message."""
    content: str
    """The message's text."""
    timestamp: datetime
    """When the message was stored (UTC)."""
    metadata: dict[str, Any] | None = None
    """The caller's JSON metadata, as given."""
    uid: str | None = None
    """The caller's message id, unique within the conversation: a retried write is stored once."""
    payload: dict[str, Any] | None = None
    """A framework's lossless form of the message (e.g. LangChain's message dict)."""


class WebSource(Record):
    """A web page a tool call found or the agent cited."""

    source_id: int
    """The store's identifier for the row."""
    conversation_id: str
    """The conversation the source was cited in."""
    tool_call_id: int
    """The tool call that found the source."""
    url: str
    """The page's URL."""
    title: str | None = None
    """The page's title."""
    snippet: str | None = None
    """The excerpt the tool returned."""
    relevance_score: float | None = None
    """The tool's relevance score, when it gave one."""
    rank: int | None = None
    """1-based position in the tool's results."""
    created_at: datetime
    """When the source was stored (UTC)."""


class ToolCall(Record):
    """One call of a tool, with its timing, outcome and the sources it found."""

    tool_call_id: int
    """The store's identifier for the call."""
    conversation_id: str
    """The conversation the call belongs to."""
    tool_type: ToolCallType
    """What kind of work the call did."""
    tool_name: str | None = None
    """The tool's own name (e.g. ``tavily_search``)."""
    input_data: str
    """The tool's input: text as given, or JSON for structured arguments."""
    output_data: str | None = None
    """The tool's output: text as given, or JSON."""
    status: ToolCallStatus = ToolCallStatus.PENDING
    """Where the call stands."""
    created_at: datetime
    """When the call was recorded (UTC)."""
    started_at: datetime | None = None
    """When the tool started running."""
    completed_at: datetime | None = None
    """When the call ended (completed, error or cancelled)."""
    duration_ms: float | None = None
    """How long the tool ran, in milliseconds."""
    error_message: str | None = None
    """The error's message, for a failed call."""
    error_type: str | None = None
    """The error's type name, for a failed call."""
    run_id: str | None = None
    """The framework's run id (LangChain's ``run_id``)."""
    parent_run_id: str | None = None
    """The run the call was made from."""
    call_id: str | None = None
    """The id the model gave this call (LangChain's ``tool_call_id``)."""
    sources: list[WebSource] = Field(default_factory=list)
    """The web sources the call found, in rank order (filled by reads that ask for them)."""


class Mashup(Record):
    """Generated content: a mashup and where its audio lives."""

    mashup_id: int
    """The store's identifier for the mashup."""
    conversation_id: str
    """The conversation that produced it."""
    title: str
    """The mashup's title."""
    description: str | None = None
    """What the mashup is."""
    audio_file_path: str | None = None
    """Where the audio is stored; kept as data, never opened by the store."""
    metadata: dict[str, Any] | None = None
    """The caller's JSON metadata."""
    tool_call_id: int | None = None
    """The tool call that generated it, when known."""
    created_at: datetime
    """When it was stored (UTC)."""


class PhaseTransition(Record):
    """One change of phase (or a refused attempt), with its reason."""

    transition_id: int
    """The store's identifier for the row."""
    conversation_id: str
    """The conversation that moved."""
    from_phase: ConversationPhase
    """The phase before."""
    to_phase: ConversationPhase
    """The phase after (or asked for, when refused)."""
    reason: str | None = None
    """Why the phase changed."""
    run_id: str | None = None
    """The framework run that caused it."""
    accepted: bool = True
    """False when the flow refused the transition and the phase did not change."""
    created_at: datetime
    """When it happened (UTC)."""


class SearchHit(Record):
    """A message found by full-text search."""

    message: Message
    """The matching message."""
    score: float
    """Relevance: higher is better (comparable within one search only)."""
    snippet: str
    """An excerpt around the match, matched terms wrapped in ``**``."""


class StoreStats(Record):
    """Counts and size of the whole store."""

    conversations: int
    """How many conversations are stored."""
    messages: int
    """How many messages are stored."""
    tool_calls: int
    """How many tool calls are stored."""
    web_sources: int
    """How many web sources are stored."""
    mashups: int
    """How many mashups are stored."""
    phase_transitions: int
    """How many phase transitions are stored."""
    size_bytes: int
    """The database's size on disk."""
    schema_version: int
    """The database's schema version."""
    busiest: list[ConversationSummary] = Field(default_factory=list)
    """The conversations with the most messages, most first."""
