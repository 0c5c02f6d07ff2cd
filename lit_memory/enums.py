"""The seed's enums, kept value for value, plus the tool-call status.

Every enum parses strings with `parse`, which names the valid values when it refuses one.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from .errors import InvalidInputError

__all__ = ["ConversationPhase", "MessageRole", "ToolCallType", "ToolCallStatus"]

_E = TypeVar("_E", bound="_ParsableEnum")


class _ParsableEnum(str, Enum):
    """A string enum that parses its values (case-insensitive) with a clear error."""

    @classmethod
    def parse(cls: type[_E], value: object) -> _E:
        """The member for `value` (a member or its value); InvalidInputError otherwise."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        valid = ", ".join(member.value for member in cls)
        raise InvalidInputError(f"{value!r} is not a valid {cls.__name__}; use one of: {valid}")

    @classmethod
    def values(cls) -> list[str]:
        """The members' string values, in declaration order."""
        return [member.value for member in cls]

    def __str__(self) -> str:
        return str(self.value)


class ConversationPhase(_ParsableEnum):
    """Where a conversation stands in the mashup tutoring flow (the default phase flow)."""

    INITIAL = "initial"
    GENRE_EXPLORATION = "genre_exploration"
    EDUCATIONAL_CLARIFICATION = "educational_clarification"
    CULTURAL_RESEARCH = "cultural_research"
    READY_FOR_GENERATION = "ready_for_generation"
    GENERATION_COMPLETE = "generation_complete"
    ERROR = "error"

    @classmethod
    def get_initial_phase(cls) -> ConversationPhase:
        """The phase a new conversation starts in."""
        return cls.INITIAL

    @classmethod
    def get_final_phase(cls) -> ConversationPhase:
        """The phase a successful conversation ends in."""
        return cls.GENERATION_COMPLETE

    @classmethod
    def is_terminal(cls, phase: ConversationPhase | str) -> bool:
        """Whether the conversation ends in `phase` (generation complete or error)."""
        return cls.parse(phase) in (cls.GENERATION_COMPLETE, cls.ERROR)

    @classmethod
    def get_next_phase(cls, current_phase: ConversationPhase | str) -> ConversationPhase:
        """The next phase of the linear flow; ERROR for a terminal phase, as in the seed."""
        order = list(cls)[:-1]
        current = cls.parse(current_phase)
        if current in (cls.GENERATION_COMPLETE, cls.ERROR):
            return cls.ERROR
        return order[order.index(current) + 1]

    @classmethod
    def is_valid_phase(cls, phase: str) -> bool:
        """Whether `phase` is one of the phases' string values."""
        return phase in cls.values()


class MessageRole(_ParsableEnum):
    """Who wrote a message."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"

    @classmethod
    def is_valid_role(cls, role: str) -> bool:
        """Whether `role` is one of the roles' string values."""
        return role in cls.values()


class ToolCallType(_ParsableEnum):
    """What kind of work a tool call did; OTHER covers any tool outside the seed's four."""

    WEB_SEARCH = "web_search"
    MUSIC_ANALYSIS = "music_analysis"
    CULTURAL_RESEARCH = "cultural_research"
    THEORY_EXPLANATION = "theory_explanation"
    OTHER = "other"

    @classmethod
    def is_valid_type(cls, tool_type: str) -> bool:
        """Whether `tool_type` is one of the types' string values."""
        return tool_type in cls.values()


class ToolCallStatus(_ParsableEnum):
    """The life of a tool call: pending, running, then completed, error or cancelled."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    ERROR = "error"
    CANCELLED = "cancelled"

    @classmethod
    def _missing_(cls, value: object) -> ToolCallStatus | None:
        # The seed wrote "failed" for what is now ERROR.
        return cls.ERROR if value == "failed" else None

    @property
    def is_finished(self) -> bool:
        """Whether the call has ended (completed, error or cancelled)."""
        return self in (ToolCallStatus.COMPLETED, ToolCallStatus.ERROR, ToolCallStatus.CANCELLED)
