"""The `lit-memory` group: global options, and the commands gathered from their modules."""

from __future__ import annotations

import click

from .. import __version__
from .base import Settings
from .maintenance import delete, export, import_command, init, migrate, purge
from .reading import list_command, search, show, stats

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--url",
    "--db",
    "url",
    metavar="URL",
    help="The database: a SQLite file path, sqlite:///path, or postgresql://... "
    "[default: $LIT_MEMORY_URL, else ./lit_memory.db]",
)
@click.option(
    "--color/--no-color",
    default=None,
    help="Force colours on or off [default: on when stdout is a terminal and NO_COLOR is unset].",
)
@click.version_option(__version__, "-V", "--version", prog_name="lit-memory")
@click.pass_context
def main(ctx: click.Context, url: str | None, color: bool | None) -> None:
    """Inspect and manage lit-memory's conversation memory: conversations, messages, tool
    calls, cited sources, mashups and phase changes.

    The listing commands (list, show, search, stats, purge, migrate) take --json for
    machine-readable output. Errors go to stderr as one line; the exit code is 1 for a
    refused operation or a database problem and 2 for a usage mistake.

    \b
    Example:
        lit-memory list --limit 10
        lit-memory --db memory.db show demo-1
        LIT_MEMORY_URL=postgresql://localhost/memory lit-memory stats
    """
    ctx.obj = Settings(url)
    if color is not None:
        ctx.color = color


for _command in (
    init,
    migrate,
    list_command,
    show,
    search,
    stats,
    export,
    import_command,
    delete,
    purge,
):
    main.add_command(_command)
