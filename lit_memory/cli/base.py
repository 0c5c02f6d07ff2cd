"""The click plumbing every command shares: the store's URL, one event loop per command,
errors turned into one line on stderr, JSON and coloured output."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click

from ..backends import resolve_url
from ..enums import ConversationPhase
from ..errors import ConfigurationError, LitMemoryError
from ..models import ConversationSummary
from ..store import AsyncConversationDB
from .render import Style

__all__ = [
    "PHASES",
    "PHASE_HELP",
    "Settings",
    "current_url",
    "dump",
    "echo_json",
    "echo_lines",
    "fail",
    "json_option",
    "not_found",
    "run",
    "style",
    "where",
]

PHASES = click.Choice(ConversationPhase.values(), case_sensitive=False)
PHASE_HELP = f"Only conversations in this phase: {', '.join(ConversationPhase.values())}."

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    """What the global options chose, kept on the click context."""

    url: str | None
    """The database path or URL (None: ``$LIT_MEMORY_URL``, else ``./lit_memory.db``)."""


def run(work: Callable[[AsyncConversationDB], Awaitable[T]], *, create: bool = False) -> T:
    """Open the store named by the global options, run `work` on it in a fresh event loop and
    close it; a `LitMemoryError` becomes a one-line error (exit code 1).

    Unless `create`, a SQLite file that does not exist is an error rather than created, so a
    mistyped path does not leave an empty database behind.
    """
    url = current_url()
    missing = None if create else _missing_file(url)
    if missing is not None:
        raise fail(f"no database at {missing}; create it with 'lit-memory init'")

    async def session() -> T:
        async with AsyncConversationDB(url) as db:
            return await work(db)

    try:
        return asyncio.run(session())
    except LitMemoryError as exc:
        raise fail(str(exc)) from None


def current_url() -> str | None:
    """The database path or URL the global options chose (None: the store's default)."""
    return click.get_current_context().ensure_object(Settings).url


def _missing_file(url: str | None) -> str | None:
    try:
        scheme, target = resolve_url(url)
    except ConfigurationError:
        return None  # opening the store reports it
    if scheme != "sqlite" or target == ":memory:" or target.startswith("file:"):
        return None
    return None if Path(target).exists() else target


def fail(message: str) -> click.ClickException:
    """A one-line error for stderr (exit code 1); pydantic's multi-line details are folded."""
    lines = [
        line.strip()
        for line in message.splitlines()
        if line.strip() and not line.strip().startswith("For further information")
    ]
    detail = [line.split(" [type=", 1)[0] for line in lines[1:3]]
    return click.ClickException(": ".join([lines[0] if lines else "failed", *detail]))


def not_found(conversation_id: str) -> click.ClickException:
    """The error for a conversation that does not exist."""
    return click.ClickException(f"no conversation {conversation_id!r}")


def where(url: str | None) -> str:
    """The database a URL names, for messages: the SQLite path, or the server URL without
    its password."""
    try:
        scheme, target = resolve_url(url)
    except ConfigurationError:
        return str(url)
    if scheme == "sqlite":
        return target
    parts = urlsplit(target)
    if parts.password is None:
        return target
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def style() -> Style:
    """The styling for stdout: colours when it is a terminal, unless ``--no-color`` or
    ``NO_COLOR`` say otherwise (``--color`` forces them)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.color is not None:
        return Style(ctx.color)
    terminal = sys.stdout is not None and sys.stdout.isatty()
    return Style(terminal and not os.environ.get("NO_COLOR"))


def json_option(func: F) -> F:
    """The ``--json`` flag of the listing commands."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print machine-readable JSON instead."
    )(func)


def echo_json(data: Any) -> None:
    """Print JSON, indented, with non-ASCII text kept readable."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def echo_lines(lines: list[str]) -> None:
    """Print rendered lines to stdout (ANSI styles stripped when it is not a terminal)."""
    click.echo("\n".join(lines))


def dump(conversations: list[ConversationSummary]) -> list[dict[str, Any]]:
    """Conversations as JSON-able data."""
    return [c.model_dump(mode="json") for c in conversations]
