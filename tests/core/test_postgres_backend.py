"""What only the PostgreSQL backend has to prove: a pool with no lock around it, processes
migrating and writing at once, one-statement appends that stay gap-free when other writers
get in between, a connection dropped mid-turn, typed errors, and a schema that can be
distributed by conversation.

The contract every backend shares is in test_contract.py and test_operations.py; these tests
read rows back with plain asyncpg, bypassing the store.
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import _workers
import asyncpg
import pytest

from lit_memory import (
    AsyncConversationDB,
    SchemaVersionError,
    StorageBusyError,
    StorageConnectionError,
    StorageError,
    StorageReadOnlyError,
)
from lit_memory.backends import postgres_sql as sql

pytestmark = pytest.mark.postgres

SPAWN = multiprocessing.get_context("spawn")


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[Any]:
    """A plain asyncpg connection beside the store's pool."""
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def lock_waiter(conn: Any, timeout: float = 10.0, *, count: int = 1) -> int:
    """The pid of the (first) other session of this database that waits for a lock, once
    `count` of them wait."""
    deadline = asyncio.get_running_loop().time() + timeout
    query = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() ORDER BY backend_start"
    )
    while asyncio.get_running_loop().time() < deadline:
        pids = [r[0] for r in await conn.fetch(query)]
        if len(pids) >= count:
            return int(pids[0])
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} sessions started waiting for a lock")


async def seqs_and_contents(conn: Any, conversation_id: str) -> list[tuple[int, str]]:
    """The conversation's (seq, content) rows in seq order, straight from the table."""
    rows = await conn.fetch(
        "SELECT seq, content FROM messages WHERE conversation_id = $1 ORDER BY seq",
        conversation_id,
    )
    return [(r["seq"], r["content"]) for r in rows]


# -- the pool --------------------------------------------------------------------------------


async def test_a_locked_conversation_does_not_hold_up_the_others(postgres_url: str) -> None:
    async with AsyncConversationDB(postgres_url, max_size=4) as db:
        await db.init_db()
        for cid in ("busy", "free"):
            await db.create_conversation(cid)
        async with connect(postgres_url) as other, other.transaction():
            await other.execute(
                "SELECT 1 FROM conversations WHERE conversation_id = 'busy' FOR UPDATE"
            )
            blocked = asyncio.create_task(db.add_message("busy", "user", "waits for the lock"))
            await lock_waiter(other)
            # Meanwhile the same store writes another conversation and reads the busy one.
            assert await asyncio.wait_for(db.add_message("free", "user", "goes"), 5) is True
            assert await asyncio.wait_for(db.count_messages("busy"), 5) == 0
            assert not blocked.done()
        assert await asyncio.wait_for(blocked, 5) is True
        assert [m.seq for m in await db.get_messages("busy")] == [1]


async def test_the_statement_cache_can_be_turned_off_for_poolers(postgres_url: str) -> None:
    prepared: dict[int | None, int] = {}
    for size in (None, 0):
        options = {"min_size": 1, "max_size": 1, "statement_cache_size": size}
        async with AsyncConversationDB(postgres_url, **options) as db:
            await db.init_db()
            cid = f"cache-{size}"
            await db.create_conversation(cid)
            for i in range(3):  # the same statements again: a cache would now hold them
                assert await db.add_message(cid, "user", f"m{i}") is True
                assert await db.count_messages(cid) == i + 1
            assert [m.content for m in await db.get_messages(cid)] == ["m0", "m1", "m2"]
            # One pooled connection: it is the one that ran everything above.
            pool = db.backend._pool  # type: ignore[attr-defined]
            prepared[size] = await pool.fetchval("SELECT count(*) FROM pg_prepared_statements")
    # Named prepared statements are what a transaction pooler (PgBouncer) cannot carry.
    assert prepared[None] > 0 and prepared[0] == 0


async def test_a_given_pool_is_used_and_left_open(postgres_url: str) -> None:
    pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=2)
    try:
        db = AsyncConversationDB(postgres_url, pool=pool)
        async with db:
            await db.init_db()
            await db.create_conversation("c")
            assert await db.add_message("c", "user", "through the given pool") is True
        assert not pool.is_closing()
        assert await pool.fetchval("SELECT count(*) FROM messages") == 1
        assert await db.add_message("c", "user", "the store reopens on it") is True
        await db.close()
        assert not pool.is_closing() and await pool.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


def test_a_store_moved_to_another_event_loop_gets_a_new_pool(postgres_url: str) -> None:
    # asyncpg connections belong to their event loop; SQLite's follow the caller, and so must
    # a PostgreSQL store used with one asyncio.run() per call. Each loop closes its pool as
    # it shuts down, so nothing is left open (a leak would fail the test with a warning).
    db = AsyncConversationDB(postgres_url)
    assert asyncio.run(db.create_conversation("c")) is True
    assert asyncio.run(db.add_message("c", "user", "on the next loop")) is True
    assert asyncio.run(db.count_messages("c")) == 1
    asyncio.run(db.close())
    gc.collect()


# -- processes -------------------------------------------------------------------------------


def _write_worker(url: str, worker: int, barrier: Any, results: Any) -> None:
    """50 concurrent tasks on one store: 3 single messages each to the shared conversation
    (created by whichever writer comes first), then one whole turn to the worker's own."""

    async def task(db: AsyncConversationDB, index: int) -> None:
        for part in range(3):
            message = {"role": "user", "content": f"w{worker}-t{index}-{part}"}
            await db.add_messages(_workers.SHARED, [message], create=True)
        await db.add_messages(_workers.own(worker), _workers.turn(worker, index), create=True)

    async def body() -> int:
        async with AsyncConversationDB(url, max_size=8) as db:
            await db.init_db()
            barrier.wait(30)
            await asyncio.gather(*(task(db, index) for index in range(50)))
        return 50

    _workers._report(worker, results, body())


def run_processes(target: Callable[..., None], url: str, count: int) -> list[Any]:
    """Run `count` spawned processes released together by a barrier; their results."""
    barrier, results = SPAWN.Barrier(count), SPAWN.Queue()
    processes = [
        SPAWN.Process(target=target, args=(url, worker, barrier, results))
        for worker in range(count)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(30)
    errors = [detail for _, status, detail in reports if status != "ok"]
    assert not errors, "\n".join(errors)
    return [detail for _, _, detail in sorted(reports)]


async def test_ten_processes_migrate_an_empty_database_at_once(postgres_url: str) -> None:
    # Each process opens the store, runs init_db() and writes one message (creating "shared").
    versions = await asyncio.to_thread(run_processes, _workers.first_use, postgres_url, 10)
    latest = len(sql.MIGRATIONS)
    assert versions == [latest] * 10
    async with connect(postgres_url) as conn:
        rows = await conn.fetch("SELECT v, count(*) FROM lit_memory_migrations GROUP BY v")
        shared = await seqs_and_contents(conn, _workers.SHARED)
    assert sorted(tuple(r) for r in rows) == [(v, 1) for v in range(1, latest + 1)]
    assert [seq for seq, _ in shared] == list(range(1, 11))


async def test_processes_and_tasks_write_without_gaps_or_losses(postgres_url: str) -> None:
    async with AsyncConversationDB(postgres_url) as db:
        await db.init_db()  # the writers' own init_db calls then find nothing to do
    await asyncio.to_thread(run_processes, _write_worker, postgres_url, 4)
    async with connect(postgres_url) as conn:
        shared = await seqs_and_contents(conn, _workers.SHARED)
        own = {w: await seqs_and_contents(conn, _workers.own(w)) for w in range(4)}
    expected = [f"w{w}-t{t}-{p}" for w in range(4) for t in range(50) for p in range(3)]
    assert [seq for seq, _ in shared] == list(range(1, 601))
    assert sorted(c for _, c in shared) == sorted(expected)  # each exactly once
    position = {content: seq for seq, content in shared}
    for w in range(4):
        for t in range(50):
            parts = [position[f"w{w}-t{t}-{p}"] for p in range(3)]
            assert parts == sorted(parts), "a writer's messages came out of order"
        assert [seq for seq, _ in own[w]] == list(range(1, 101))
        # Each turn is whole: its question is directly followed by its answer.
        pairs = zip(own[w][::2], own[w][1::2], strict=True)
        assert all(q.endswith("-q") and a == q[:-1] + "a" for (_, q), (_, a) in pairs)


# -- failures --------------------------------------------------------------------------------

# Holds an insert or a delete of the row whose content is 'hold' until the test releases
# advisory lock 4242: the rows of the turn before it are then written, but not committed,
# and the writing transaction holds the locks it has taken.
HOLD_TRIGGER = """
CREATE FUNCTION hold_marked_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.content = 'hold' THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF;
        RETURN NEW;
    END IF;
    IF OLD.content = 'hold' THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER hold_marked_row BEFORE INSERT OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION hold_marked_row();
"""


@asynccontextmanager
async def held(url: str) -> AsyncIterator[Any]:
    """An admin connection, with HOLD_TRIGGER installed and advisory lock 4242 taken: writes
    of the 'hold' row wait until the caller releases the lock."""
    async with connect(url) as admin:
        await admin.execute(HOLD_TRIGGER)
        await admin.execute("SELECT pg_advisory_lock(4242)")
        yield admin


async def test_a_connection_dropped_mid_turn_writes_nothing(postgres_url: str) -> None:
    async with AsyncConversationDB(postgres_url, min_size=1, max_size=1) as db:
        await db.init_db()
        await db.create_conversation("c")
        await db.add_message("c", "user", "before")
        turn = [{"role": "user", "content": text} for text in ("one", "two", "hold", "four")]
        async with held(postgres_url) as admin:
            write = asyncio.create_task(db.add_messages("c", turn))
            pid = await lock_waiter(admin)  # "one" and "two" are in, uncommitted
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid) is True
            with pytest.raises(StorageConnectionError) as info:
                await asyncio.wait_for(write, 10)
            assert isinstance(info.value, StorageError) and isinstance(info.value, ConnectionError)
            assert isinstance(info.value.__cause__, (asyncpg.PostgresError, asyncpg.InterfaceError))
            await admin.execute("SELECT pg_advisory_unlock(4242)")
            await admin.execute("DROP TRIGGER hold_marked_row ON messages")
            assert await seqs_and_contents(admin, "c") == [(1, "before")]
        # The pool replaced the dead connection: the same store carries on.
        assert await db.add_message("c", "assistant", "after") is True
        assert [(m.seq, m.content) for m in await db.get_messages("c")] == [
            (1, "before"),
            (2, "after"),
        ]


async def test_a_write_stuck_past_command_timeout_is_busy(postgres_url: str) -> None:
    async with AsyncConversationDB(postgres_url, command_timeout=0.3) as db:
        await db.init_db()
        await db.create_conversation("c")
        async with connect(postgres_url) as other, other.transaction():
            await other.execute(
                "SELECT 1 FROM conversations WHERE conversation_id = 'c' FOR UPDATE"
            )
            with pytest.raises(StorageBusyError) as info:
                await db.add_message("c", "user", "stuck")
            assert isinstance(info.value, TimeoutError) and "command_timeout" in str(info.value)
        assert await db.add_message("c", "user", "free again") is True
        assert [m.seq for m in await db.get_messages("c")] == [1]


async def test_a_read_only_database_is_a_read_only_error(postgres_url: str) -> None:
    async with AsyncConversationDB(postgres_url) as db:
        await db.init_db()
        await db.create_conversation("c")
    async with connect(postgres_url) as admin:
        await admin.execute(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only "
            "= on', current_database()); END $$"
        )
    async with AsyncConversationDB(postgres_url) as db:  # new connections are read-only
        assert await db.get_conversation("c") is not None
        with pytest.raises(StorageReadOnlyError) as info:
            await db.add_message("c", "user", "refused")
        assert isinstance(info.value, PermissionError) and "read-only" in str(info.value)


async def test_unreachable_servers_and_newer_schemas_are_refused(postgres_url: str) -> None:
    nowhere = AsyncConversationDB("postgresql://postgres@127.0.0.1:1/nowhere")  # no I/O yet
    with pytest.raises(StorageConnectionError):
        await nowhere.init_db()
    await nowhere.close()
    missing = AsyncConversationDB(postgres_url.rsplit("/", 1)[0] + "/no_such_database")
    with pytest.raises(StorageConnectionError):
        await missing.init_db()
    await missing.close()
    async with AsyncConversationDB(postgres_url) as db:
        await db.init_db()
        async with connect(postgres_url) as admin:
            await admin.execute("INSERT INTO lit_memory_migrations VALUES (99, now())")
    with pytest.raises(SchemaVersionError) as info:
        async with AsyncConversationDB(postgres_url) as db:
            await db.init_db()
    assert "99" in str(info.value) and "upgrade lit-memory" in str(info.value)


# -- appends: one statement, unless another writer gets in between ----------------------------


async def test_twenty_writers_append_to_one_conversation_without_gaps(postgres_url: str) -> None:
    """20 tasks append turns to one conversation, each turn sent twice (a retry with the
    same uids): every turn is stored once, whole, in its writer's order, numbered 1..n."""
    writers, turns = 20, 8

    async def writer(db: AsyncConversationDB, w: int) -> None:
        for t in range(turns):
            assert await db.add_messages("c", _workers.turn(w, t)) == 2
            assert await db.add_messages("c", _workers.turn(w, t)) == 0

    async with AsyncConversationDB(postgres_url, max_size=writers) as db:
        await db.init_db()
        await db.create_conversation("c")
        await asyncio.gather(*(writer(db, w) for w in range(writers)))
    async with connect(postgres_url) as conn:
        stored = await seqs_and_contents(conn, "c")
    assert [seq for seq, _ in stored] == list(range(1, 2 * writers * turns + 1))
    contents = [c for _, c in stored]
    sent = {
        w: [m["content"] for t in range(turns) for m in _workers.turn(w, t)] for w in range(writers)
    }
    assert sorted(contents) == sorted(c for w in sent for c in sent[w])  # each exactly once
    pairs = zip(contents[::2], contents[1::2], strict=True)
    assert all(q.endswith("-q") and a == q[:-1] + "a" for q, a in pairs)  # turns are whole
    for w in sent:
        assert [c for c in contents if c.startswith(f"w{w}-")] == sent[w]  # in writer order


async def test_an_append_waiting_for_another_numbers_after_it(postgres_url: str) -> None:
    """The second append read the conversation before the first committed: it must neither
    reuse the first one's seq nor store its uid again."""
    async with AsyncConversationDB(postgres_url, max_size=2) as db:
        await db.create_conversation("c")
        await db.add_message("c", "user", "before")
        async with held(postgres_url) as admin:
            first = asyncio.create_task(db.add_message("c", "user", "hold", uid="u"))
            await lock_waiter(admin)
            second = asyncio.create_task(
                db.add_messages("c", [{"role": "user", "content": "retry", "uid": "u"},
                                      {"role": "assistant", "content": "after"}])
            )  # fmt: skip
            await lock_waiter(admin, count=2)  # waits for the conversation's row lock
            await admin.execute("SELECT pg_advisory_unlock(4242)")
            assert await asyncio.wait_for(first, 10) is True
            assert await asyncio.wait_for(second, 10) == 1
            assert await seqs_and_contents(admin, "c") == [(1, "before"), (2, "hold"), (3, "after")]


async def test_two_writers_creating_one_conversation_both_append(postgres_url: str) -> None:
    """Both find no conversation; the second's create waits for the first's and then finds
    it there: it appends after the first turn instead of failing."""
    async with AsyncConversationDB(postgres_url, max_size=2) as db:
        await db.init_db()
        async with held(postgres_url) as admin:
            turn = [{"role": "user", "content": "hold", "uid": "u"}]
            first = asyncio.create_task(db.add_messages("new", turn, create=True, owner="a"))
            await lock_waiter(admin)
            retry = [*turn, {"role": "assistant", "content": "after"}]
            second = asyncio.create_task(db.add_messages("new", retry, create=True, owner="b"))
            await lock_waiter(admin, count=2)
            await admin.execute("SELECT pg_advisory_unlock(4242)")
            assert await asyncio.wait_for(first, 10) == 1
            assert await asyncio.wait_for(second, 10) == 1
            assert await seqs_and_contents(admin, "new") == [(1, "hold"), (2, "after")]
        created = await db.get_conversation("new")
        assert created is not None and created.owner == "a"


async def test_an_append_waiting_for_a_clear_stores_uids_the_clear_removed(
    postgres_url: str,
) -> None:
    """The append read the messages before the clear committed, uid "u" among them: after
    the clear it is a new message again, numbered from 1."""
    async with AsyncConversationDB(postgres_url, max_size=2) as db:
        await db.create_conversation("c")
        await db.add_messages("c", [{"role": "user", "content": "hold"},
                                    {"role": "user", "content": "known", "uid": "u"}])  # fmt: skip
        async with held(postgres_url) as admin:
            clear = asyncio.create_task(db.clear_messages("c"))
            await lock_waiter(admin)
            append = asyncio.create_task(db.add_message("c", "user", "again", uid="u"))
            await lock_waiter(admin, count=2)
            await admin.execute("SELECT pg_advisory_unlock(4242)")
            assert await asyncio.wait_for(clear, 10) is True
            assert await asyncio.wait_for(append, 10) is True
            assert await seqs_and_contents(admin, "c") == [(1, "again")]


async def test_an_append_waiting_for_a_replacing_import_appends_to_the_import(
    postgres_url: str,
) -> None:
    """The import deletes the conversation the append read and stores it again: the append
    still finds it (no ConversationNotFound), and numbers after the imported messages."""
    async with AsyncConversationDB(postgres_url, max_size=2) as db:
        await db.create_conversation("c")
        await db.add_messages("c", [{"role": "user", "content": "first", "uid": "k1"},
                                    {"role": "user", "content": "hold", "uid": "k2"}])  # fmt: skip
        document = await db.export_conversation("c")
        assert document is not None
        await db.add_message("c", "user", "not in the document", uid="k3")
        async with held(postgres_url) as admin:
            restore = asyncio.create_task(db.import_conversation(document, replace=True))
            await lock_waiter(admin)
            append = asyncio.create_task(db.add_message("c", "user", "again", uid="k3"))
            await lock_waiter(admin, count=2)
            await admin.execute("SELECT pg_advisory_unlock(4242)")
            assert await asyncio.wait_for(restore, 10) == "c"
            assert await asyncio.wait_for(append, 10) is True
            stored = await seqs_and_contents(admin, "c")
        assert stored == [(1, "first"), (2, "hold"), (3, "again")]


async def test_a_retried_turn_leaves_last_activity_as_sqlite_does(postgres_url: str) -> None:
    """Last activity moves when a message is added, not when a whole turn is skipped."""

    async def scenario(db: AsyncConversationDB) -> list[bool]:
        await db.create_conversation("c")
        turn = [{"role": "user", "content": "q", "uid": "q1"}]
        moved = []
        for messages in (turn, turn, [*turn, {"role": "assistant", "content": "a"}]):
            before = await db.get_conversation("c")
            await asyncio.sleep(0.002)  # a later clock reading than the last write
            await db.add_messages("c", messages)
            after = await db.get_conversation("c")
            assert before is not None and after is not None
            moved.append(after.updated_at > before.updated_at)
        return moved

    async with AsyncConversationDB(":memory:") as lite, AsyncConversationDB(postgres_url) as pg:
        assert await scenario(lite) == [True, False, True]
        assert await scenario(pg) == [True, False, True]


async def test_a_uid_repeated_within_a_turn_is_stored_once_as_on_sqlite(
    postgres_url: str,
) -> None:
    async def scenario(db: AsyncConversationDB) -> list[Any]:
        await db.create_conversation("c")
        turn = [{"role": "user", "content": c, "uid": u} for c, u in
                (("first", "x"), ("plain", None), ("second", "x"), ("other", "y"))]  # fmt: skip
        added = [await db.add_messages("c", turn), await db.add_messages("c", turn)]
        return [added, [(m.seq, m.content, m.uid) for m in await db.get_messages("c")]]

    async with AsyncConversationDB(":memory:") as lite, AsyncConversationDB(postgres_url) as pg:
        expected = await scenario(lite)
        assert expected[0] == [3, 1]  # the retry adds only the message without a uid
        assert await scenario(pg) == expected


async def test_an_append_is_planned_once_per_connection(postgres_url: str) -> None:
    """Planning the append costs about as much as running it: PostgreSQL must choose to
    keep one (generic) plan for the prepared statement rather than plan every call."""
    async with AsyncConversationDB(postgres_url, min_size=1, max_size=1) as db:
        await db.create_conversation("c")
        for i in range(12):
            await db.add_messages("c", [{"role": "user", "content": f"m{i}", "uid": f"u{i}"},
                                        {"role": "assistant", "content": f"a{i}"}])  # fmt: skip
        pool = db.backend._pool  # type: ignore[attr-defined]
        plans = await pool.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
            sql.APPEND_MESSAGES,
        )
    assert plans is not None and plans["generic_plans"] > plans["custom_plans"], dict(plans)


async def test_a_plan_made_on_a_small_table_still_finds_stored_uids_by_index(
    postgres_url: str,
) -> None:
    """The one plan PostgreSQL keeps is often made while the table is still small; a uid
    lookup it turned into "read the conversation's every uid, then filter" made each turn
    cost more as the conversation grew (835 to 277 turns/s over 2,000 turns)."""
    probe = "('c', now(), '{user,user}', '{x,y}', '{NULL,NULL}', '{u5,new}', '{NULL,NULL}')"
    async with AsyncConversationDB(postgres_url) as db, connect(postgres_url) as conn:
        await db.create_conversation("c")
        for i in range(5):  # a plan is kept from the sixth call on
            await db.add_messages("c", [{"role": "user", "content": f"m{i}", "uid": f"u{i}"}])
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        for name, query in (("fast", sql.APPEND_MESSAGES), ("locked", sql.APPEND_NEW_MESSAGES)):
            await conn.execute(
                f"PREPARE {name} (text, timestamptz, text[], text[], text[], text[], text[]) "
                f"AS {query}"
            )
            await conn.execute(f"EXPLAIN EXECUTE {name}{probe}")  # planned on a small table
        for i in range(5, 300):
            await db.add_messages("c", [{"role": "user", "content": f"m{i}", "uid": f"u{i}"}])
        for name in ("fast", "locked"):
            tx = conn.transaction()
            await tx.start()
            try:
                rows = await conn.fetch(f"EXPLAIN (ANALYZE) EXECUTE {name}{probe}")
            except asyncpg.UniqueViolationError:
                rows = []  # the fast statement refuses a stored uid: it looked nothing up
            finally:
                await tx.rollback()
            plan = "\n".join(row[0] for row in rows)
            removed = [int(line.rsplit(":", 1)[1]) for line in plan.splitlines()
                       if "Rows Removed by Filter" in line]  # fmt: skip
            assert all(n < 10 for n in removed), plan
        assert rows, "the locked append must run"


# -- the schema ------------------------------------------------------------------------------

CONSTRAINTS = """
SELECT c.conrelid::regclass::text, c.contype::text,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) k
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k),
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) k
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k)
FROM pg_constraint c
WHERE c.connamespace = current_schema()::regnamespace AND c.contype IN ('p', 'u', 'f')
  AND c.conrelid <> 'lit_memory_migrations'::regclass
"""

UNIQUE_INDEXES_OUTSIDE_CONSTRAINTS = """
SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
WHERE i.indisunique AND t.relnamespace = current_schema()::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
  AND t.relname <> 'lit_memory_migrations'
"""


async def test_every_key_includes_the_conversation_for_distribution(postgres_url: str) -> None:
    async with AsyncConversationDB(postgres_url) as db:
        await db.init_db()
    async with connect(postgres_url) as conn:
        constraints = await conn.fetch(CONSTRAINTS)
        unique_indexes = await conn.fetch(UNIQUE_INDEXES_OUTSIDE_CONSTRAINTS)
        collations = await conn.fetch(
            "SELECT table_name::text, collation_name::text FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND column_name = 'conversation_id'"
        )
    tables = {"conversations", "messages", "tool_calls", "web_sources", "mashups"}
    assert {r[0] for r in constraints if r[1] == "p"} == tables | {"phase_transitions"}
    for table, kind, columns, referenced in constraints:
        assert "conversation_id" in columns, (table, kind, columns)
        if kind == "f":
            assert "conversation_id" in referenced, (table, referenced)
    assert unique_indexes == []  # uniqueness only through the constraints checked above
    assert {c for _, c in collations} == {"C"}  # ids sort byte-wise, as on SQLite


async def _populate_for_plans(db: AsyncConversationDB) -> int:
    await db.create_conversation("c", owner="u")
    await db.add_messages("c", [{"role": "user", "content": "bebop and drill", "uid": "m1"}])
    tool_call_id = await db.add_tool_call("c", "web_search", "bebop", run_id="r1")
    assert tool_call_id is not None
    await db.add_web_source(tool_call_id, "https://example.com", rank=1)
    return tool_call_id


async def test_every_read_and_append_can_use_an_index(postgres_url: str) -> None:
    async with AsyncConversationDB(postgres_url) as db:
        await db.init_db()
        tool_call_id = await _populate_for_plans(db)
    now = datetime.now(timezone.utc)
    reads: list[tuple[str, list[object]]] = [
        (sql.SELECT_CONVERSATION, ["c"]),
        (sql.SELECT_SUMMARY, ["c"]),
        (sql.SELECT_MESSAGES, ["c", 0, 10, 0]),
        (sql.SELECT_LAST_MESSAGES, ["c", 1 << 62, 10]),
        (sql.COUNT_MESSAGES, ["c"]),
        (sql.SELECT_TOOL_CALL, [tool_call_id]),
        (sql.SELECT_TOOL_CALL_BY_RUN, ["c", "r1"]),
        (sql.SELECT_TOOL_CALLS, ["c"]),
        (sql.SELECT_SOURCES_OF_TOOL_CALL, ["c", tool_call_id]),
        (sql.SELECT_SOURCES_OF_CONVERSATION, ["c"]),
        (sql.SELECT_MASHUPS, ["c"]),
        (sql.SELECT_TRANSITIONS, ["c"]),
        sql.list_conversations(phase=None, owner=None, before=None, limit=10),
        sql.list_conversations(phase="initial", owner="u", before=(now, "c"), limit=10),
        sql.search_messages("bebop", raw=False, conversation_id=None, owner=None, limit=5),
        sql.search_messages("bebop", raw=True, conversation_id="c", owner="u", limit=5),
        # Writes that look rows up (EXPLAIN does not run them).
        (sql.APPEND_MESSAGES, ["c", now, ["user"], ["x"], [None], ["m1"], [None]]),
        (sql.CREATE_WITH_MESSAGES, ["n", now, ["user"], ["x"], [None], [None], [None], "u", "x"]),
        (sql.LOCK_AND_RENEW_CONVERSATION, ["c"]),
    ]
    async with connect(postgres_url) as conn:
        # The tables are tiny: forbid sequential scans, so a missing index shows as one.
        await conn.execute("SET enable_seqscan = off")
        for query, params in reads:
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + query, *params))
            assert "Seq Scan" not in plan, f"{query}\n{plan}"


async def test_orders_match_sqlite(postgres_url: str) -> None:
    async def scenario(db: AsyncConversationDB) -> list[Any]:
        await db.create_conversation("c")
        tool_call_id = await db.add_tool_call("c", "web_search", "q")
        assert tool_call_id is not None
        sources = [{"url": "u3", "rank": 2}, {"url": "u1"}, {"url": "u2", "rank": 1}, {"url": "u0"}]
        await db.add_web_sources(tool_call_id, sources)
        call = await db.get_tool_call(tool_call_id)
        assert call is not None
        return [
            [s.url for s in await db.get_web_sources("c")],
            [s.url for s in call.sources],
        ]

    async with AsyncConversationDB(":memory:") as lite, AsyncConversationDB(postgres_url) as pg:
        expected = await scenario(lite)
        assert expected[0] == ["u1", "u0", "u2", "u3"]  # unranked first, then by rank
        assert await scenario(pg) == expected


async def test_a_message_too_big_for_one_tsvector_is_stored(postgres_url: str) -> None:
    # 2 MB of distinct words: more than the 1 MB a tsvector can hold.
    words = [f"w{i:07d}x" for i in range(200_000)]
    async with AsyncConversationDB(postgres_url) as db:
        await db.create_conversation("c")
        assert await db.add_message("c", "tool", " ".join(words)) is True
        assert len((await db.get_messages("c"))[0].content) == 2_000_000 - 1
        hits = await db.search_messages(words[10])  # the indexed beginning is searchable
        assert [h.message.seq for h in hits] == [1] and f"**{words[10]}**" in hits[0].snippet


async def test_json_comes_back_as_it_went_in(postgres_url: str) -> None:
    # json, not jsonb: numbers, key order and \u0000 survive, as on SQLite.
    metadata = {"z": 1e16, "a": -0.0, "nul": "a\x00b", "n": [1.5e-7, 10**30]}
    async with AsyncConversationDB(postgres_url) as db:
        await db.create_conversation("c", metadata)
        await db.add_message("c", "user", "hi", metadata, payload=metadata)
        conversation, message = await db.get_conversation("c"), (await db.get_messages("c"))[0]
    assert conversation is not None
    for value in (conversation.metadata, message.metadata, message.payload):
        assert json.dumps(value) == json.dumps(metadata)
