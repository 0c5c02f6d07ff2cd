"""S7: scenarios 1-3 on PostgreSQL, lit-memory against PostgresChatMessageHistory."""

from __future__ import annotations

import asyncio

from . import bulk, reads, writes
from .context import Context, Factory, pg_chat
from .places import PostgresPlace
from .results import Scenario
from .systems import LitCore, LitHistory


def start(log: object = print) -> tuple[PostgresPlace | None, str | None]:
    """A running throwaway server whose lit-memory backend works, or None and why not."""
    try:
        import asyncpg  # noqa: F401
        import psycopg  # noqa: F401
        from langchain_postgres import PostgresChatMessageHistory  # noqa: F401
    except ImportError as exc:
        return None, f"not available ({exc})"
    try:
        place = PostgresPlace.start()
    except Exception as exc:  # no binaries, no permission...: the scenario is skipped
        return None, f"no PostgreSQL server ({type(exc).__name__}: {exc})"[:200]
    problem = asyncio.run(_backend_problem(place))
    if problem is not None:
        place.stop()
        return None, problem
    return place, None


async def _backend_problem(place: PostgresPlace) -> str | None:
    """None when AsyncConversationDB("postgresql://...") stores and reads a turn."""
    from lit_memory import AsyncConversationDB

    target = await place.fresh("probe")
    try:
        async with AsyncConversationDB(target) as db:
            await db.init_db()
            await db.add_messages("probe", [{"role": "user", "content": "hi"}], create=True)
            if len(await db.get_last_messages("probe", 5)) != 1:
                return "lit-memory's postgresql:// backend did not read back its write"
    except Exception as exc:
        return f"lit-memory's postgresql:// backend is not usable ({type(exc).__name__}: {exc})"
    finally:
        await place.release(target)
    return None


def _factories(ctx: Context, read_last: int | None = None) -> list[Factory]:
    found: list[Factory] = [LitHistory] if ctx.has_history else []
    return [*found, lambda dsn: LitCore(dsn, read_last=read_last), pg_chat()]


async def s7_all(ctx: Context, place: PostgresPlace) -> list[Scenario]:
    """S1, S2 and S3 on the PostgreSQL server."""
    found = [
        await writes.s1_append(ctx, place, _factories(ctx), key="s7-s1"),
        await writes.s2_concurrent(ctx, place, _factories(ctx), key="s7-s2"),
        await _s7_reads(ctx, place),
    ]
    return found


async def _s7_reads(ctx: Context, place: PostgresPlace) -> Scenario:
    cfg = ctx.config
    data = bulk.DataSet.uniform(cfg.pg_conversations, cfg.per_conversation)
    scenario = reads.read_scenario("s7-s3", cfg.s3_reads, data, "PostgreSQL")
    ctx.log(f"  s7-s3: bulk-loading {data.messages:,} messages into two databases")
    lit, chat = await place.fresh("lit"), await place.fresh("chat")
    try:
        await bulk.build_pg_lit(lit, data)
        await bulk.build_pg_chat(chat, data)
        prepared = [(lit, f) for f in _factories(ctx, cfg.per_conversation)[:-1]]
        prepared.append((chat, pg_chat()))
        group = reads.ReadGroup(prepared, data.sessions(), cfg.per_conversation)
        await reads.measure_reads(ctx, scenario, [group], reads=cfg.s3_reads)
    finally:
        await place.release(lit)
        await place.release(chat)
    return scenario
