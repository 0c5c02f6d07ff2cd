"""Export and import of one conversation as a JSON document, timestamps preserved.

The document holds no store-internal row ids: a mashup names its tool call by position
(``tool_call_ref``, 1-based), so a document imports into any database and exporting it again
gives the same document. Documents are validated strictly before anything is written.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from . import _validate as check
from .enums import ConversationPhase, MessageRole, ToolCallStatus, ToolCallType
from .errors import InvalidInputError
from .models import Conversation, Mashup, Message, PhaseTransition, ToolCall

__all__ = ["ConversationDocument", "FORMAT", "build_document", "parse_document"]

FORMAT = "lit-memory.conversation"


def _identifier(value: str) -> str:
    return check.identifier("an id", value)


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    check.check_json("a metadata or payload object", value)
    return value


Id = Annotated[str, AfterValidator(_identifier)]
"""An id as the API accepts it: non-empty, at most 512 characters."""
JsonObject = Annotated[dict[str, Any], AfterValidator(_json_object)]
"""A JSON object the store gives back exactly."""
Rank = Annotated[int, Field(ge=1, lt=2**31)]


class _Part(BaseModel):
    # Strict: a document says what it means ("1" is not a seq, 0 is not a timestamp).
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # Text must be storable on every backend exactly as given (no NUL, valid Unicode).
        if isinstance(value, str):
            check.text("a document field", value)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("timestamps must carry a timezone")
            check.timestamp("a timestamp", value)
        return value


class DocConversation(_Part):
    """The conversation row."""

    conversation_id: Id
    owner: Id | None = None
    phase: ConversationPhase
    created_at: datetime
    updated_at: datetime
    metadata: JsonObject | None = None


class DocMessage(_Part):
    """One message, with its position in the conversation."""

    seq: int = Field(ge=1, le=check.MAX_INT)
    role: MessageRole
    content: str
    timestamp: datetime
    metadata: JsonObject | None = None
    uid: Id | None = None
    payload: JsonObject | None = None


class DocSource(_Part):
    """One web source of a tool call."""

    url: str = Field(min_length=1)
    title: str | None = None
    snippet: str | None = None
    relevance_score: float | None = Field(default=None, allow_inf_nan=False)
    rank: Rank | None = None
    created_at: datetime


class DocToolCall(_Part):
    """One tool call with its sources."""

    tool_type: ToolCallType
    tool_name: str | None = None
    input_data: str
    output_data: str | None = None
    status: ToolCallStatus
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    error_message: str | None = None
    error_type: str | None = None
    run_id: Id | None = None
    parent_run_id: Id | None = None
    call_id: Id | None = None
    sources: list[DocSource] = Field(default_factory=list)


class DocMashup(_Part):
    """One mashup; `tool_call_ref` is the 1-based position of its tool call, if any."""

    title: str
    description: str | None = None
    audio_file_path: str | None = None
    metadata: JsonObject | None = None
    tool_call_ref: Rank | None = None
    created_at: datetime


class DocTransition(_Part):
    """One phase transition (or refusal)."""

    from_phase: ConversationPhase
    to_phase: ConversationPhase
    reason: str | None = None
    run_id: Id | None = None
    accepted: bool = True
    created_at: datetime


class ConversationDocument(_Part):
    """A whole conversation, as `export_conversation` writes it."""

    format: Literal["lit-memory.conversation"] = "lit-memory.conversation"
    version: Literal[1] = 1
    conversation: DocConversation
    messages: list[DocMessage] = Field(default_factory=list)
    tool_calls: list[DocToolCall] = Field(default_factory=list)
    mashups: list[DocMashup] = Field(default_factory=list)
    phase_transitions: list[DocTransition] = Field(default_factory=list)

    def check_references(self) -> None:
        """Refuse a document whose sequences or tool call references do not hold together."""
        seqs = [m.seq for m in self.messages]
        if seqs != list(range(1, len(seqs) + 1)):
            raise InvalidInputError("the document's message seq values must be 1, 2, 3, ...")
        for mashup in self.mashups:
            if mashup.tool_call_ref is not None and mashup.tool_call_ref > len(self.tool_calls):
                raise InvalidInputError(
                    f"mashup {mashup.title!r} refers to tool call {mashup.tool_call_ref}, "
                    f"but the document has {len(self.tool_calls)}"
                )
        uids = [m.uid for m in self.messages if m.uid is not None]
        if len(uids) != len(set(uids)):
            raise InvalidInputError("the document repeats a message uid")


def parse_document(document: Any) -> ConversationDocument:
    """Validate an exported document (a dict or JSON text); InvalidInputError if it does not
    match the schema."""
    try:
        # Always through JSON, so a dict is read exactly as the same document in a file.
        text = document if isinstance(document, (str, bytes)) else json.dumps(document)
        parsed = ConversationDocument.model_validate_json(text)
    except (TypeError, ValueError, RecursionError) as exc:  # ValidationError is a ValueError
        raise InvalidInputError(f"not a lit-memory conversation document: {exc}") from None
    parsed.check_references()
    return parsed


def build_document(
    conversation: Conversation,
    messages: list[Message],
    tool_calls: list[ToolCall],
    mashups: list[Mashup],
    transitions: list[PhaseTransition],
) -> ConversationDocument:
    """Assemble the document from the rows read from a store."""
    position = {call.tool_call_id: i for i, call in enumerate(tool_calls, start=1)}
    return ConversationDocument(
        conversation=DocConversation.model_validate(conversation.model_dump()),
        messages=[
            DocMessage.model_validate(m.model_dump(exclude={"message_id", "conversation_id"}))
            for m in messages
        ],
        tool_calls=[_doc_tool_call(call) for call in tool_calls],
        mashups=[
            DocMashup.model_validate(
                {
                    **m.model_dump(exclude={"mashup_id", "conversation_id", "tool_call_id"}),
                    "tool_call_ref": position.get(m.tool_call_id) if m.tool_call_id else None,
                }
            )
            for m in mashups
        ],
        phase_transitions=[
            DocTransition.model_validate(t.model_dump(exclude={"transition_id", "conversation_id"}))
            for t in transitions
        ],
    )


def _doc_tool_call(call: ToolCall) -> DocToolCall:
    data = call.model_dump(exclude={"tool_call_id", "conversation_id", "sources"})
    data["sources"] = [
        s.model_dump(exclude={"source_id", "conversation_id", "tool_call_id"}) for s in call.sources
    ]
    return DocToolCall.model_validate(data)
