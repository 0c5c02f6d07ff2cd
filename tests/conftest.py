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
from collections.abc import AsyncIterator, Iterator
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


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server, dropped after the test."""
    name = f"lit_test_{uuid.uuid4().hex}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)


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
