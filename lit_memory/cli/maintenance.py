"""The commands that change the store or move data in and out: init, migrate, export,
import, delete and purge."""

from __future__ import annotations

import json
from datetime import datetime
from typing import IO

import click

from ..errors import ConversationExistsError, LitMemoryError
from ..models import ConversationSummary
from ..store import AsyncConversationDB
from ..transfer import parse_document
from .base import (
    PHASE_HELP,
    PHASES,
    current_url,
    dump,
    echo_json,
    echo_lines,
    fail,
    json_option,
    not_found,
    run,
    style,
    where,
)
from .markdown import transcript
from .params import to_moment
from .render import conversation_table, counts, plural
from .timeline import load_view

__all__ = ["delete", "export", "import_command", "init", "migrate", "purge"]


@click.command()
def init() -> None:
    """Create the database and bring its schema up to date.

    Safe to repeat: a database that is up to date is left as it is.

    \b
    Example:
        lit-memory --db memory.db init
    """
    _, after = run(lambda db: db.migrate(), create=True)
    click.echo(f"{where(current_url())} ready (schema version {after})")


@click.command()
@click.option(
    "--target",
    type=click.IntRange(min=0),
    help="Stop at this schema version [default: the latest]. Never downgrades.",
)
@json_option
def migrate(target: int | None, as_json: bool) -> None:
    """Apply missing schema migrations.

    Shows the schema version before and after, and the latest this lit-memory knows.

    \b
    Example:
        lit-memory migrate
        lit-memory --db memory.db migrate --json
    """

    async def work(db: AsyncConversationDB) -> tuple[int, int, int]:
        before, after = await db.migrate(target)
        return before, after, db.backend.latest_version

    before, after, latest = run(work, create=True)
    if as_json:
        echo_json({"before": before, "after": after, "latest": latest})
    elif before == after:
        click.echo(f"schema version {after}: nothing to apply (latest {latest})")
    else:
        click.echo(f"schema version {before} -> {after} (latest {latest})")


@click.command()
@click.argument("conversation_id", metavar="ID")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "markdown"]),
    default="json",
    show_default=True,
    help="json: the export document `import` restores; markdown: a readable transcript.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="Write to this file instead of stdout.",
)
def export(conversation_id: str, fmt: str, output: str) -> None:
    """Export a conversation as JSON or Markdown.

    The JSON document holds everything under the conversation, timestamps kept, and
    `import` restores it exactly; Markdown is a readable transcript.

    \b
    Example:
        lit-memory export demo-1 -o demo-1.json
        lit-memory export demo-1 --format markdown > demo-1.md
    """

    async def work(db: AsyncConversationDB) -> str | None:
        if fmt == "markdown":
            view = await load_view(db, conversation_id)
            return None if view is None else transcript(view)
        document = await db.export_conversation(conversation_id)
        return None if document is None else json.dumps(document, indent=2, ensure_ascii=False)

    text = run(work)
    if text is None:
        raise not_found(conversation_id)
    try:
        with click.open_file(output, "w", encoding="utf-8", atomic=output != "-") as out:
            out.write(text.rstrip("\n") + "\n")
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror or exc}") from None


@click.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--replace", is_flag=True, help="Overwrite a conversation that already exists.")
def import_command(file: IO[bytes], replace: bool) -> None:
    """Restore a conversation from an export document.

    FILE is a document written by `export` (--format json), or - for stdin.

    \b
    Example:
        lit-memory import demo-1.json
        lit-memory --db other.db import --replace - < demo-1.json
    """
    data = file.read()
    try:
        cid = parse_document(data).conversation.conversation_id
    except LitMemoryError as exc:
        raise fail(f"{getattr(file, 'name', '<stdin>')}: {exc}") from None

    async def work(db: AsyncConversationDB) -> ConversationSummary | None:
        try:
            await db.import_conversation(data, replace=replace)
        except ConversationExistsError:
            message = f"conversation {cid!r} already exists; use --replace to overwrite it"
            raise fail(message) from None
        return await db.get_conversation_summary(cid)

    summary = run(work, create=True)
    click.echo(f"imported {cid!r}" + (f" ({counts(summary)})" if summary else ""))


@click.command()
@click.argument("conversation_ids", metavar="ID...", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(conversation_ids: tuple[str, ...], yes: bool) -> None:
    """Delete conversations and everything under them.

    Messages, tool calls, sources, mashups and phase history go too. Asks first, unless
    --yes.

    \b
    Example:
        lit-memory delete demo-1
        lit-memory delete demo-1 demo-2 --yes
    """

    wanted = list(dict.fromkeys(conversation_ids))

    async def summaries(db: AsyncConversationDB) -> dict[str, ConversationSummary]:
        found = {cid: await db.get_conversation_summary(cid) for cid in wanted}
        return {cid: summary for cid, summary in found.items() if summary is not None}

    found = run(summaries)
    for cid in wanted:
        if cid not in found:
            raise not_found(cid)
    described = [f"{cid!r} ({counts(found[cid])})" for cid in wanted]
    if not yes:
        click.confirm(f"Delete {', '.join(described)}?", abort=True, err=True)

    async def erase(db: AsyncConversationDB) -> list[bool]:
        return [await db.delete_conversation(cid) for cid in wanted]

    for deleted, what in zip(run(erase), described, strict=True):
        click.echo(f"deleted {what}" if deleted else f"{what} was already gone")


@click.command()
@click.option(
    "--idle-since",
    metavar="DATE",
    callback=to_moment,
    required=True,
    help="Purge conversations with no activity since DATE: an ISO date or datetime (UTC "
    "unless it names an offset), or an age such as 30d, 12h, 45m, 2w.",
)
@click.option("--phase", type=PHASES, metavar="PHASE", help=PHASE_HELP)
@click.option("--owner", help="Only this owner's conversations.")
@click.option("--dry-run", is_flag=True, help="Show what would be purged; delete nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def purge(
    idle_since: datetime,
    phase: str | None,
    owner: str | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Delete the conversations idle since a date.

    Every conversation with no activity since DATE (optionally only in a phase or of an
    owner) goes, with everything under it. Shows the list and asks first, unless --yes
    or --dry-run.

    \b
    Example:
        lit-memory purge --idle-since 90d --dry-run
        lit-memory purge --idle-since 2024-01-01 --phase error --yes --json
    """

    def select(dry: bool) -> list[ConversationSummary]:
        return run(
            lambda db: db.purge_conversations(
                idle_since=idle_since, phase=phase, owner=owner, dry_run=dry
            )
        )

    ask = not (dry_run or yes)
    shown = ask and not as_json
    if ask:
        preview = select(True)
        if not preview:
            _report_purge([], idle_since, dry_run=dry_run, as_json=as_json, shown=False)
            return
        if shown:
            echo_lines(conversation_table(preview, style()))
        question = f"Delete {plural(len(preview), 'conversation')} and everything under them?"
        click.confirm(question, abort=True, err=True)
    purged = select(dry_run)
    _report_purge(purged, idle_since, dry_run=dry_run, as_json=as_json, shown=shown)


def _report_purge(
    purged: list[ConversationSummary],
    idle_since: datetime,
    *,
    dry_run: bool,
    as_json: bool,
    shown: bool,
) -> None:
    if as_json:
        echo_json(
            {
                "dry_run": dry_run,
                "idle_since": idle_since.isoformat(),
                "conversations": dump(purged),
            }
        )
        return
    if not purged:
        click.echo(f"no conversation idle since {idle_since.isoformat(timespec='seconds')}")
        return
    if not shown:
        echo_lines(conversation_table(purged, style()))
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {plural(len(purged), 'conversation')}" + (" (dry run)" if dry_run else ""))
