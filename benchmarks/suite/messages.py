"""The work every system is given: deterministic sessions, turns and message texts.

Texts are recomputed from (session, index), so a round-trip check needs no copy of what was
written. A turn is a HumanMessage and an AIMessage shaped like a chat model's answer (an id,
response metadata and token usage), the same objects for every system.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

_WORDS = (
    "beat bass chorus verse bridge tempo groove sample loop drop melody harmony rhythm swing "
    "funk soul jazz blues rock punk disco house techno reggae dub hiphop trap grime cumbia "
    "salsa samba bossa afrobeat highlife gospel country folk ambient drill garage jungle "
    "breakbeat synth guitar piano horn strings vocal hook lyric key minor major chord scale "
    "mode tritone cadence crossfade mashup remix stem acapella instrumental bpm downbeat "
    "offbeat syncopation polyrhythm call response history culture origin influence era scene "
    "producer label record vinyl radio club festival the a of and to in with from for on "
    "why how what when which genre sound style era roots late early modern classic"
).split()

_POOL_SIZE = 4096
_HUMAN_WORDS = (8, 30)
_AI_WORDS = (25, 100)


def _make_pool(words: tuple[int, int], seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(*words))).capitalize() + "."
        for _ in range(_POOL_SIZE)
    ]


_HUMAN_POOL = _make_pool(_HUMAN_WORDS, 1)
_AI_POOL = _make_pool(_AI_WORDS, 2)


def session_id(number: int) -> str:
    """The id of conversation `number`: a UUID, which PostgresChatMessageHistory requires."""
    return f"00000000-0000-4000-8000-{number:012d}"


def message_text(session: str, index: int) -> str:
    """The content of message `index` (0-based) of `session`: even human, odd AI; unique."""
    pool = _HUMAN_POOL if index % 2 == 0 else _AI_POOL
    pick = (hash_of(session) * 31 + index * 7919) % _POOL_SIZE
    return f"{pool[pick]} [{session[-6:]}#{index}]"


def message_id(session: str, index: int) -> str:
    """The LangChain id of message `index` of `session` (as a model provider sets it)."""
    return f"m-{session[-12:]}-{index}"


def hash_of(session: str) -> int:
    """A stable small hash of a session id (Python's str hash changes per process)."""
    return int(session[-12:]) if session[-12:].isdigit() else sum(map(ord, session))


def make_message(session: str, index: int) -> BaseMessage:
    """Message `index` of `session` as the LangChain object an app would store."""
    text, uid = message_text(session, index), message_id(session, index)
    if index % 2 == 0:
        return HumanMessage(content=text, id=uid)
    return AIMessage(
        content=text,
        id=uid,
        response_metadata={"model_name": "scripted-1", "finish_reason": "stop"},
        usage_metadata={"input_tokens": 120, "output_tokens": 80, "total_tokens": 200},
    )


def make_turn(session: str, turn: int) -> list[BaseMessage]:
    """Turn `turn` (0-based) of `session`: its human message and the AI's answer."""
    return [make_message(session, 2 * turn), make_message(session, 2 * turn + 1)]


def cohort_order(lengths: Sequence[int], cohort: int = 100) -> Iterator[tuple[int, int]]:
    """(conversation number, message index) in the order a busy app writes them.

    `lengths` gives each conversation's message count. Conversations are active in cohorts
    of `cohort` at a time whose turns interleave, so a conversation's messages are spread
    over the table as in real use, not stored together.
    """
    for first in range(0, len(lengths), cohort):
        members = range(first, min(first + cohort, len(lengths)))
        for index in range(max(lengths[n] for n in members)):
            for number in members:
                if index < lengths[number]:
                    yield number, index
