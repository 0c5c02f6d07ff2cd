"""Plain-text rendering for the terminal: styles, aligned tables, sizes, durations, and the
views of `list`, `search` and `stats`. Pure functions from models to lines."""

from __future__ import annotations

import re
import shutil
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import click

from ..enums import ConversationPhase, MessageRole, ToolCallStatus
from ..models import ConversationSummary, SearchHit, StoreStats

__all__ = [
    "Cell",
    "Style",
    "conversation_table",
    "counts",
    "duration",
    "human_size",
    "plural",
    "search_lines",
    "stats_lines",
    "table",
    "timestamp",
    "width",
    "wrap",
]

ROLE_COLORS = {
    MessageRole.USER: "cyan",
    MessageRole.ASSISTANT: "green",
    MessageRole.SYSTEM: "magenta",
    MessageRole.TOOL: "yellow",
}
STATUS_COLORS = {
    ToolCallStatus.COMPLETED: "green",
    ToolCallStatus.ERROR: "red",
    ToolCallStatus.CANCELLED: "bright_black",
    ToolCallStatus.RUNNING: "yellow",
    ToolCallStatus.PENDING: "yellow",
}
_MATCH = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)


def phase_color(phase: ConversationPhase) -> str:
    """Red for error, green for a finished conversation, blue on the way."""
    if phase is ConversationPhase.ERROR:
        return "red"
    return "green" if phase is ConversationPhase.GENERATION_COMPLETE else "blue"


@dataclass(frozen=True)
class Style:
    """Applies click styles when colour is on, and nothing otherwise."""

    color: bool

    def __call__(self, text: str, **styles: Any) -> str:
        return click.style(text, **styles) if self.color and text else text

    def phase(self, phase: ConversationPhase) -> str:
        """A phase, red for error and green for a finished conversation."""
        return self(phase.value, fg=phase_color(phase))

    def status(self, status: ToolCallStatus) -> str:
        """A tool call's status in its colour."""
        return self(status.value, fg=STATUS_COLORS[status])

    def role(self, role: MessageRole, label: str | None = None) -> str:
        """A message role (or `label`) in the role's colour, bold."""
        return self(label or role.value, fg=ROLE_COLORS[role], bold=True)

    def matches(self, snippet: str) -> str:
        """A search snippet: ``**match**`` becomes bold when colour is on, stays as is when not."""
        if not self.color:
            return snippet
        return _MATCH.sub(lambda m: click.style(m[1], bold=True, fg="yellow"), snippet)


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, and the styles applied after padding."""

    text: str
    styles: dict[str, Any] = field(default_factory=dict)
    right: bool = False


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], style: Style) -> list[str]:
    """Rows aligned under bold headers, columns two spaces apart."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c.text)) for w, c in zip(widths, row, strict=True)]
    right = [bool(rows) and rows[0][i].right for i in range(len(headers))]
    head = [h.rjust(w) if r else h.ljust(w) for h, w, r in zip(headers, widths, right, strict=True)]
    lines = [style("  ".join(head).rstrip(), bold=True)]
    for row in rows:
        padded = [
            style(c.text.rjust(w) if c.right else c.text.ljust(w), **c.styles)
            for c, w in zip(row, widths, strict=True)
        ]
        lines.append("  ".join(padded).rstrip())
    return lines


def conversation_table(conversations: Iterable[ConversationSummary], style: Style) -> list[str]:
    """The table of `list` and `purge`: one conversation a row."""
    rows = [
        [
            Cell(c.conversation_id, {"bold": True}),
            Cell(c.owner or "-"),
            Cell(c.phase.value, {"fg": phase_color(c.phase)}),
            Cell(str(c.message_count), right=True),
            Cell(str(c.tool_call_count), right=True),
            Cell(str(c.web_source_count), right=True),
            Cell(timestamp(c.updated_at)),
        ]
        for c in conversations
    ]
    headers = ["ID", "OWNER", "PHASE", "MESSAGES", "TOOL CALLS", "SOURCES", "LAST ACTIVE (UTC)"]
    return table(headers, rows, style)


def search_lines(hits: Sequence[SearchHit], style: Style) -> list[str]:
    """Each hit as a heading (conversation, seq, role, score) over its wrapped snippet."""
    lines: list[str] = []
    for hit in hits:
        msg = hit.message
        lines.append(
            f"{style(msg.conversation_id, bold=True)}  #{msg.seq}  "
            f"{style.role(msg.role)}  score {hit.score:.3g}"
        )
        snippet = " ".join(hit.snippet.split())
        lines.extend(style.matches(line) for line in wrap(snippet, width() - 4, indent=4))
        lines.append("")
    return lines[:-1]


def stats_lines(stats: StoreStats, style: Style) -> list[str]:
    """The store's counts, size and version, then its busiest conversations."""
    facts = [
        ("conversations", str(stats.conversations)),
        ("messages", str(stats.messages)),
        ("tool calls", str(stats.tool_calls)),
        ("web sources", str(stats.web_sources)),
        ("mashups", str(stats.mashups)),
        ("phase changes", str(stats.phase_transitions)),
        ("database size", human_size(stats.size_bytes)),
        ("schema version", str(stats.schema_version)),
    ]
    label = max(len(name) for name, _ in facts)
    value = max(len(v) for _, v in facts)
    lines = [f"{style(name.ljust(label), bold=True)}  {v.rjust(value)}" for name, v in facts]
    if stats.busiest:
        lines += ["", style("busiest conversations", bold=True)]
        lines += conversation_table(stats.busiest, style)
    return lines


def counts(summary: ConversationSummary) -> str:
    """``6 messages, 2 tool calls, 5 sources, 1 mashup``."""
    return ", ".join(
        [
            plural(summary.message_count, "message"),
            plural(summary.tool_call_count, "tool call"),
            plural(summary.web_source_count, "source"),
            plural(summary.mashup_count, "mashup"),
        ]
    )


def plural(n: int, noun: str) -> str:
    """``1 source``, ``2 sources``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def timestamp(moment: datetime) -> str:
    """``2024-05-01 10:00:00`` in UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: float | None) -> str:
    """``850 ms``, ``1.2 s``, ``3 min 05 s``; empty when unknown."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds:02d} s"


def human_size(size: int) -> str:
    """``512 B``, ``4.0 KiB``, ``1.3 MiB``."""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def width() -> int:
    """The terminal's width, between 60 and 120 columns."""
    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))


def wrap(text: str, columns: int, *, indent: int = 0) -> list[str]:
    """Text wrapped to `columns`, paragraphs and blank lines kept, each line indented."""
    pad = " " * indent
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        chunks = textwrap.wrap(paragraph, max(columns, 20), replace_whitespace=False)
        lines.extend(pad + chunk if chunk else "" for chunk in chunks or [""])
    return lines
