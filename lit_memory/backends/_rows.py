"""Turning trusted stored rows into models, shared by every backend.

Rows come from our own tables, so models are built with `model_construct` (no validation):
this is the hot part of every read.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from pydantic import BaseModel

from ..enums import ConversationPhase, MessageRole, ToolCallStatus, ToolCallType
from ..errors import StorageCorruptError
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

Row = Sequence[Any]
F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


def _built(cls: type[M], fields: dict[str, Any]) -> M:
    """A model from every one of its fields, trusted: what `model_construct` does for a row
    that sets every field, without its per-field default handling (a third of the cost)."""
    model = cls.__new__(cls)
    _set(model, "__dict__", fields)
    _set(model, "__pydantic_fields_set__", set(fields))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


_set = object.__setattr__


def _decoded(builder: F) -> F:
    """A stored value that cannot be what we wrote (a damaged file) is a corrupt database,
    not a bare ValueError from deep inside a read."""

    @functools.wraps(builder)
    def build(*args: Any) -> Any:
        try:
            return builder(*args)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise StorageCorruptError(
                f"a stored row cannot be read ({exc!r}); the database is damaged: "
                "restore it from a backup"
            ) from exc

    return build  # type: ignore[return-value]


def ts(value: Any) -> Any:
    """A stored timestamp (ISO text or a driver's datetime) as an aware UTC datetime."""
    if value is None:
        return value
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(value)
    # asyncpg reads timestamptz infinities (datetime.min/max) back without a zone: still UTC.
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def iso(value: datetime) -> str:
    """A datetime as fixed-width ISO-8601 UTC text, so text order is time order."""
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def loads(value: Any) -> Any:
    """Stored JSON text (or an already-decoded value) as Python data, as `json.loads` reads
    it."""
    if type(value) is str:
        # The text we store is one JSON value with nothing around it: parsing it directly
        # skips json.loads' two whitespace scans, a third of its cost on a message payload.
        try:
            data, end = _JSON.raw_decode(value)
        except ValueError:
            return json.loads(value)  # leading whitespace, or the error json.loads raises
        return data if end == len(value) else json.loads(value)
    if isinstance(value, (str, bytes)):
        return json.loads(value)
    return value


_JSON = json.JSONDecoder()  # json.loads' own settings


@_decoded
def conversation(r: Row) -> Conversation:
    """Columns: conversation_id, phase, created_at, updated_at, metadata, owner."""
    return Conversation.model_construct(
        conversation_id=r[0],
        phase=ConversationPhase(r[1]),
        created_at=ts(r[2]),
        updated_at=ts(r[3]),
        metadata=loads(r[4]),
        owner=r[5],
    )


@_decoded
def summary(r: Row) -> ConversationSummary:
    """Conversation columns followed by message, tool call, mashup and source counts."""
    return ConversationSummary.model_construct(
        conversation_id=r[0],
        phase=ConversationPhase(r[1]),
        created_at=ts(r[2]),
        updated_at=ts(r[3]),
        metadata=loads(r[4]),
        owner=r[5],
        message_count=r[6],
        tool_call_count=r[7],
        mashup_count=r[8],
        web_source_count=r[9],
    )


# MessageRole(value) looks its member up through Enum.__call__; a plain dict is 10x cheaper.
_ROLES: dict[str, MessageRole] = {role.value: role for role in MessageRole}


@_decoded
def message(r: Row) -> Message:
    """The messages columns in the order of the dialect's MESSAGE_COLUMNS."""
    return _built(
        Message,
        {
            "message_id": r[0],
            "conversation_id": r[1],
            "seq": r[2],
            "role": _ROLES[r[3]],
            "content": r[4],
            "timestamp": ts(r[5]),
            "metadata": loads(r[6]),
            "uid": r[7],
            "payload": loads(r[8]),
        },
    )


@_decoded
def tool_call(r: Row, sources: list[WebSource] | None = None) -> ToolCall:
    """The tool_calls columns in the order of the dialect's TOOL_CALL_COLUMNS."""
    return ToolCall.model_construct(
        tool_call_id=r[0],
        conversation_id=r[1],
        tool_type=ToolCallType(r[2]),
        tool_name=r[3],
        input_data=r[4],
        output_data=r[5],
        status=ToolCallStatus(r[6]),
        created_at=ts(r[7]),
        started_at=ts(r[8]),
        completed_at=ts(r[9]),
        duration_ms=r[10],
        error_message=r[11],
        error_type=r[12],
        run_id=r[13],
        parent_run_id=r[14],
        call_id=r[15],
        sources=sources if sources is not None else [],
    )


@_decoded
def web_source(r: Row) -> WebSource:
    """The web_sources columns in the order of the dialect's SOURCE_COLUMNS."""
    return WebSource.model_construct(
        source_id=r[0],
        conversation_id=r[1],
        tool_call_id=r[2],
        url=r[3],
        title=r[4],
        snippet=r[5],
        relevance_score=r[6],
        rank=r[7],
        created_at=ts(r[8]),
    )


@_decoded
def mashup(r: Row) -> Mashup:
    """The mashups columns in the order of the dialect's MASHUP_COLUMNS."""
    return Mashup.model_construct(
        mashup_id=r[0],
        conversation_id=r[1],
        title=r[2],
        description=r[3],
        audio_file_path=r[4],
        metadata=loads(r[5]),
        tool_call_id=r[6],
        created_at=ts(r[7]),
    )


@_decoded
def transition(r: Row) -> PhaseTransition:
    """The phase_transitions columns in the order of the dialect's TRANSITION_COLUMNS."""
    return PhaseTransition.model_construct(
        transition_id=r[0],
        conversation_id=r[1],
        from_phase=ConversationPhase(r[2]),
        to_phase=ConversationPhase(r[3]),
        reason=r[4],
        run_id=r[5],
        accepted=bool(r[6]),
        created_at=ts(r[7]),
    )


def attach_sources(calls: list[ToolCall], sources: list[WebSource]) -> list[ToolCall]:
    """Put each source on its tool call (sources arrive ordered by call, then rank)."""
    by_call: dict[int, list[WebSource]] = {}
    for source in sources:
        by_call.setdefault(source.tool_call_id, []).append(source)
    for call in calls:
        call.sources = by_call.get(call.tool_call_id, [])
    return calls


@_decoded
def hit(r: Row) -> SearchHit:
    """Message columns followed by the score (higher is better) and the snippet."""
    return SearchHit.model_construct(message=message(r), score=float(r[9]), snippet=r[10])


def stats(counts: Row, size: int, version: int, busiest: list[ConversationSummary]) -> StoreStats:
    """Table counts (conversations, messages, tool calls, sources, mashups, transitions)."""
    return StoreStats.model_construct(
        conversations=counts[0],
        messages=counts[1],
        tool_calls=counts[2],
        web_sources=counts[3],
        mashups=counts[4],
        phase_transitions=counts[5],
        size_bytes=int(size),
        schema_version=version,
        busiest=busiest,
    )
