"""Tests for the throwaway PostgreSQL server helper (tests/pgserver.py)."""

from __future__ import annotations

import asyncio
import socket

import pgserver
import pytest
from pgserver import (
    ENV_URL,
    PostgresServer,
    find_binaries,
    postgres_unavailable_reason,
    validate_database_name,
)

UNAVAILABLE = postgres_unavailable_reason()
needs_postgres = pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or "")


async def _fetchval(dsn: str, query: str, *args: object) -> object:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def _execute(dsn: str, query: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(query)
    finally:
        await conn.close()


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _check_external_url_mode(backing: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """``LIT_MEMORY_TEST_POSTGRES_URL`` pointing at ``backing``: databases come and go on it,
    and stopping the helper leaves the server running."""
    monkeypatch.setenv(ENV_URL, backing.url)
    external = PostgresServer()
    assert external.is_external
    with external:
        assert external.url == backing.url
        dsn = external.create_database("lit_pgserver_ext")
        assert asyncio.run(_fetchval(dsn, "SELECT current_database()")) == "lit_pgserver_ext"

        # Also usable from code already running inside an event loop (async fixtures).
        async def inside_loop() -> str:
            return external.create_database("lit_pgserver_ext_async")

        async_dsn = asyncio.run(inside_loop())
        assert asyncio.run(_fetchval(async_dsn, "SELECT 1")) == 1
        external.drop_database("lit_pgserver_ext_async")
        external.drop_database("lit_pgserver_ext")
    assert asyncio.run(_fetchval(backing.url, "SELECT 1")) == 1


def test_unavailable_reason_says_how_to_enable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.setattr(pgserver, "find_binaries", lambda: None)
    reason = postgres_unavailable_reason()
    assert reason is not None
    assert "apt-get install postgresql" in reason
    assert f"{ENV_URL}=postgresql://" in reason

    monkeypatch.setenv(ENV_URL, "postgresql://postgres@db.invalid:5432/postgres")
    if not pgserver._asyncpg_missing():
        assert postgres_unavailable_reason() is None


@pytest.mark.parametrize(
    "name", ["", "a-b", "a b", 'x"; DROP DATABASE postgres; --', "1abc", "é", "a" * 64, "a.b"]
)
def test_unsafe_database_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="invalid database name"):
        validate_database_name(name)
    server = PostgresServer(external_url="postgresql://postgres@db.invalid:5432/postgres")
    with pytest.raises(ValueError, match="invalid database name"):
        server.create_database(name)
    with pytest.raises(ValueError, match="invalid database name"):
        server.drop_database(name)


def test_safe_database_names_and_protected_ones() -> None:
    for name in ["lit", "Lit_Test_2", "_x", "a" * 63]:
        assert validate_database_name(name) == name
    server = PostgresServer(external_url="postgresql://u@db.invalid:6543/postgres?sslmode=disable")
    assert server.dsn("other") == "postgresql://u@db.invalid:6543/other?sslmode=disable"
    for name in ["postgres", "template0", "template1"]:
        with pytest.raises(ValueError, match="refusing"):
            server.drop_database(name)


@pytest.mark.postgres
@needs_postgres
def test_two_isolated_databases_and_clean_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    server = PostgresServer()
    with server:
        assert server.url.startswith("postgresql://")
        assert server.url.endswith("/postgres")
        port = server.port
        data_dir = server.data_dir
        first = server.create_database("lit_pgserver_a")
        second = server.create_database("lit_pgserver_b")
        assert first.endswith("/lit_pgserver_a")
        assert second.endswith("/lit_pgserver_b")

        asyncio.run(_execute(first, "CREATE TABLE turns (id bigint PRIMARY KEY, body text)"))
        assert asyncio.run(_fetchval(first, "SELECT to_regclass('public.turns')::text")) == "turns"
        assert asyncio.run(_fetchval(second, "SELECT to_regclass('public.turns')")) is None
        assert asyncio.run(_fetchval(second, "SELECT current_database()")) == "lit_pgserver_b"
        encoding = asyncio.run(
            _fetchval(
                first,
                "SELECT pg_encoding_to_char(encoding) FROM pg_database "
                "WHERE datname = current_database()",
            )
        )
        assert encoding == "UTF8"

        server.drop_database("lit_pgserver_a")
        server.drop_database("lit_pgserver_b")
        server.drop_database("lit_pgserver_b")  # dropping a missing database is fine
        remaining = asyncio.run(
            _fetchval(
                server.url,
                "SELECT count(*) FROM pg_database WHERE datname = ANY($1::text[])",
                ["lit_pgserver_a", "lit_pgserver_b"],
            )
        )
        assert remaining == 0

        with monkeypatch.context() as patch:
            _check_external_url_mode(server, patch)

        if not server.is_external:
            assert data_dir is not None and (data_dir / "PG_VERSION").exists()
            assert _accepts_connections(port)
        server.stop()
        server.stop()  # idempotent; __exit__ stops once more

    assert not server.running
    with pytest.raises(RuntimeError, match="not started"):
        server.create_database("lit_after_stop")
    if not server.is_external:
        assert not _accepts_connections(port)
        assert data_dir is not None and not data_dir.parent.exists()


@pytest.mark.postgres
def test_failed_start_reports_server_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    if find_binaries() is None:
        pytest.skip(postgres_unavailable_reason() or "no local PostgreSQL binaries")
    server = PostgresServer(settings={"shared_buffers": "not_a_size"})
    with pytest.raises(RuntimeError, match="failed to start") as excinfo:
        server.start()
    assert "shared_buffers" in str(excinfo.value)  # the log tail names the bad setting
    assert not server.running
    assert server.data_dir is None  # temporary directory removed
