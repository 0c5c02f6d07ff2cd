"""Choose the most recent messages of a conversation that fit a token budget.

Unlike ``langchain_core.messages.trim_messages``, the window never separates an
AIMessage that issued tool calls from the ToolMessages that answer them, so chat-model
providers accept it: they reject (HTTP 400) a tool result whose call is missing and a
tool call whose result is missing.

Rules applied by :func:`select_window`:

* The leading SystemMessage is pinned first when ``keep_system`` is true, otherwise it
  is left out. SystemMessages anywhere else are left out too: most providers accept
  system messages only at the start.
* An optional ``sources_message`` is pinned right after the system message.
* Pinned messages count toward the budget. When they alone exceed it, the window is
  just the pinned messages.
* The rest of the window is a contiguous suffix of the cleaned history, made of whole
  turn units (see :func:`group_turn_units`), taken newest first while they fit; the
  first unit that does not fit ends the window.
* The cleaned history leaves out orphan ToolMessages and AI tool-call units whose calls
  are not all answered, wherever they are (including at the very end of the history:
  providers reject an unanswered tool call in the input).
* The window never starts with a ToolMessage (units start with the AI message). It may
  start with an AIMessage without tool calls: forcing a HumanMessage first would drop
  context for the few providers that need it, and those can filter the window further.
"""

import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

__all__ = [
    "TokenCounter",
    "approximate_token_count",
    "format_sources",
    "group_turn_units",
    "is_complete_unit",
    "select_window",
    "validate_window",
]

TokenCounter = Callable[[BaseMessage], int]
"""Counts the tokens of one message."""

_CHARS_PER_TOKEN = 4
# Role markers and separators cost a few tokens per message with every provider.
_MESSAGE_OVERHEAD = 4


def _to_json(value: Any) -> str:
    # default=str: tool arguments may hold values json cannot encode (dates, UUIDs...).
    return json.dumps(value, ensure_ascii=False, default=str)


def _content_text(content: str | list[str | dict[Any, Any]]) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        else:
            parts.append(_to_json(block))
    return "".join(parts)


def _tool_calls_text(message: AIMessage) -> str:
    parts = [(call["name"] or "") + _to_json(call["args"]) for call in message.tool_calls]
    # Invalid calls keep their raw argument string, and are still sent to the model.
    parts += [(call["name"] or "") + (call["args"] or "") for call in message.invalid_tool_calls]
    return "".join(parts)


def approximate_token_count(message: BaseMessage) -> int:
    """Estimate the tokens of one message: about 4 characters per token plus 4 per message.

    Counts the text content (other content blocks as JSON) and the names and arguments of
    tool calls; a ToolMessage's artifact is not counted, as it is never sent to the model.
    """
    text = _content_text(message.content)
    if isinstance(message, AIMessage):
        text += _tool_calls_text(message)
    return _MESSAGE_OVERHEAD + math.ceil(len(text) / _CHARS_PER_TOKEN)


def _call_ids(message: BaseMessage) -> list[str | None]:
    if not isinstance(message, AIMessage):
        return []
    # Providers receive invalid tool calls as tool calls too, so they need answers as well.
    calls = [*message.tool_calls, *message.invalid_tool_calls]
    return [call["id"] for call in calls]


def group_turn_units(messages: Sequence[BaseMessage]) -> list[list[BaseMessage]]:
    """Split a history into atomic units, in order, that a window keeps or drops whole.

    An AIMessage with tool calls forms one unit with the ToolMessages immediately following
    it that answer its calls; every other message is a unit of its own.
    """
    units: list[list[BaseMessage]] = []
    unanswered: set[str | None] = set()
    for message in messages:
        if isinstance(message, ToolMessage) and message.tool_call_id in unanswered:
            unanswered.discard(message.tool_call_id)
            units[-1].append(message)
        else:
            units.append([message])
            unanswered = set(_call_ids(message)) - {None}
    return units


def is_complete_unit(unit: Sequence[BaseMessage]) -> bool:
    """Tell whether a unit from :func:`group_turn_units` may be sent to a model.

    False for an orphan ToolMessage and for an AIMessage whose tool calls are not all
    answered within the unit (a call without an id can never be answered).
    """
    first = unit[0]
    if isinstance(first, ToolMessage):
        return False
    answered = {message.tool_call_id for message in unit[1:] if isinstance(message, ToolMessage)}
    return all(call_id is not None and call_id in answered for call_id in _call_ids(first))


def _tokens(messages: Iterable[BaseMessage], token_counter: TokenCounter) -> int:
    return sum(token_counter(message) for message in messages)


def select_window(
    messages: Iterable[BaseMessage],
    max_tokens: int,
    *,
    token_counter: TokenCounter = approximate_token_count,
    keep_system: bool = True,
    sources_message: BaseMessage | None = None,
) -> list[BaseMessage]:
    """Return the longest valid suffix of the history that fits in ``max_tokens``.

    The rules are in the module docstring; notably the leading system message (when
    ``keep_system``) and ``sources_message`` are always returned, even over the budget.
    """
    if max_tokens < 0:
        raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")
    history = list(messages)
    pinned: list[BaseMessage] = []
    if history and isinstance(history[0], SystemMessage):
        system = history.pop(0)
        if keep_system:
            pinned.append(system)
    if sources_message is not None:
        pinned.append(sources_message)
    budget = max_tokens - _tokens(pinned, token_counter)
    kept: list[list[BaseMessage]] = []
    for unit in reversed(_sendable_units(history)):
        cost = _tokens(unit, token_counter)
        if cost > budget:
            break
        budget -= cost
        kept.append(unit)
    return pinned + [message for unit in reversed(kept) for message in unit]


def _sendable_units(history: Sequence[BaseMessage]) -> list[list[BaseMessage]]:
    return [
        unit
        for unit in group_turn_units(history)
        if is_complete_unit(unit) and not isinstance(unit[0], SystemMessage)
    ]


def format_sources(sources: Sequence[tuple[str, str | None]]) -> str:
    """Format ``(url, title)`` pairs as a numbered "Sources:" list for a sources message.

    A missing or blank title shows the URL alone; no sources give an empty string.
    """
    if not sources:
        return ""
    lines = ["Sources:"]
    for number, (url, title) in enumerate(sources, start=1):
        label = f"{title.strip()} — {url}" if title and title.strip() else url
        lines.append(f"[{number}] {label}")
    return "\n".join(lines)


def validate_window(messages: Sequence[BaseMessage]) -> list[str]:
    """List the ways a message list breaks chat providers' rules; empty when it is valid.

    Checks that system messages only open the list, and that each AIMessage's tool calls
    and the ToolMessages right after it answer each other exactly, in any order.
    """
    problems: list[str] = []
    unanswered: dict[str, int] = {}
    answered: set[str] = set()
    opened = False
    for index, message in enumerate(messages):
        if not isinstance(message, ToolMessage):
            problems += _unanswered_problems(unanswered)
            unanswered, answered = _issued_calls(index, message, problems), set()
        if isinstance(message, SystemMessage) and opened:
            problems.append(f"message {index}: system message after the start")
        opened = opened or not isinstance(message, SystemMessage)
        if isinstance(message, ToolMessage):
            problems += _answer(index, message, unanswered, answered)
    return problems + _unanswered_problems(unanswered)


def _issued_calls(index: int, message: BaseMessage, problems: list[str]) -> dict[str, int]:
    calls: dict[str, int] = {}
    for call_id in _call_ids(message):
        if call_id is None:
            problems.append(f"message {index}: tool call without an id")
        else:
            calls[call_id] = index
    return calls


def _answer(
    index: int, message: ToolMessage, unanswered: dict[str, int], answered: set[str]
) -> list[str]:
    call_id = message.tool_call_id
    if call_id in answered:
        return [f"message {index}: second result for tool call {call_id!r}"]
    if unanswered.pop(call_id, None) is None:
        return [f"message {index}: tool result {call_id!r} answers no preceding tool call"]
    answered.add(call_id)
    return []


def _unanswered_problems(unanswered: dict[str, int]) -> list[str]:
    return [
        f"message {index}: tool call {call_id!r} has no result right after it"
        for call_id, index in unanswered.items()
    ]
