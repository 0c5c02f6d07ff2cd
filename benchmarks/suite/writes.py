"""S1 (appends to one conversation) and S2 (concurrent writers), on any place."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Protocol

from . import messages as work
from .context import Context, Factory, rotate
from .results import Scenario, latency_extras, time_calls
from .systems import System
from .verify import check_sessions, sample_sessions


class Place(Protocol):
    """Gives each system run a fresh database (see `places`)."""

    label: str

    async def fresh(self, label: str) -> str: ...

    async def release(self, target: str) -> None: ...


async def s1_append(
    ctx: Context, place: Place, factories: list[Factory], key: str = "s1"
) -> Scenario:
    """Append N turns, one call per turn, to one conversation; turns/s."""
    n = ctx.config.s1_turns
    session = work.session_id(1)
    turns = [work.make_turn(session, t) for t in range(n)]
    scenario = Scenario(
        key, f"append {n:,} turns (human + AI, one call per turn) to one conversation "
        f"[{place.label}]", "turns/s", True, {"p50": "ms", "p99": "ms"},
    )  # fmt: skip
    for repeat in range(ctx.config.repeats):
        for factory in rotate(factories, repeat):
            target = await place.fresh(key)
            system = factory(target)
            ctx.log(f"  {key} repeat {repeat + 1}: {system.name}")
            await system.open()
            try:
                calls = [functools.partial(system.add_turn, session, turn) for turn in turns]
                durations = await time_calls(calls)
                check = await check_sessions(system, [(session, 2 * n)])
            finally:
                await system.close()
                await place.release(target)
            scenario.add(
                system.name, n / sum(durations), ops=n, check=check,
                extras=latency_extras(durations),
            )  # fmt: skip
    return scenario


async def s2_concurrent(
    ctx: Context, place: Place, factories: list[Factory], key: str = "s2"
) -> Scenario:
    """Conversations x turns written by concurrent async writers; turns/s, p50/p99 latency."""
    cfg = ctx.config
    sessions = [work.session_id(n) for n in range(cfg.s2_conversations)]
    turns = {(s, t): work.make_turn(s, t) for s in sessions for t in range(cfg.s2_turns)}
    scenario = Scenario(
        key, f"{cfg.s2_conversations} conversations x {cfg.s2_turns} turns by "
        f"{cfg.s2_writers} concurrent async writers [{place.label}]",
        "turns/s", True, {"p50": "ms", "p99": "ms"},
    )  # fmt: skip
    for repeat in range(cfg.repeats):
        for factory in rotate(factories, repeat):
            target = await place.fresh(key)
            system = factory(target)
            if not system.concurrent:
                await place.release(target)
                continue
            ctx.log(f"  {key} repeat {repeat + 1}: {system.name}")
            await system.open()
            try:
                elapsed, latencies, errors = await _write_concurrently(system, sessions, turns, cfg)
                expected = [(s, 2 * cfg.s2_turns) for s in sample_sessions(sessions, 10, repeat)]
                check = await check_sessions(system, expected)
            finally:
                await system.close()
                await place.release(target)
            if errors:
                check = f"{len(errors)} turns failed: {errors[0]}"[:120]
            scenario.add(
                system.name, len(turns) / elapsed, ops=len(turns), check=check,
                extras=latency_extras(latencies),
            )  # fmt: skip
    return scenario


async def _write_concurrently(
    system: System, sessions: list[str], turns: dict[tuple[str, int], Any], cfg: Any
) -> tuple[float, list[float], list[str]]:
    """Each writer owns every n-th conversation and writes their turns round-robin."""
    latencies: list[float] = []
    errors: list[str] = []

    async def writer(mine: list[str]) -> None:
        for turn in range(cfg.s2_turns):
            for session in mine:
                before = time.perf_counter()
                try:
                    await system.add_turn(session, turns[session, turn])
                except Exception as exc:  # counted and reported: the check then fails
                    errors.append(f"{type(exc).__name__}: {exc}")
                latencies.append(time.perf_counter() - before)

    started = time.perf_counter()
    await asyncio.gather(*(writer(sessions[w :: cfg.s2_writers]) for w in range(cfg.s2_writers)))
    return time.perf_counter() - started, latencies, errors
