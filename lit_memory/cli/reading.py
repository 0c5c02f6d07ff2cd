"""The commands that read: list, show, search and stats."""

from __future__ import annotations

import shlex
from datetime import datetime

import click

from .base import (
    PHASE_HELP,
    PHASES,
    dump,
    echo_json,
    echo_lines,
    json_option,
    not_found,
    run,
    style,
)
from .params import format_cursor, to_cursor
from .render import conversation_table, search_lines, stats_lines
from .timeline import load_view, view_json, view_lines

__all__ = ["list_command", "search", "show", "stats"]


@click.command("list")
@click.option("--phase", type=PHASES, metavar="PHASE", help=PHASE_HELP)
@click.option("--owner", help="Only this owner's conversations.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Page size."
)
@click.option(
    "--before",
    "--page",
    "before",
    metavar="CURSOR",
    callback=to_cursor,
    help="Continue after a previous page: the cursor printed below it.",
)
@json_option
def list_command(
    phase: str | None,
    owner: str | None,
    limit: int,
    before: tuple[datetime, str] | None,
    as_json: bool,
) -> None:
    """List conversations by last activity, newest first.

    Each row counts the conversation's messages, tool calls and cited sources. A full
    page ends with the cursor of the next one (in --json: "next_before").

    \b
    Example:
        lit-memory list --phase cultural_research --owner alice
        lit-memory list --limit 50 --before '2024-05-01T10:00:00.000000+00:00,demo-7'
    """
    found = run(
        lambda db: db.list_conversations(phase=phase, owner=owner, limit=limit + 1, before=before)
    )
    page = found[:limit]
    cursor = format_cursor(page[-1]) if len(found) > limit else None
    if as_json:
        echo_json({"conversations": dump(page), "next_before": cursor})
        return
    if not page:
        click.echo("no conversations")
        return
    echo_lines(conversation_table(page, style()))
    if cursor:
        click.echo(style()(f"\nnext page: --before {shlex.quote(cursor)}", dim=True))


@click.command()
@click.argument("conversation_id", metavar="ID")
@json_option
def show(conversation_id: str, as_json: bool) -> None:
    """Show a conversation as a timeline.

    Phase changes, messages, tool calls with the sources they found, and mashups, in time
    order (times in UTC), under a header with the conversation's owner, phase and counts.

    \b
    Example:
        lit-memory show demo-1
        lit-memory --color show demo-1 | less -R
    """
    view = run(lambda db: load_view(db, conversation_id))
    if view is None:
        raise not_found(conversation_id)
    if as_json:
        echo_json(view_json(view))
    else:
        echo_lines(view_lines(view, style()))


@click.command()
@click.argument("query")
@click.option("--conversation", "conversation_id", metavar="ID", help="Search one conversation.")
@click.option("--owner", help="Search only this owner's conversations.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Most hits."
)
@click.option(
    "--raw",
    is_flag=True,
    help="QUERY is the engine's own syntax (SQLite FTS5, PostgreSQL websearch) instead of "
    "plain words that must all match.",
)
@json_option
def search(
    query: str,
    conversation_id: str | None,
    owner: str | None,
    limit: int,
    raw: bool,
    as_json: bool,
) -> None:
    """Full-text search over message content, best match first.

    Each hit shows its conversation, message seq, role, score and a snippet in which the
    matched words are bold (marked **so** without colours).

    \b
    Example:
        lit-memory search "bebop history"
        lit-memory search --raw 'bebop OR "hard bop"' --conversation demo-1 --json
    """
    hits = run(
        lambda db: db.search_messages(
            query, conversation_id=conversation_id, owner=owner, limit=limit, raw=raw
        )
    )
    if as_json:
        echo_json([hit.model_dump(mode="json") for hit in hits])
    elif not hits:
        click.echo(f"no messages match {query!r}")
    else:
        echo_lines(search_lines(hits, style()))


@click.command()
@click.option(
    "--busiest",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="How many of the conversations with the most messages to list.",
)
@json_option
def stats(busiest: int, as_json: bool) -> None:
    """Show counts, database size and schema version.

    Then the busiest conversations: those with the most messages.

    \b
    Example:
        lit-memory stats
        lit-memory --db memory.db stats --busiest 10 --json
    """
    result = run(lambda db: db.stats(busiest=busiest))
    if as_json:
        echo_json(result.model_dump(mode="json"))
    else:
        echo_lines(stats_lines(result, style()))
