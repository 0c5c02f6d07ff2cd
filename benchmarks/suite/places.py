"""Where a system's fresh, empty database comes from: a SQLite file or a PostgreSQL database."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from .context import Context

_REPO = Path(__file__).resolve().parents[2]


class SqlitePlace:
    """Fresh SQLite files in the run's work folder, removed after use."""

    label = "SQLite"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def fresh(self, label: str) -> str:
        """A new empty database's path."""
        return self.ctx.fresh_path(label)

    async def release(self, target: str) -> None:
        """Remove the database's files."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)


class PostgresPlace:
    """Fresh databases on one throwaway PostgreSQL server (durable settings: fsync on)."""

    label = "PostgreSQL"

    def __init__(self, server: object, version: str) -> None:
        self.server = server
        self.version = version
        self._counter = 0

    @classmethod
    def start(cls) -> PostgresPlace:
        """Start a private server with the test suite's helper (tests/pgserver.py)."""
        sys.path.insert(0, str(_REPO / "tests"))
        from pgserver import PostgresServer

        durable = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
        server = PostgresServer(settings=durable).start()
        return cls(server, _server_version(server.url))

    def stop(self) -> None:
        """Stop the server and remove its files."""
        self.server.stop()  # type: ignore[attr-defined]

    async def fresh(self, label: str) -> str:
        """A new empty database's URL."""
        self._counter += 1
        name = f"bench_{self._counter:04d}"
        return await asyncio.to_thread(self.server.create_database, name)  # type: ignore[attr-defined]

    async def release(self, target: str) -> None:
        """Drop the database."""
        name = target.rsplit("/", 1)[1]
        await asyncio.to_thread(self.server.drop_database, name)  # type: ignore[attr-defined]


def _server_version(url: str) -> str:
    import asyncpg

    async def ask() -> str:
        conn = await asyncpg.connect(url)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    return asyncio.run(ask())
