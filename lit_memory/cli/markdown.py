"""A conversation as a Markdown transcript (`export --format markdown`)."""

from __future__ import annotations

import re

from ..models import Mashup, Message, PhaseTransition, ToolCall
from .render import counts, duration, timestamp
from .timeline import ConversationView, Event, event_time

__all__ = ["transcript"]


def transcript(view: ConversationView) -> str:
    """The header as a list of facts, then every event under its own heading, in time order."""
    summary = view.summary
    lines = [
        f"# Conversation {summary.conversation_id}",
        "",
        f"- **Owner:** {summary.owner or '-'}",
        f"- **Phase:** {summary.phase.value}",
        f"- **Created:** {timestamp(summary.created_at)} UTC",
        f"- **Last active:** {timestamp(summary.updated_at)} UTC",
        f"- **Contents:** {counts(summary)}",
    ]
    for event in view.events():
        lines += ["", f"## {_heading(event)}", "", *_body(event)]
    return "\n".join(lines).rstrip() + "\n"


def _heading(event: Event) -> str:
    when = f"{timestamp(event_time(event))} · "
    if isinstance(event, Message):
        return when + event.role.value.capitalize()
    if isinstance(event, ToolCall):
        took = duration(event.duration_ms)
        name = event.tool_name or event.tool_type.value
        return f"{when}Tool call: {name} ({event.status.value}{', ' + took if took else ''})"
    if isinstance(event, Mashup):
        return f"{when}Mashup: {event.title}"
    return f"{when}Phase: {event.from_phase.value} → {event.to_phase.value}"


def _body(event: Event) -> list[str]:
    if isinstance(event, Message):
        return [event.content]
    if isinstance(event, ToolCall):
        return _tool_call(event)
    if isinstance(event, Mashup):
        lines = [event.description] if event.description else []
        if event.audio_file_path:
            lines += ["", f"Audio: `{event.audio_file_path}`"]
        return lines or ["(no description)"]
    return _transition(event)


def _tool_call(call: ToolCall) -> list[str]:
    lines = [f"Type: {call.tool_type.value}", "", "Input:", "", *_fence(call.input_data)]
    if call.error_message:
        kind = f"{call.error_type}: " if call.error_type else ""
        lines += ["", f"Error: {kind}{call.error_message}"]
    if call.sources:
        lines += ["", "Sources:", ""]
    for number, source in enumerate(call.sources, start=1):
        score = "" if source.relevance_score is None else f" (score {source.relevance_score:.2f})"
        title = (source.title or source.url).replace("]", "\\]")
        lines.append(f"{source.rank or number}. [{title}]({source.url}){score}")
    return lines


def _transition(change: PhaseTransition) -> list[str]:
    lines = [change.reason or "(no reason given)"]
    if not change.accepted:
        lines += ["", "*Refused by the phase flow; the phase did not change.*"]
    return lines


def _fence(text: str) -> list[str]:
    # A fence longer than any backtick run inside keeps the input verbatim.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, text, fence]
