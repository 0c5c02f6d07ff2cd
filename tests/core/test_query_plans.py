"""Every read the SQLite backend runs is served from an index: no full scan, no sort.

`EXPLAIN QUERY PLAN` runs on a populated file for each query in `sqlite_sql`, with the
parameters the API binds. A query over one conversation must SEARCH an index, never SCAN a
table (with or without an index: walking a whole index to filter it is a full scan too), and
must read rows already in order (no "USE TEMP B-TREE FOR ... ORDER BY"). The exceptions are
named where they are allowed, each for its purpose: the unfiltered conversation list walks the
last-activity index in order and stops at its LIMIT; the statistics read whole indexes (never
table rows) because they count everything; a search sorts its matches by relevance, a score
computed per match; the schema check reads `sqlite_master`. A statement added to `sqlite_sql`
without a plan test here fails `test_every_query_has_a_plan_test`.

The file is not ANALYZEd: lit-memory never runs ANALYZE, so these are the plans users get.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from lit_memory import AsyncConversationDB
from lit_memory.backends import sqlite_sql as sql

CONVERSATIONS = 40
CID = "c07"
RUN = "run-c07-1"
PHASES = ["initial", "genre_exploration", "cultural_research", "generation_complete"]


async def populate(path: str) -> None:
    """40 conversations, 4 owners, several phases; 30 messages, 3 tool calls with 5 sources
    each, a mashup and two phase changes per conversation."""
    async with AsyncConversationDB(path) as db:

        async def one(n: int) -> None:
            cid = f"c{n:02d}"
            await db.create_conversation(cid, {"n": n}, owner=f"user-{n % 4}")
            await db.add_messages(
                cid, [{"role": "user", "content": f"m{i}", "uid": f"u{i}"} for i in range(30)]
            )
            for k in range(3):
                call = await db.add_tool_call(cid, "web_search", {"q": k}, run_id=f"run-{cid}-{k}")
                assert call is not None
                sources = [{"url": f"https://e.x/{n}/{k}/{r}", "rank": 5 - r} for r in range(5)]
                await db.add_web_sources(call, sources)
            await db.create_mashup(cid, "mashup", tool_call_id=call)
            for phase in PHASES[1 : 1 + n % 4]:
                await db.update_conversation_phase(cid, phase, reason="test")

        await asyncio.gather(*(one(n) for n in range(CONVERSATIONS)))


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a populated database file."""
    path = tmp_path_factory.mktemp("plans") / "plans.db"
    asyncio.run(populate(str(path)))
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        yield connection


def _tool_call_id(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT tool_call_id FROM tool_calls WHERE run_id = ?", (RUN,)).fetchone()
    return int(row[0])


# Each SELECT constant of sqlite_sql, with the parameters the backend binds to it.
SELECTS: dict[str, tuple[Any, ...]] = {
    "SELECT_VERSION": (),
    "SELECT_HAS_MIGRATIONS_TABLE": (),
    "SELECT_CONVERSATION": (CID,),
    "SELECT_PHASE": (CID,),
    "SELECT_SUMMARY": (CID,),
    "SELECT_MESSAGES": (CID, 10, 5, 2),  # after_seq, limit, offset
    "SELECT_LAST_MESSAGES": (CID, 1 << 62, 10),  # before_seq, n
    "COUNT_MESSAGES": (CID,),
    "SELECT_TOOL_CALL_EXISTS": ("<tool call>",),
    "SELECT_TOOL_CALL": ("<tool call>",),
    "SELECT_TOOL_CALL_BY_RUN": (CID, RUN),
    "SELECT_TOOL_CALLS": (CID,),
    "SELECT_SOURCES_OF_CONVERSATION": (CID,),
    "SELECT_SOURCES_OF_TOOL_CALL": ("<tool call>",),
    "SELECT_MASHUPS": (CID,),
    "SELECT_TRANSITIONS": (CID,),
    "DATABASE_SIZE": (),
    "COUNT_ALL": (),
    "SELECT_BUSIEST": (5,),
    "SELECT_HAS_PENDING_MESSAGES": (),
}

# Reads of the whole store by definition (``stats``): they may walk whole indexes, never
# table rows, and the busiest list may rank its per-conversation counts.
WHOLE_STORE = {"COUNT_ALL": {"count_all"}, "SELECT_BUSIEST": {"count_all", "rank_sort"}}

# Writes that look rows up (INSERT ... SELECT, UPDATE, DELETE): their lookups must use an
# index as well, since they run inside the write lock that every writer waits for.
WRITES: dict[str, tuple[Any, ...]] = {
    "INSERT_MESSAGE": (CID, "user", "x", "2026-01-01", None, "new-uid", None),
    "INSERT_WEB_SOURCE": ("<tool call>", "https://n.x", None, None, None, 1, "2026-01-01"),
    "INSERT_NEW_WEB_SOURCE": ("<tool call>", "https://n.x", None, None, None, 1, "2026-01-01"),
    "INSERT_MASHUP": (CID, "t", None, None, None, "<tool call>", "2026-01-01"),
    "CLEAR_MESSAGES": (CID,),
    "UPDATE_PHASE": ("initial", "2026-01-01", CID),
    "UPDATE_TOOL_CALL": (None, "completed", None, None, None, "2026-01-01", None, "<tool call>"),
    "TOUCH_CONVERSATION_OF_TOOL_CALL": ("2026-01-01", "<tool call>"),
    "DELETE_CONVERSATION": (CID,),
    "RESTORE_UPDATED_AT": ("2026-01-01", CID),
    "INDEX_PENDING_MESSAGES": (),
    "MARK_MESSAGES_INDEXED": (),
}

# Tables a plan may scan, and why.
SCAN_ALLOWED = {
    "sqlite_master": "the schema table has no index and holds one row per schema object",
    "messages_fts_state": "holds one row: the id up to which messages are indexed for search",
}

LIST_FILTERS = [
    pytest.param(phase, owner, before, id=f"phase={phase}-owner={owner}-before={bool(before)}")
    for phase in (None, "cultural_research")
    for owner in (None, "user-2")
    for before in (None, ("2999-01-01T00:00:00.000000+00:00", "c99"))
]

# purge_conversations always has a cutoff, erase_owner always an owner.
DELETE_FILTERS = [
    pytest.param(owner, idle, phase, id=f"owner={owner}-idle_before={idle}-phase={phase}")
    for owner in (None, "user-2")
    for idle in (None, "2999-01-01T00:00:00.000000+00:00")
    for phase in (None, "cultural_research")
    if idle is not None or (owner is not None and phase is None)
]


def _scan_is_fine(line: str, allow: set[str]) -> bool:
    scan = re.match(r"SCAN (\S+)(?: VIRTUAL TABLE INDEX \d+:(\S*))?", line)
    if scan is None:
        return True
    table, index_constraint = scan.groups()
    if table.startswith("(") or table == "CONSTANT" or table.startswith("pragma_"):
        return True  # a subquery's rows, a constant row, a one-row pragma function
    if table in SCAN_ALLOWED or index_constraint:  # a MATCH pushed into the FTS index
        return True
    if "ordered_walk" in allow and re.search(r"USING (COVERING )?INDEX", line):
        return True
    return "count_all" in allow and "USING COVERING INDEX" in line


def plan_problems(
    conn: sqlite3.Connection, query: str, params: Any, *, allow: set[str] | None = None
) -> list[str]:
    """The lines of the query's plan that read more rows than it returns, or sort them.

    `allow` relaxes the rule where the query's purpose needs it: ``ordered_walk`` (walk a
    table in an index's order, stopped by LIMIT), ``count_all`` (read whole indexes, never
    table rows) and ``rank_sort`` (sort by a computed score, such as a search rank).
    """
    allowed = allow or set()
    plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", params)]
    problems = [line for line in plan if not _scan_is_fine(line, allowed)]
    for line in plan:
        if "TEMP B-TREE" in line or "AUTOMATIC" in line:
            if not ("rank_sort" in allowed and line == "USE TEMP B-TREE FOR ORDER BY"):
                problems.append(line)
    return [f"{line}    (plan: {plan})" for line in problems]


def bind(conn: sqlite3.Connection, params: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_tool_call_id(conn) if p == "<tool call>" else p for p in params)


@pytest.mark.parametrize("name", sorted(SELECTS))
def test_read_uses_an_index_and_needs_no_sort(conn: sqlite3.Connection, name: str) -> None:
    query = getattr(sql, name)
    allow = WHOLE_STORE.get(name)
    assert plan_problems(conn, query, bind(conn, SELECTS[name]), allow=allow) == []


@pytest.mark.parametrize("name", sorted(WRITES))
def test_write_lookups_use_an_index(conn: sqlite3.Connection, name: str) -> None:
    query = getattr(sql, name)
    assert plan_problems(conn, query, bind(conn, WRITES[name])) == []


@pytest.mark.parametrize(("phase", "owner", "before"), LIST_FILTERS)
def test_list_conversations_uses_an_index_for_every_filter(
    conn: sqlite3.Connection, phase: str | None, owner: str | None, before: Any
) -> None:
    query, params = sql.list_conversations(phase=phase, owner=owner, before=before, limit=20)
    unfiltered = phase is None and owner is None and before is None
    allow = {"ordered_walk"} if unfiltered else None
    assert plan_problems(conn, query, params, allow=allow) == []
    # The plan is only worth checking if the query returns what the API promises.
    rows = conn.execute(query, params).fetchall()
    stamps = [(r[3], r[0]) for r in rows]
    assert stamps == sorted(stamps, reverse=True) and 0 < len(rows) <= 20
    assert all((phase is None or r[1] == phase) and (owner is None or r[5] == owner) for r in rows)


@pytest.mark.parametrize("conversation_id", [None, CID])
@pytest.mark.parametrize("owner", [None, "user-3"])
def test_search_reads_matches_from_the_fts_index(
    conn: sqlite3.Connection, conversation_id: str | None, owner: str | None
) -> None:
    """Matches come from the FTS5 index, each message by its primary key; only the ranking
    by relevance (a score computed per match) is sorted."""
    query, params = sql.search_messages(
        sql.fts_words("m7"), conversation_id=conversation_id, owner=owner, limit=10
    )
    assert plan_problems(conn, query, params, allow={"rank_sort"}) == []
    plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", params))
    assert "messages_fts VIRTUAL TABLE INDEX" in plan and "INTEGER PRIMARY KEY" in plan
    rows = conn.execute(query, params).fetchall()
    expected = 1 if conversation_id else CONVERSATIONS // (4 if owner else 1)
    assert len(rows) == min(expected, 10) and all(r[4] == "m7" for r in rows)


@pytest.mark.parametrize(("owner", "idle_before", "phase"), DELETE_FILTERS)
def test_purge_and_erasure_find_their_conversations_by_index(
    conn: sqlite3.Connection, owner: str | None, idle_before: str | None, phase: str | None
) -> None:
    query, params = sql.select_conversations_to_delete(
        owner=owner, idle_before=idle_before, phase=phase, limit=-1
    )
    assert plan_problems(conn, query, params) == []
    rows = conn.execute(query, params).fetchall()
    assert rows and all(owner is None or r[5] == owner for r in rows)
    assert all(phase is None or r[1] == phase for r in rows)


def test_every_foreign_key_is_indexed(conn: sqlite3.Connection) -> None:
    """Deleting a conversation cascades through each foreign key: without an index led by
    the child column, every delete or purge scans the child table."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    missing = []
    for table in tables:
        leading = {
            conn.execute(f"PRAGMA index_info('{index[1]}')").fetchone()[2]
            for index in conn.execute(f"PRAGMA index_list('{table}')")
        }
        leading |= {r[1] for r in conn.execute(f"PRAGMA table_info('{table}')") if r[5] == 1}
        for fk in conn.execute(f"PRAGMA foreign_key_list('{table}')"):
            if fk[3] not in leading:
                missing.append(f"{table}.{fk[3]} -> {fk[2]}")
    assert missing == []


def _statements() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(sql).items()
        if name.isupper() and isinstance(value, str)
    }


def test_every_query_has_a_plan_test() -> None:
    """A read or a looked-up write added to sqlite_sql must get a plan test above."""
    reads = {
        name
        for name, text in _statements().items()
        if text.lstrip().upper().startswith(("SELECT", "WITH"))
    }
    assert reads == set(SELECTS)
    lookups = {
        name
        for name, text in _statements().items()
        if text.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE"))
        and re.search(r"\b(WHERE|SELECT)\b", text, re.IGNORECASE)
    }
    assert lookups == set(WRITES)
    builders = {
        name
        for name, value in vars(sql).items()
        if inspect.isfunction(value) and value.__module__ == sql.__name__
    }
    # fts_words builds a search expression, not SQL.
    assert builders == {
        "list_conversations",
        "search_messages",
        "select_conversations_to_delete",
        "fts_words",
    }, "a new SQL builder needs plan tests"


def test_plan_check_catches_scans_and_sorts(conn: sqlite3.Connection) -> None:
    """The check itself: a query on an unindexed column or order is reported."""
    assert plan_problems(conn, "SELECT * FROM messages WHERE content = ?", ("m1",))
    assert plan_problems(
        conn, "SELECT * FROM messages WHERE conversation_id = ? ORDER BY timestamp", (CID,)
    )
    assert plan_problems(conn, "SELECT * FROM web_sources WHERE url = ? ORDER BY rank", ("x",))
    assert plan_problems(conn, sql.SELECT_MESSAGES, (CID, 0, -1, 0)) == []


def test_populated_file_holds_what_the_plans_are_run_on(conn: sqlite3.Connection) -> None:
    counts = {
        table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ("conversations", "messages", "tool_calls", "web_sources", "mashups")
    }
    assert counts == {
        "conversations": CONVERSATIONS,
        "messages": CONVERSATIONS * 30,
        "tool_calls": CONVERSATIONS * 3,
        "web_sources": CONVERSATIONS * 15,
        "mashups": CONVERSATIONS,
    }
    assert conn.execute("SELECT COUNT(*) FROM phase_transitions").fetchone()[0] == sum(
        n % 4 for n in range(CONVERSATIONS)
    )
    assert Path(conn.execute("PRAGMA database_list").fetchone()[2]).name == "plans.db"
