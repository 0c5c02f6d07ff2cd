"""One conversation as a timeline: everything that happened in it, merged in time order, and
its rendering for the terminal (`show`) and as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..enums import MessageRole
from ..models import ConversationSummary, Mashup, Message, PhaseTransition, ToolCall
from ..store import AsyncConversationDB
from .render import Style, counts, duration, timestamp, width, wrap

__all__ = ["ConversationView", "Event", "event_time", "load_view", "view_json", "view_lines"]

Event = PhaseTransition | Message | ToolCall | Mashup
_KINDS: dict[type[Any], tuple[int, str]] = {
    PhaseTransition: (0, "phase"),
    Message: (1, "message"),
    ToolCall: (2, "tool_call"),
    Mashup: (3, "mashup"),
}
_LABEL = 10  # width of the event label column
_INDENT = 8 + 2 + _LABEL  # clock, gap, label
_TOOL_OUTPUT_LINES = 6  # a tool result message is shown this far; the rest is in export


@dataclass(frozen=True)
class ConversationView:
    """Everything stored about one conversation."""

    summary: ConversationSummary
    messages: list[Message]
    tool_calls: list[ToolCall]
    mashups: list[Mashup]
    transitions: list[PhaseTransition]

    def events(self) -> list[Event]:
        """Phase changes, messages, tool calls and mashups, oldest first."""
        merged: list[Event] = [*self.transitions, *self.messages, *self.tool_calls, *self.mashups]
        return sorted(merged, key=lambda e: (event_time(e), _KINDS[type(e)][0]))


async def load_view(db: AsyncConversationDB, conversation_id: str) -> ConversationView | None:
    """Read the whole conversation, or None if it does not exist."""
    summary = await db.get_conversation_summary(conversation_id)
    if summary is None:
        return None
    return ConversationView(
        summary=summary,
        messages=await db.get_messages(conversation_id),
        tool_calls=await db.get_tool_calls(conversation_id),
        mashups=await db.get_mashups(conversation_id),
        transitions=await db.get_phase_history(conversation_id),
    )


def event_time(event: Event) -> datetime:
    """When the event happened: a tool call when it started, anything else when stored."""
    if isinstance(event, Message):
        return event.timestamp
    if isinstance(event, ToolCall):
        return event.started_at or event.created_at
    return event.created_at


def view_json(view: ConversationView) -> dict[str, Any]:
    """The conversation and its timeline as JSON-able data; each event names its `kind`."""
    return {
        "conversation": view.summary.model_dump(mode="json"),
        "timeline": [
            {"kind": _KINDS[type(e)][1], **e.model_dump(mode="json")} for e in view.events()
        ],
    }


def view_lines(view: ConversationView, style: Style) -> list[str]:
    """The header, then the timeline with a date line whenever the day changes."""
    lines = _header(view.summary, style)
    day: date | None = None
    for event in view.events():
        moment = event_time(event)
        if moment.date() != day:
            day = moment.date()
            lines += ["", style(f"── {day.isoformat()} ──", dim=True)]
        lines += _event_lines(event, moment, style)
    return lines


def _header(summary: ConversationSummary, style: Style) -> list[str]:
    facts = [
        ("conversation", style(summary.conversation_id, bold=True)),
        ("owner", summary.owner or "-"),
        ("phase", style.phase(summary.phase)),
        ("created", f"{timestamp(summary.created_at)} UTC"),
        ("last active", f"{timestamp(summary.updated_at)} UTC"),
        ("counts", counts(summary)),
    ]
    return [f"{style(name.ljust(13), bold=True)}{value}" for name, value in facts]


def _event_lines(event: Event, moment: datetime, style: Style) -> list[str]:
    clock = style(moment.strftime("%H:%M:%S"), dim=True)
    if isinstance(event, Message):
        label = style.role(event.role, event.role.value.ljust(_LABEL))
        body = _message_body(event, style)
    elif isinstance(event, ToolCall):
        label = style("tool call".ljust(_LABEL), fg="yellow", bold=True)
        body = _tool_call_body(event, style)
    elif isinstance(event, Mashup):
        label = style("mashup".ljust(_LABEL), fg="magenta", bold=True)
        body = _mashup_body(event, style)
    else:
        label = style("phase".ljust(_LABEL), fg="blue", bold=True)
        body = [_transition_text(event, style)]
    first, *rest = body or [""]
    return [f"{clock}  {label}{first}", *(" " * _INDENT + line if line else "" for line in rest)]


def _message_body(message: Message, style: Style) -> list[str]:
    room = width() - _INDENT
    lines = wrap(message.content, room) if message.content.strip() else []
    if message.role is MessageRole.TOOL and len(lines) > _TOOL_OUTPUT_LINES:
        # The tool call event above shows the call; its full output is in `export`.
        hidden = len(lines) - _TOOL_OUTPUT_LINES
        lines = [*lines[:_TOOL_OUTPUT_LINES], style(f"… {hidden} more lines", dim=True)]
    requests = [_shorten(f"→ {call}", room) for call in _requested_calls(message)]
    return [*lines, *(style(text, fg="yellow") for text in requests)]


def _requested_calls(message: Message) -> list[str]:
    """The tool calls an assistant message asked for, when its framework payload lists them
    (LangChain's ``tool_calls``: name, args, id)."""
    data = (message.payload or {}).get("data")
    calls = data.get("tool_calls") if isinstance(data, dict) else None
    if not isinstance(calls, list):
        return []
    found = []
    for call in calls:
        if isinstance(call, dict) and isinstance(call.get("name"), str):
            args = call.get("args")
            shown = (
                ", ".join(f"{k}={v!r}" for k, v in args.items()) if isinstance(args, dict) else ""
            )
            found.append(f"{call['name']}({shown})")
    return found


def _transition_text(change: PhaseTransition, style: Style) -> str:
    text = f"{style.phase(change.from_phase)} -> {style.phase(change.to_phase)}"
    if not change.accepted:
        text += "  " + style("refused", fg="red", bold=True)
    return text + (f"  ({change.reason})" if change.reason else "")


def _tool_call_body(call: ToolCall, style: Style) -> list[str]:
    name = call.tool_type.value + (f" · {call.tool_name}" if call.tool_name else "")
    took = duration(call.duration_ms)
    lines = [f"{style(name, bold=True)}  {style.status(call.status)}{'  ' + took if took else ''}"]
    room = width() - _INDENT
    lines.append(style(_shorten(f"input: {call.input_data}", room), dim=True))
    if call.error_message:
        kind = f"{call.error_type}: " if call.error_type else ""
        lines += [
            style(line, fg="red") for line in wrap(f"error: {kind}{call.error_message}", room)
        ]
    for number, source in enumerate(call.sources, start=1):
        score = "" if source.relevance_score is None else f"  score {source.relevance_score:.2f}"
        title = source.title or source.url
        lines.append(f"{source.rank or number:>2}. {style(title, bold=True)}{score}")
        lines.append("    " + style(source.url, fg="cyan", underline=True))
    return lines


def _mashup_body(mashup: Mashup, style: Style) -> list[str]:
    lines = [style(mashup.title, bold=True)]
    if mashup.description:
        lines += wrap(mashup.description, width() - _INDENT)
    if mashup.audio_file_path:
        lines.append(f"audio: {style(mashup.audio_file_path, fg='cyan')}")
    return lines


def _shorten(text: str, columns: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= columns else flat[: columns - 1] + "…"
