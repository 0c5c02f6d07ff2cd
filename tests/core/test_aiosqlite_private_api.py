"""Guard for the one private aiosqlite API the SQLite backend relies on.

The writer runs each group-commit batch as one plain function on the writer connection's
thread through `aiosqlite.Connection._execute`, reaching the raw `sqlite3.Connection` as
`_conn` from inside it. Neither is public, so pyproject pins aiosqlite to one minor version;
this test fails loudly if an upgrade renames or changes them.
"""

from __future__ import annotations

import inspect
import sqlite3
import threading
from pathlib import Path

import aiosqlite


def test_connection_still_has_private_execute_and_conn() -> None:
    assert inspect.iscoroutinefunction(getattr(aiosqlite.Connection, "_execute", None)), (
        "aiosqlite.Connection._execute is gone or changed: lit_memory/backends/sqlite.py "
        "runs its write batches through it; adapt the writer before lifting the pin"
    )
    assert isinstance(getattr(aiosqlite.Connection, "_conn", None), property), (
        "aiosqlite.Connection._conn is gone: lit_memory/backends/sqlite.py needs the raw "
        "sqlite3 connection on the connection thread"
    )


async def test_private_execute_runs_a_function_on_the_connection_thread(tmp_path: Path) -> None:
    def on_thread(conn: aiosqlite.Connection, value: int) -> tuple[int, int, bool]:
        raw = conn._conn
        (row,) = raw.execute("SELECT ?", (value,)).fetchall()
        return threading.get_ident(), row[0], isinstance(raw, sqlite3.Connection)

    async with aiosqlite.connect(str(tmp_path / "guard.db")) as conn:
        thread, value, is_sqlite3 = await conn._execute(on_thread, conn, 7)
        again, _, _ = await conn._execute(on_thread, conn, 8)
        assert (value, is_sqlite3) == (7, True)
        assert thread != threading.get_ident()
        assert again == thread  # always the connection's own thread
