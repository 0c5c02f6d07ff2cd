"""Fixtures shared by the whole test tree: a store on every backend.

`store_url` is parametrized over the backends: ``sqlite-memory``, ``sqlite-file`` and
``postgres`` (a throwaway server started from the machine's PostgreSQL binaries, or
``$LIT_MEMORY_TEST_POSTGRES_URL``; each test gets its own database). Set
``LIT_MEMORY_REQUIRE_POSTGRES=1`` (CI does) to fail instead of skipping when PostgreSQL is
not available.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from pgserver import PostgresServer, postgres_unavailable_reason

from lit_memory import AsyncConversationDB

BACKENDS = ["sqlite-memory", "sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(autouse=True)
def _isolated_default_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may touch a database in the working directory by accident."""
    monkeypatch.setenv("LIT_MEMORY_URL", str(tmp_path / "default.db"))


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty database on each backend."""
    kind = request.param
    if kind == "sqlite-memory":
        yield ":memory:"
    elif kind == "sqlite-file":
        yield str(tmp_path / "memory.db")
    elif kind == "postgres":
        yield request.getfixturevalue("postgres_url")
    else:  # pragma: no cover - backends join this list as they land
        raise AssertionError(kind)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session; skips (fails in CI) when there is none."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        if require_postgres():
            pytest.fail(f"LIT_MEMORY_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    with PostgresServer() as server:
        yield server


class EmptyDatabases:
    """Empty databases made ahead of the tests that take them, and dropped behind them.

    CREATE DATABASE takes about a third of a second one at a time, but several overlap well:
    keeping a few in the making hides that cost, which otherwise dominates PostgreSQL tests.
    """

    def __init__(self, server: PostgresServer, ahead: int = 4) -> None:
        self._server = server
        self._threads = ThreadPoolExecutor(ahead, thread_name_prefix="lit-test-databases")
        self._made: deque[Future[tuple[str, str]]] = deque(self._make() for _ in range(ahead))
        self._drops: list[Future[None]] = []

    def _make(self) -> Future[tuple[str, str]]:
        name = f"lit_test_{uuid.uuid4().hex}"
        return self._threads.submit(lambda: (name, self._server.create_database(name)))

    def take(self) -> tuple[str, str]:
        """The name and URL of an empty database; the next one starts being made."""
        self._made.append(self._make())
        return self._made.popleft().result()

    def drop(self, name: str) -> None:
        """Drop a used database in the background."""
        self._drops.append(self._threads.submit(self._server.drop_database, name))

    def close(self) -> None:
        """Drop the databases made but never taken; wait for every drop (raising its error)."""
        for made in self._made:
            self.drop(made.result()[0])
        self._threads.shutdown(wait=True)
        for dropped in self._drops:
            dropped.result()


@pytest.fixture(scope="session")
def empty_databases(postgres_server: PostgresServer) -> Iterator[EmptyDatabases]:
    """The session's supply of empty PostgreSQL databases."""
    supply = EmptyDatabases(postgres_server)
    yield supply
    supply.close()


@pytest.fixture
def postgres_url(empty_databases: EmptyDatabases) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server, dropped after the test."""
    name, url = empty_databases.take()
    yield url
    empty_databases.drop(name)


@pytest.fixture
async def db(store_url: str) -> AsyncIterator[AsyncConversationDB]:
    """An initialized `AsyncConversationDB` on each backend, closed after the test."""
    async with AsyncConversationDB(store_url) as store:
        await store.init_db()
        yield store


@pytest.fixture
def db_file(tmp_path: Path) -> str:
    """A path for a SQLite file that does not exist yet."""
    return str(tmp_path / "store.db")


def require_postgres() -> bool:
    """Whether PostgreSQL tests must run (CI) rather than skip."""
    return os.environ.get("LIT_MEMORY_REQUIRE_POSTGRES") == "1"
