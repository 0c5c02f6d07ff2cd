"""Crash safety: a writer process killed with SIGKILL at random moments, over and over.

After every kill the database must open cleanly, hold every write the writer saw acknowledged
(exactly once, whole), hold no half-written turn, and the next writer must carry on on the
same database. See `_crash_writer` for the writer and the checks.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import _crash_writer as writer
import pytest

from lit_memory import AsyncConversationDB

KILLS = 50
EARLY_EVERY = 10
"""Every 10th writer is killed 0-50 ms after it starts (while it opens, migrates or retries);
the others 50-300 ms after they are ready (while they write)."""


def _context() -> Any:
    # forkserver: each writer is a fresh process forked from a server that has already
    # imported lit_memory, so it starts in milliseconds; never a fork of the test process.
    # (Only installed modules can be preloaded: the server ignores the tests' sys.path.)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["lit_memory", "aiosqlite"])
    return context


def _sqlite_checks(path: str) -> list[str]:
    """SQLite's own verdict on the file: integrity, foreign keys, the full-text index."""
    problems = []
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        if integrity != [("ok",)]:
            problems.append(f"integrity_check: {integrity[:5]}")
        orphans = conn.execute("PRAGMA foreign_key_check").fetchall()
        if orphans:
            problems.append(f"foreign_key_check: {orphans[:5]}")
        has_fts = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages_fts'").fetchall()
        if has_fts:
            try:
                conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
            except sqlite3.DatabaseError as exc:
                problems.append(f"full-text index: {exc}")
        problems += _index_mark_problems(conn)
    return problems


def _index_mark_problems(conn: sqlite3.Connection) -> list[str]:
    """Schema v5: the search index holds exactly the messages up to the mark, whatever a
    kill interrupted (the rest wait to be indexed)."""
    has_mark = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'messages_fts_state'"
    ).fetchall()
    if not has_mark:
        return []
    (mark,) = conn.execute("SELECT indexed_to FROM messages_fts_state").fetchone()
    indexed = {row[0] for row in conn.execute("SELECT id FROM messages_fts_docsize")}
    stored = {row[0] for row in conn.execute("SELECT message_id FROM messages")}
    wanted = {i for i in stored if i <= mark}
    if indexed != wanted:
        return [f"search index: {len(indexed ^ wanted)} messages off the mark {mark}"]
    return []


async def _search_everything(path: str) -> list[str]:
    """After the last kill: a search indexes what waits; then the index must match every
    stored message exactly (FTS5's check against the content table)."""
    async with AsyncConversationDB(path) as db:
        await db.search_messages("anything")
    problems = []
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        try:
            conn.execute(
                "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)"
            )
        except sqlite3.DatabaseError as exc:
            problems.append(f"full-text index against the messages: {exc}")
        waiting = conn.execute(
            "SELECT COUNT(*) FROM messages "
            "WHERE message_id > (SELECT indexed_to FROM messages_fts_state)"
        ).fetchone()[0]
        if waiting:
            problems.append(f"{waiting} messages left unindexed after a search")
        problems += _index_mark_problems(conn)
    return problems


def _kill_and_check(
    url: str, log: Path, kills: int, seed: int, sqlite_path: str | None
) -> dict[str, int]:
    context = _context()
    rng = random.Random(seed)
    losses = acks = 0
    for number in range(kills):
        ready = context.Event()
        process = context.Process(
            target=writer.run_writer, args=(url, str(log), number, seed + number, ready)
        )
        process.start()
        try:
            if number % EARLY_EVERY == 0:
                time.sleep(rng.uniform(0.0, 0.05))
            else:
                assert ready.wait(30), f"writer {number} did not open the store within 30 s"
                time.sleep(rng.uniform(0.05, 0.3))
            assert process.is_alive(), f"writer {number} stopped by itself ({process.exitcode})"
        finally:
            process.kill()
            process.join(30)
        assert process.exitcode == -signal.SIGKILL, f"writer {number}: {process.exitcode}"
        problems = _sqlite_checks(sqlite_path) if sqlite_path else []
        check = asyncio.run(writer.check_store(url, writer.read_log(str(log))))
        losses += len(check.losses)
        acks = check.acks
        assert not check.losses, f"after kill {number}: lost {check.losses[:5]}"
        assert not problems + check.problems, f"after kill {number}: {problems + check.problems}"
    return {"kills": kills, "acks": acks, "losses": losses}


def _record(record_property: Any, figures: dict[str, int]) -> None:
    record_property("kills_survived", figures["kills"])
    record_property("acknowledged_writes_checked", figures["acks"])
    record_property("losses", figures["losses"])


def test_sqlite_survives_fifty_kills(tmp_path: Path, record_property: Any) -> None:
    path = str(tmp_path / "crash.db")
    figures = _kill_and_check(path, tmp_path / "acks.log", KILLS, seed=1, sqlite_path=path)
    _record(record_property, figures)
    # Not a vacuous pass: the writers did write between kills.
    assert figures["acks"] >= KILLS * 4, figures
    assert asyncio.run(_search_everything(path)) == []


@pytest.mark.postgres
def test_postgres_survives_fifty_client_kills(
    postgres_url: str, tmp_path: Path, record_property: Any
) -> None:
    figures = _kill_and_check(postgres_url, tmp_path / "acks.log", KILLS, seed=2, sqlite_path=None)
    _record(record_property, figures)
    assert figures["acks"] >= KILLS * 4, figures
