"""Round-trip checks run after each scenario: every message is there, and a sample is equal."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from . import messages as work
from .systems import LANGCHAIN, System

_SAMPLE = 12


def check_result(system: System, session: str, result: list[Any], count: int) -> str | None:
    """What is wrong with `result`, a read of all `count` messages of `session` (None: ok).

    Checks the count, then the text (and, for LangChain messages, the type and id) of a
    sample: the first, the last and some in between.
    """
    if len(result) != count:
        return f"{session[-6:]}: {len(result)} messages read, {count} written"
    texts = system.texts(result)
    rng = random.Random(session)
    sample = {0, len(result) - 1, *rng.sample(range(len(result)), min(_SAMPLE, len(result)))}
    for index in sorted(sample):
        if texts[index] != work.message_text(session, index):
            return f"{session[-6:]}#{index}: content differs"
        if system.level == LANGCHAIN and not _same_message(result[index], session, index):
            return f"{session[-6:]}#{index}: type or id differs"
    return None


def _same_message(message: Any, session: str, index: int) -> bool:
    wanted = work.make_message(session, index)
    return message.type == wanted.type and message.id == wanted.id


async def check_sessions(system: System, counts: Iterable[tuple[str, int]]) -> str:
    """Read each (session, message count) back through `system`; "ok" or the first problem."""
    for session, count in counts:
        try:
            result = await system.read(session)
        except Exception as exc:  # a failed read is a failed check, reported in the table
            return f"read failed: {type(exc).__name__}: {exc}"[:120]
        problem = check_result(system, session, result, count)
        if problem is not None:
            return problem
    return "ok"


def sample_sessions(sessions: list[str], size: int = 5, seed: int = 0) -> list[str]:
    """A reproducible sample of `sessions` to check."""
    if len(sessions) <= size:
        return list(sessions)
    return random.Random(seed).sample(sessions, size)
