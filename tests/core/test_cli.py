"""The `lit-memory` command line, driven through click's CliRunner against real SQLite files
populated through the store API; the installed entry points run once as subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import click
import pytest
from click.testing import CliRunner, Result

from lit_memory import AsyncConversationDB
from lit_memory.cli import main
from lit_memory.cli.base import where
from lit_memory.cli.params import parse_cursor, parse_moment
from lit_memory.cli.render import duration, human_size

T = TypeVar("T")
OLD = "2020-01-02T03:04:05.000000+00:00"


# -- fixtures and helpers -----------------------------------------------------------------------


def on_store(url: str, work: Callable[[AsyncConversationDB], Awaitable[T]]) -> T:
    """Run `work` on the store at `url`, outside any CLI call."""

    async def session() -> T:
        async with AsyncConversationDB(url) as db:
            return await work(db)

    return asyncio.run(session())


async def populate(db: AsyncConversationDB) -> None:
    """demo-1 (alice, everything), demo-2 (bob, two messages), old-1 (no owner, idle since 2020)."""
    await db.create_conversation("demo-1", {"topic": "bebop"}, owner="alice")
    await db.add_messages(
        "demo-1",
        [
            {"role": "system", "content": "You are a music tutor."},
            {"role": "user", "content": "Mash up bebop with drill, please. " * 6},
        ],
    )
    await db.update_conversation_phase("demo-1", "genre_exploration", reason="genres named")
    tid = await db.add_tool_call(
        "demo-1", "web_search", {"query": "bebop history"}, status="running",
        tool_name="tavily_search", duration_ms=1250.0,
    )  # fmt: skip
    assert tid is not None
    await db.update_tool_call(tid, output_data={"results": 2}, status="completed")
    await db.add_web_sources(
        tid,
        [
            {"url": "https://jazz.example/bebop", "title": "Bebop", "relevance_score": 0.93,
             "rank": 1},
            {"url": "https://jazz.example/bird", "title": "Charlie Parker", "rank": 2},
        ],
    )  # fmt: skip
    await db.add_tool_call("demo-1", "other", "x", status="error", error_message="boom")
    await db.add_message("demo-1", "assistant", "Bebop is fast, dense jazz from the 1940s.")
    await db.create_mashup("demo-1", "Bebop x Drill", "tempo study", "out/mix.wav",
                           tool_call_id=tid)  # fmt: skip
    await db.create_conversation("demo-2", owner="bob")
    await db.add_messages(
        "demo-2",
        [{"role": "user", "content": "Drill beats?"}, {"role": "assistant", "content": "808s."}],
    )
    await db.create_conversation("old-1")
    await db.add_message("old-1", "user", "An old bebop question")
    document = await db.export_conversation("old-1")
    assert document is not None
    await db.import_conversation(_aged(document), replace=True)


def _aged(value: Any) -> Any:
    """The document with every timestamp moved back to 2020."""
    if isinstance(value, dict):
        return {
            k: OLD if (k.endswith("_at") or k == "timestamp") and v else _aged(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_aged(v) for v in value]
    return value


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite file holding demo-1, demo-2 and old-1."""
    path = str(tmp_path / "cli.db")
    on_store(path, populate)
    return path


@pytest.fixture
def cli(url: str) -> Callable[..., Result]:
    """Invoke `lit-memory --db <url> ARGS...`; `input=` feeds stdin."""

    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        return CliRunner().invoke(main, ["--db", url, *args], input=input)

    return invoke


def ok(result: Result) -> str:
    """The stdout of a successful run."""
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def error(result: Result, code: int = 1) -> str:
    """The stderr of a failed run, checked to be a clean error without a traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    if code == 1:
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    return result.stderr


def ids(conversations: list[dict[str, Any]]) -> list[str]:
    return [c["conversation_id"] for c in conversations]


# -- help, schema ---------------------------------------------------------------------------------


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    assert set(main.commands) == {
        "init", "migrate", "list", "show", "search", "stats", "export", "import", "delete", "purge",
    }  # fmt: skip
    for args in [["--help"], *([name, "--help"] for name in main.commands)]:
        result = runner.invoke(main, args)
        assert result.exit_code == 0, args
        assert "Example" in result.stdout, args
        assert "Usage: " in result.stdout


def test_init_and_migrate_report_versions(tmp_path: Path) -> None:
    path = str(tmp_path / "fresh.db")
    runner = CliRunner()
    first = json.loads(
        ok(runner.invoke(main, ["--db", path, "migrate", "--target", "1", "--json"]))
    )
    assert first["before"] == 0 and first["after"] == 1 and first["latest"] > 1
    latest = first["latest"]
    assert ok(runner.invoke(main, ["--db", path, "migrate"])) == (
        f"schema version 1 -> {latest} (latest {latest})\n"
    )
    assert "nothing to apply" in ok(runner.invoke(main, ["--db", path, "migrate"]))
    assert on_store(path, lambda db: db.schema_version()) == latest
    other = str(tmp_path / "other.db")
    assert ok(runner.invoke(main, ["--url", other, "init"])) == (
        f"{other} ready (schema version {latest})\n"
    )
    assert on_store(other, lambda db: db.schema_version()) == latest


# -- list -----------------------------------------------------------------------------------------


def test_list_shows_conversations_by_last_activity(cli: Callable[..., Result]) -> None:
    lines = ok(cli("list")).splitlines()
    assert lines[0] == (
        "ID      OWNER  PHASE              MESSAGES  TOOL CALLS  SOURCES  LAST ACTIVE (UTC)"
    )
    assert [line.split()[0] for line in lines[1:]] == ["demo-2", "demo-1", "old-1"]
    assert lines[2].split()[:6] == ["demo-1", "alice", "genre_exploration", "3", "2", "2"]
    assert lines[3].split()[1] == "-" and "2020-01-02 03:04:05" in lines[3]
    assert all(line.index("20") == lines[0].index("LAST ACTIVE") for line in lines[1:])

    assert [line.split()[0] for line in ok(cli("list", "--owner", "alice")).splitlines()[1:]] == [
        "demo-1"
    ]
    by_phase = ok(cli("list", "--phase", "INITIAL", "--json"))
    assert ids(json.loads(by_phase)["conversations"]) == ["demo-2", "old-1"]
    assert ok(cli("list", "--owner", "nobody")) == "no conversations\n"


def test_list_pages_with_the_printed_cursor(cli: Callable[..., Result]) -> None:
    first = ok(cli("list", "--limit", "2"))
    hint = first.splitlines()[-1]
    assert hint.startswith("next page: --before ")
    second = ok(cli("list", "--limit", "2", "--before", hint.split("--before ", 1)[1]))
    assert [line.split()[0] for line in second.splitlines()[1:]] == ["old-1"]
    assert "next page" not in second

    seen: list[str] = []
    cursor: str | None = None
    while True:
        after = ["--page", cursor] if cursor else []
        page = json.loads(ok(cli("list", "--limit", "1", "--json", *after)))
        seen += ids(page["conversations"])
        cursor = page["next_before"]
        if cursor is None:
            break
    assert seen == ["demo-2", "demo-1", "old-1"]
    assert page["conversations"][0]["message_count"] == 1


def test_list_refuses_a_bad_cursor_and_limit(cli: Callable[..., Result]) -> None:
    assert "not a page cursor" in error(cli("list", "--before", "yesterday"), code=2)
    assert "not a page cursor" in error(cli("list", "--before", "2024-01-01,"), code=2)
    error(cli("list", "--limit", "0"), code=2)


# -- show -----------------------------------------------------------------------------------------


def test_show_renders_a_timeline(cli: Callable[..., Result]) -> None:
    out = ok(cli("show", "demo-1"))
    assert "\x1b[" not in out
    header = out.split("\n\n")[0].splitlines()
    assert header[0].split() == ["conversation", "demo-1"]
    assert header[1].split() == ["owner", "alice"]
    assert header[2].split() == ["phase", "genre_exploration"]
    assert header[5] == "counts       3 messages, 2 tool calls, 2 sources, 1 mashup"
    order = [
        "system    You are a music tutor.",
        "user      Mash up bebop",
        "phase     initial -> genre_exploration  (genres named)",
        "tool call web_search · tavily_search  completed  1.2 s",
        'input: {"query":"bebop history"}',
        " 1. Bebop  score 0.93",
        "https://jazz.example/bebop",
        " 2. Charlie Parker",
        "tool call other  error",
        "error: boom",
        "assistant Bebop is fast",
        "mashup    Bebop x Drill",
        "tempo study",
        "audio: out/mix.wav",
    ]
    positions = [out.index(text) for text in order]
    assert positions == sorted(positions)
    user_lines = [line for line in out.splitlines() if "Mash up" in line or "please." in line]
    assert len(user_lines) > 1 and all(len(line) <= 120 for line in user_lines)
    assert all(line.startswith(" " * 20) for line in user_lines[1:])


def test_show_json_holds_the_conversation_and_its_timeline(cli: Callable[..., Result]) -> None:
    data = json.loads(ok(cli("show", "demo-1", "--json")))
    assert data["conversation"]["owner"] == "alice"
    assert data["conversation"]["web_source_count"] == 2
    kinds = [event["kind"] for event in data["timeline"]]
    assert kinds == ["message", "message", "phase", "tool_call", "tool_call", "message", "mashup"]
    call = data["timeline"][3]
    assert call["status"] == "completed" and call["duration_ms"] == 1250.0
    assert [s["url"] for s in call["sources"]] == [
        "https://jazz.example/bebop",
        "https://jazz.example/bird",
    ]


def test_show_colours_only_when_asked_or_on_a_terminal(cli: Callable[..., Result]) -> None:
    coloured = ok(cli("--color", "show", "demo-1"))
    assert "\x1b[" in coloured
    assert click.style("user".ljust(10), fg="cyan", bold=True) in coloured
    assert "\x1b[" not in ok(cli("--no-color", "show", "demo-1"))
    assert ok(cli("--no-color", "show", "demo-1")) == ok(cli("show", "demo-1"))


def test_show_an_unknown_conversation_is_one_line_exit_1(cli: Callable[..., Result]) -> None:
    assert error(cli("show", "nope")) == "Error: no conversation 'nope'\n"
    assert error(cli("export", "nope")) == "Error: no conversation 'nope'\n"


# -- search ---------------------------------------------------------------------------------------


def test_search_lists_hits_with_marked_snippets(cli: Callable[..., Result]) -> None:
    out = ok(cli("search", "bebop"))
    headings = [line.split()[:3] for line in out.splitlines() if line and line[0] != " "]
    assert sorted(headings) == [
        ["demo-1", "#2", "user"],
        ["demo-1", "#3", "assistant"],
        ["old-1", "#1", "user"],
    ]
    assert "Mash up **bebop** with" in out and "**Bebop** is fast" in out
    coloured = ok(cli("--color", "search", "bebop"))
    assert "**" not in coloured and click.style("bebop", bold=True, fg="yellow") in coloured

    hits = json.loads(ok(cli("search", "bebop", "--owner", "alice", "--limit", "1", "--json")))
    assert len(hits) == 1 and hits[0]["message"]["conversation_id"] == "demo-1"
    assert "**" in hits[0]["snippet"] and isinstance(hits[0]["score"], float)
    scoped = json.loads(ok(cli("search", "bebop", "--conversation", "old-1", "--json")))
    assert [(h["message"]["conversation_id"], h["message"]["seq"]) for h in scoped] == [
        ("old-1", 1)
    ]
    assert ok(cli("search", "zither")) == "no messages match 'zither'\n"


def test_search_errors_are_one_line(cli: Callable[..., Result]) -> None:
    assert "bad full-text query" in error(cli("search", '"unterminated', "--raw"))
    assert "query is empty" in error(cli("search", "  "))
    raw = json.loads(ok(cli("search", "drill NOT beats", "--raw", "--json")))
    assert {h["message"]["conversation_id"] for h in raw} == {"demo-1"}


# -- export and import ----------------------------------------------------------------------------


def test_export_json_is_the_document_and_import_restores_it(
    cli: Callable[..., Result], url: str, tmp_path: Path
) -> None:
    document = on_store(url, lambda db: db.export_conversation("demo-1"))
    printed = ok(cli("export", "demo-1"))
    assert json.loads(printed) == document and printed.startswith('{\n  "format"')
    target = tmp_path / "out" / "demo-1.json"
    target.parent.mkdir()
    assert ok(cli("export", "demo-1", "-o", str(target))) == ""
    assert json.loads(target.read_text("utf-8")) == document

    ok(cli("delete", "demo-1", "--yes"))
    assert on_store(url, lambda db: db.get_conversation("demo-1")) is None
    assert ok(cli("import", str(target))) == (
        "imported 'demo-1' (3 messages, 2 tool calls, 2 sources, 1 mashup)\n"
    )
    assert on_store(url, lambda db: db.export_conversation("demo-1")) == document


def test_import_refuses_an_existing_conversation_unless_replace(
    cli: Callable[..., Result], url: str
) -> None:
    text = ok(cli("export", "old-1"))
    message = error(cli("import", "-", input=text))
    assert message == "Error: conversation 'old-1' already exists; use --replace to overwrite it\n"
    edited = json.loads(text)
    edited["messages"][0]["content"] = "A replaced question"
    ok(cli("import", "--replace", "-", input=json.dumps(edited)))
    messages = on_store(url, lambda db: db.get_messages("old-1"))
    assert [m.content for m in messages] == ["A replaced question"]


def test_import_refuses_what_is_not_an_export_document(
    cli: Callable[..., Result], url: str, tmp_path: Path
) -> None:
    assert "not a lit-memory conversation document" in error(cli("import", "-", input="[1, 2"))
    assert "conversation: Field required" in error(cli("import", "-", input='{"a": 1}'))
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe not json")
    assert error(cli("import", str(bad))).startswith(f"Error: {bad}: not a lit-memory")
    assert "No such file" in error(cli("import", str(tmp_path / "missing.json")), code=2)
    assert len(on_store(url, lambda db: db.list_conversations())) == 3


def test_export_markdown_is_a_readable_transcript(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    text = ok(cli("export", "demo-1", "--format", "markdown"))
    assert text.startswith("# Conversation demo-1\n\n- **Owner:** alice\n")
    assert "· User\n\nMash up bebop with drill" in text
    assert "· Phase: initial → genre_exploration\n\ngenres named" in text
    assert "Tool call: tavily_search (completed, 1.2 s)" in text
    assert "1. [Bebop](https://jazz.example/bebop) (score 0.93)" in text
    assert "Error: boom" in text and "Audio: `out/mix.wav`" in text
    assert "\x1b[" not in ok(cli("--color", "export", "demo-1", "--format", "markdown"))
    error(cli("export", "demo-1", "--format", "html"), code=2)
    assert "cannot write" in error(cli("export", "demo-1", "-o", str(tmp_path / "no" / "x.md")))


# -- delete and purge -----------------------------------------------------------------------------


def test_delete_asks_first_and_really_deletes(cli: Callable[..., Result], url: str) -> None:
    declined = cli("delete", "demo-1", input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.stderr
    assert "Delete 'demo-1' (3 messages, 2 tool calls, 2 sources, 1 mashup)?" in declined.stderr
    assert on_store(url, lambda db: db.get_conversation("demo-1")) is not None

    assert ok(cli("delete", "demo-1", input="y\n")).startswith("deleted 'demo-1' (3 messages")
    assert on_store(url, lambda db: db.get_conversation("demo-1")) is None
    assert on_store(url, lambda db: db.search_messages("bebop", conversation_id="demo-1")) == []

    assert error(cli("delete", "demo-2", "gone", "--yes")) == "Error: no conversation 'gone'\n"
    assert on_store(url, lambda db: db.get_conversation("demo-2")) is not None
    both = ok(cli("delete", "-y", "demo-2", "old-1", "demo-2"))
    assert both == "deleted 'demo-2' (2 messages, 0 tool calls, 0 sources, 0 mashups)\n" + (
        "deleted 'old-1' (1 message, 0 tool calls, 0 sources, 0 mashups)\n"
    )
    assert on_store(url, lambda db: db.list_conversations()) == []


def test_purge_dry_run_keeps_rows_and_purge_removes_the_idle(
    cli: Callable[..., Result], url: str
) -> None:
    dry = ok(cli("purge", "--idle-since", "30d", "--dry-run"))
    assert [line.split()[0] for line in dry.splitlines()[1:-1]] == ["old-1"]
    assert dry.splitlines()[-1] == "would delete 1 conversation (dry run)"
    assert on_store(url, lambda db: db.get_conversation("old-1")) is not None

    declined = cli("purge", "--idle-since", "2021-01-01", input="n\n")
    assert declined.exit_code == 1 and "Delete 1 conversation" in declined.stderr
    assert on_store(url, lambda db: db.get_conversation("old-1")) is not None

    assert ok(cli("purge", "--idle-since", "2021-01-01", input="y\n")).endswith(
        "deleted 1 conversation\n"
    )
    remaining = ids([c.model_dump() for c in on_store(url, lambda db: db.list_conversations())])
    assert remaining == ["demo-2", "demo-1"]
    assert ok(cli("purge", "--idle-since", "2021-01-01T00:00Z")) == (
        "no conversation idle since 2021-01-01T00:00:00+00:00\n"
    )


def test_purge_json_with_filters(cli: Callable[..., Result], url: str) -> None:
    future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    since = ["purge", "--idle-since", future, "--json"]
    preview = json.loads(ok(cli(*since, "--owner", "bob", "--dry-run")))
    assert preview["dry_run"] is True and ids(preview["conversations"]) == ["demo-2"]
    done = json.loads(ok(cli(*since, "--phase", "genre_exploration", "--yes")))
    assert done["dry_run"] is False and ids(done["conversations"]) == ["demo-1"]
    assert done["conversations"][0]["message_count"] == 3
    left = on_store(url, lambda db: db.list_conversations())
    assert [c.conversation_id for c in left] == ["demo-2", "old-1"]


def test_purge_refuses_a_bad_date(cli: Callable[..., Result]) -> None:
    assert "'yesterday' is not a date" in error(cli("purge", "--idle-since", "yesterday"), code=2)
    assert "Missing option '--idle-since'" in error(cli("purge"), code=2)


# -- stats and errors -----------------------------------------------------------------------------


def test_stats_text_and_json(cli: Callable[..., Result], url: str) -> None:
    stats = on_store(url, lambda db: db.stats(busiest=2))
    data = json.loads(ok(cli("stats", "--busiest", "2", "--json")))
    assert data == stats.model_dump(mode="json")
    assert data["conversations"] == 3 and data["messages"] == 6
    assert ids(data["busiest"]) == ["demo-1", "demo-2"]
    out = ok(cli("stats"))
    facts = dict(re.split(r"\s{2,}", line) for line in out.split("\n\n")[0].splitlines())
    assert facts == {
        "conversations": "3",
        "messages": "6",
        "tool calls": "2",
        "web sources": "2",
        "mashups": "1",
        "phase changes": "1",
        "database size": human_size(stats.size_bytes),
        "schema version": str(stats.schema_version),
    }
    assert out.split("\n\n")[1].startswith("busiest conversations\nID ")


def test_a_newer_database_is_refused_in_one_line(cli: Callable[..., Result], url: str) -> None:
    with sqlite3.connect(url) as conn:
        conn.execute("INSERT INTO lit_memory_migrations (v, applied_at) VALUES (999, 'x')")
    conn.close()
    for args in (["stats"], ["list"], ["migrate"]):
        assert "schema version 999, newer than this lit-memory" in error(cli(*args))


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    result = CliRunner().invoke(main, ["--db", str(junk), "list"])
    assert "not a usable database" in error(result)
    result = CliRunner().invoke(main, ["--db", "mysql://x/y", "stats"])
    assert "unknown database URL scheme 'mysql'" in error(result)


def test_reading_a_missing_file_does_not_create_it(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    for args in (["list"], ["show", "x"], ["stats"], ["purge", "--idle-since", "1d", "--yes"]):
        result = CliRunner().invoke(main, ["--db", str(missing), *args])
        assert (
            error(result) == f"Error: no database at {missing}; create it with 'lit-memory init'\n"
        )
    assert not missing.exists()
    ok(CliRunner().invoke(main, ["--db", str(missing), "init"]))
    assert ok(CliRunner().invoke(main, ["--db", str(missing), "list"])) == "no conversations\n"


def test_without_db_the_cli_uses_lit_memory_url(tmp_path: Path) -> None:
    default = os.environ["LIT_MEMORY_URL"]
    on_store(default, lambda db: db.create_conversation("from-env"))
    assert "from-env" in ok(CliRunner().invoke(main, ["list"]))


# -- values and helpers ---------------------------------------------------------------------------


def test_parse_moment_takes_iso_dates_and_ages() -> None:
    now = datetime(2024, 5, 10, 12, 0, tzinfo=timezone.utc)
    assert parse_moment("30d", now) == now - timedelta(days=30)
    assert parse_moment("12H", now) == now - timedelta(hours=12)
    assert parse_moment("2w", now) == now - timedelta(weeks=2)
    assert parse_moment("2024-05-01") == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert parse_moment("2024-05-01T12:00Z") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert parse_moment("2024-05-01T14:00+02:00") == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    for bad in ("soon", "30x", "", "2024-13-01"):
        with pytest.raises(ValueError):
            parse_moment(bad)
    moment, cid = parse_cursor("2024-05-01T12:00:00.000000+00:00,a,b")
    assert cid == "a,b" and moment.tzinfo is not None


def test_small_renderers() -> None:
    assert [duration(x) for x in (None, 12.4, 1250.0, 125_000.0)] == [
        "", "12 ms", "1.2 s", "2 min 05 s",
    ]  # fmt: skip
    assert [human_size(x) for x in (512, 4096, 3 * 1024**3)] == ["512 B", "4.0 KiB", "3.0 GiB"]
    assert where("postgresql://me:secret@db.example:5432/mem") == (
        "postgresql://me:***@db.example:5432/mem"
    )
    assert where("sqlite:///data/x.db") == "data/x.db"


# -- the installed entry points -------------------------------------------------------------------


def test_the_installed_entry_points_run(url: str) -> None:
    script = Path(sys.executable).with_name("lit-memory")
    env = {**os.environ, "LIT_MEMORY_URL": url, "NO_COLOR": "1"}
    for command in ([sys.executable, "-m", "lit_memory", "--help"], [str(script), "--help"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("Usage: lit-memory ") and "Example" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "lit_memory", "stats"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0].split() == ["conversations", "3"]
    done = subprocess.run(
        [sys.executable, "-m", "lit_memory", "show", "nope"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (1, "Error: no conversation 'nope'\n")
