"""Bodies of the child processes the core tests start (importable under the spawn method).

Each worker waits at a barrier so that all of them hit the database at the same moment,
then reports ``(worker, "ok", detail)`` or ``(worker, "error", traceback)`` on a queue: an
exception must reach the test, not only the child's stderr.
"""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

from lit_memory import AsyncConversationDB

SHARED = "shared"


def own(worker: int) -> str:
    """The conversation only `worker` writes to."""
    return f"own-{worker}"


def turn(worker: int, index: int) -> list[dict[str, Any]]:
    """Worker `worker`'s turn number `index`: a question and its answer, with message ids."""
    return [
        {"role": "user", "content": f"w{worker}-t{index}-q", "uid": f"w{worker}-t{index}-q"},
        {"role": "assistant", "content": f"w{worker}-t{index}-a", "uid": f"w{worker}-t{index}-a"},
    ]


def _report(worker: int, results: Any, body: Any) -> None:
    try:
        detail = asyncio.run(body)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the test
        results.put((worker, "error", f"{type(exc).__name__}: {traceback.format_exc()}"))
    else:
        results.put((worker, "ok", detail))


async def _write_turns(path: str, turns: int, worker: int, barrier: Any) -> int:
    barrier.wait(30)
    async with AsyncConversationDB(path) as db:
        stored = 0
        for index in range(turns):
            # create=True: the first writers race to create the shared conversation.
            stored += await db.add_messages(SHARED, turn(worker, index), create=True)
            stored += await db.add_messages(own(worker), turn(worker, index), create=True)
        return stored


def write_turns(path: str, turns: int, worker: int, barrier: Any, results: Any) -> None:
    """Write `turns` turns to the shared conversation and to the worker's own one."""
    _report(worker, results, _write_turns(path, turns, worker, barrier))


async def _first_use(path: str, worker: int, barrier: Any) -> int:
    db = AsyncConversationDB(path)
    try:
        barrier.wait(30)
        await db.init_db()
        await db.add_messages(SHARED, turn(worker, 0)[:1], create=True)
        return await db.schema_version()
    finally:
        await db.close()


def first_use(path: str, worker: int, barrier: Any, results: Any) -> None:
    """Open a (possibly brand-new) file, migrate it and write one message; report the version."""
    _report(worker, results, _first_use(path, worker, barrier))
