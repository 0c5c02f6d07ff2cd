"""S3 (random reads), S4 (reads as the database grows) and S5 (the prompt window)."""

from __future__ import annotations

import asyncio
import functools
import random
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, trim_messages
from langchain_core.messages.utils import count_tokens_approximately

from . import bulk
from . import messages as work
from .context import Context, Factory, raw, rotate, sqlchat
from .results import Scenario, percentile, time_calls
from .systems import LitHistory, System
from .verify import check_sessions, sample_sessions

Prepared = tuple[str, Factory]
"""A system on its prepared database: (path or URL, factory)."""

_WARM_UP = 5
READ_EXTRAS = {"mean": "µs", "p99": "µs"}


def read_extras(durations: list[float]) -> dict[str, float]:
    """The mean and p99 of read durations (seconds), in microseconds."""
    mean = sum(durations) / len(durations)
    return {"mean": mean * 1e6, "p99": percentile(durations, 99) * 1e6}


def warm_file(path: str) -> None:
    """Read a database file once, so every system starts with it in the OS page cache."""
    with open(path, "rb") as handle:
        while handle.read(1 << 22):
            pass


async def built(ctx: Context, family: str, data: bulk.DataSet, *, wal: bool = False) -> str:
    """The path of a bulk-built SQLite database (built in a thread on a cache miss)."""
    path = await asyncio.to_thread(bulk.cached_sqlite, ctx.cache, family, data, wal=wal)
    return str(path)


async def sqlite_readers(ctx: Context, data: bulk.DataSet, *, full: bool) -> list[Prepared]:
    """The SQLite systems on their bulk-built databases (`full`: every variant)."""
    lit = await built(ctx, "lit", data)
    raw_db = await built(ctx, "raw", data)
    chat = await built(ctx, "sqlchat", data)
    prepared: list[Prepared] = [(lit, f) for f in ctx.lit_systems(read_last=data.lengths[0])]
    prepared += [(raw_db, raw(True, True)), (raw_db, raw(True, False))]
    prepared.append((chat, sqlchat(True, False)))
    if full:
        chat_wal = await built(ctx, "sqlchat", data, wal=True)
        prepared += [(chat, sqlchat(False, False)), (chat_wal, sqlchat(False, True))]
        prepared.append((chat_wal, sqlchat(True, True)))
        prepared += [(raw_db, raw(False, True)), (raw_db, raw(False, False))]
    return prepared


@dataclass
class ReadGroup:
    """Systems reading the same data set; `suffix` labels their rows (e.g. " @ 1M")."""

    prepared: list[Prepared]
    sessions: list[str]
    per_session: int
    suffix: str = ""


async def measure_reads(
    ctx: Context, scenario: Scenario, groups: list[ReadGroup], *, reads: int
) -> None:
    """Time `reads` random conversation reads on each system of each group, every repeat.

    Each repeat measures every group and system back to back, so the ratios between them are
    taken under the same machine load. The main figure is the median time of one read, in
    microseconds: robust to the spikes of a shared machine (the mean and p99 are beside it).
    """
    for repeat in range(ctx.config.repeats):
        for group in groups:
            picks = random.Random(repeat).choices(group.sessions, k=reads + _WARM_UP)
            for target, factory in rotate(group.prepared, repeat):
                await _measure_one(ctx, scenario, group, target, factory, picks, repeat)


async def _measure_one(
    ctx: Context, scenario: Scenario, group: ReadGroup, target: str, factory: Factory,
    picks: list[str], repeat: int,
) -> None:  # fmt: skip
    if "://" not in target:
        warm_file(target)
    system = factory(target)
    ctx.log(f"  {scenario.key} repeat {repeat + 1}: {system.name}{group.suffix}")
    await system.open()
    try:
        for session in picks[:_WARM_UP]:
            await system.read(session)
        calls = [functools.partial(system.read, s) for s in picks[_WARM_UP:]]
        durations = await _timed(ctx, calls)
        expected = [(s, group.per_session) for s in sample_sessions(group.sessions, 5, repeat)]
        check = await check_sessions(system, expected)
    finally:
        await system.close()
    scenario.add(
        system.name + group.suffix, percentile(durations, 50) * 1e6, ops=len(durations),
        check=check, extras=read_extras(durations),
    )  # fmt: skip


async def _timed(ctx: Context, calls: list[Any]) -> list[float]:
    cfg = ctx.config
    return await time_calls(calls, budget=cfg.read_budget, min_calls=cfg.min_reads)


async def s3_reads(ctx: Context) -> Scenario:
    """Read one conversation's messages at random from a 100,000-message SQLite database."""
    cfg = ctx.config
    data = bulk.DataSet.uniform(cfg.s3_conversations, cfg.per_conversation)
    scenario = read_scenario("s3", cfg.s3_reads, data, "SQLite")
    ctx.log(f"  s3: preparing {data.messages:,}-message databases (cached)")
    prepared = await sqlite_readers(ctx, data, full=not cfg.quick)
    group = ReadGroup(prepared, data.sessions(), data.lengths[0])
    await measure_reads(ctx, scenario, [group], reads=cfg.s3_reads)
    return scenario


def read_scenario(key: str, reads: int, data: bulk.DataSet, place: str) -> Scenario:
    """The S3 scenario's header on `place`."""
    return Scenario(
        key, f"read one conversation's {data.lengths[0]} messages, {reads} times at random, "
        f"from {data.messages:,} messages [{place}]",
        "µs/read (p50)", False, READ_EXTRAS,
    )  # fmt: skip


async def s4_growth(ctx: Context) -> Scenario:
    """The S3 read as the database grows; microseconds per read at each size."""
    cfg = ctx.config
    sizes = ", ".join(f"{size:,}" for size in cfg.s4_sizes)
    scenario = Scenario(
        "s4", f"the same read ({cfg.s4_reads} at random) as the database grows: {sizes} "
        "messages", "µs/read (p50)", False, READ_EXTRAS,
    )  # fmt: skip
    groups = []
    for size in cfg.s4_sizes:
        data = bulk.DataSet.uniform(size // cfg.per_conversation, cfg.per_conversation)
        ctx.log(f"  s4: preparing {size:,}-message databases (cached after the first run)")
        prepared = await sqlite_readers(ctx, data, full=False)
        suffix = f" @ {short_size(size)}"
        groups.append(ReadGroup(prepared, data.sessions(), cfg.per_conversation, suffix))
    await measure_reads(ctx, scenario, groups, reads=cfg.s4_reads)
    return scenario


def short_size(size: int) -> str:
    """A size as a short label: 10k, 1M."""
    return f"{size // 1_000_000}M" if size >= 1_000_000 else f"{size // 1000}k"


# -- S5: the prompt window ------------------------------------------------------------------


async def lit_window(system: System, session: str, tokens: int) -> list[BaseMessage]:
    """lit-memory's own window: `aget_window` reads only the rows the budget needs."""
    assert isinstance(system, LitHistory)
    return await system.window(session, tokens)


async def trimmed_window(system: System, session: str, tokens: int) -> list[BaseMessage]:
    """A peer's window: every message, then LangChain's `trim_messages` (strategy "last")."""
    history = await system.read(session)
    return trim_messages(
        history, max_tokens=tokens, strategy="last", start_on="human", include_system=True,
        token_counter=count_tokens_approximately,
    )  # fmt: skip


async def s5_window(ctx: Context) -> Scenario:
    """The last messages within a token budget from a short and a long conversation."""
    cfg = ctx.config
    short, long = cfg.s5_lengths
    scenario = Scenario(
        "s5", f"prompt window ({cfg.s5_tokens:,}-token budget) of a {short:,}- and a "
        f"{long:,}-message conversation", "µs/window (p50)", False, READ_EXTRAS,
    )  # fmt: skip
    if not ctx.has_history:
        scenario.skipped = "not available: lit_memory_langchain.LitChatMessageHistory"
        return scenario
    data = bulk.DataSet([short, long])
    systems = await _window_systems(ctx, data)
    for repeat in range(cfg.repeats):
        for target, factory, window in rotate(systems, repeat):
            warm_file(target)
            system = factory(target)
            await system.open()
            try:
                for number, length in enumerate(data.lengths):
                    ctx.log(f"  s5 repeat {repeat + 1}: {system.name} @ {length:,} msgs")
                    await _measure_windows(ctx, scenario, system, window, number, length)
            finally:
                await system.close()
    return scenario


async def _window_systems(ctx: Context, data: bulk.DataSet) -> list[tuple[str, Factory, Any]]:
    tokens = ctx.config.s5_tokens
    lit, chat = await built(ctx, "lit", data), await built(ctx, "sqlchat", data)
    raw_db = await built(ctx, "raw", data)
    ours = functools.partial(lit_window, tokens=tokens)
    theirs = functools.partial(trimmed_window, tokens=tokens)
    return [
        (lit, LitHistory, ours),
        (chat, sqlchat(True, False), theirs),
        (raw_db, raw(True, True), theirs),
    ]


async def _measure_windows(
    ctx: Context, scenario: Scenario, system: System, window: Any, number: int, length: int
) -> None:
    """Time the window of conversation `number` (`length` messages) on an open system."""
    session = work.session_id(number)
    await window(system, session)
    calls = [functools.partial(window, system, session)] * ctx.config.s5_windows
    durations = await _timed(ctx, calls)
    check = _check_window(await window(system, session), session, length)
    scenario.add(
        f"{system.name} @ {length:,} msgs", percentile(durations, 50) * 1e6,
        ops=len(durations), check=check, extras=read_extras(durations),
    )  # fmt: skip


def _check_window(window: list[BaseMessage], session: str, length: int) -> str:
    """A window must end with the conversation's last message and hold whole turns."""
    if not window:
        return "empty window"
    first = length - len(window)
    wanted = [work.make_message(session, index) for index in range(first, length)]
    if [(m.type, m.id, m.content) for m in window] != [(m.type, m.id, m.content) for m in wanted]:
        return "window is not the conversation's last messages"
    return "ok"
