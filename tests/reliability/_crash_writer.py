"""The writer process the crash harness kills, and the checks it runs after each kill.

A writer runs a few tasks at once (so the SQLite group commit puts several callers in one
transaction), each appending to its own conversation, forever: a turn of three messages with
message ids, a tool call with a run id, its web sources, the call's completion, and now and then
a phase change. Around every write it appends a line to a side log: an ``intent`` before the
call, and an ``ack`` after the call has returned (written with one ``os.write`` on an
``O_APPEND`` descriptor, then ``fsync``). The harness kills the writer with SIGKILL at a random
moment; everything acknowledged must then be in the database, exactly once and whole.

A new writer first retries the previous writers' unacknowledged turns and tool calls, as a real
client would after a crash: message ids and run ids make those retries idempotent.

Everything a write stores is derived from its tag (``w<writer>-t<task>-i<iteration>``), so
the checker recomputes what must be there from the log alone.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lit_memory import AsyncConversationDB, ConversationPhase

TASKS = 3
"""Concurrent tasks per writer; task ``t`` writes conversation ``conv-<t>``."""
ROLES = ("user", "assistant", "assistant")
SOURCES = 3
PHASES = [phase.value for phase in ConversationPhase]


def conversation(task: int) -> str:
    """The conversation task `task` of every writer appends to."""
    return f"conv-{task}"


def turn(tag: str) -> list[dict[str, Any]]:
    """The messages of the turn `tag`: ids ``<tag>-m<i>``, content that names them."""
    return [
        {
            "role": role,
            "content": f"{tag} message {i}: bebop, drill and the 1940s",
            "uid": f"{tag}-m{i}",
            "metadata": {"tag": tag, "i": i},
        }
        for i, role in enumerate(ROLES)
    ]


def sources(tag: str) -> list[dict[str, Any]]:
    """The web sources the tool call of `tag` found."""
    return [
        {"url": f"https://example.com/{tag}/{rank}", "title": f"{tag} #{rank}", "rank": rank}
        for rank in range(1, SOURCES + 1)
    ]


def output(tag: str) -> dict[str, Any]:
    """The output the tool call of `tag` completes with."""
    return {"tag": tag, "results": SOURCES}


# -- the side log ---------------------------------------------------------------------------


class Log:
    """Append-only JSON lines; an ack is on disk (fsync) before the writer goes on."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def intent(self, op: str, **fields: Any) -> None:
        self._write({"state": "intent", "op": op, **fields}, sync=False)

    def ack(self, op: str, **fields: Any) -> None:
        self._write({"state": "ack", "op": op, **fields}, sync=True)

    def _write(self, record: dict[str, Any], *, sync: bool) -> None:
        os.write(self._fd, (json.dumps(record) + "\n").encode())
        if sync:
            os.fsync(self._fd)


def read_log(path: str) -> list[dict[str, Any]]:
    """The records of the log; a last line cut short by the kill is left out (and only it)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except FileNotFoundError:
        return []
    records = []
    for number, line in enumerate(lines):
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number != len(lines) - 1:
                raise
    return records


def unfinished(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Intents with no ack, in log order."""
    records = list(records)
    acked = {(r["op"], r["tag"]) for r in records if r["state"] == "ack"}
    return [r for r in records if r["state"] == "intent" and (r["op"], r["tag"]) not in acked]


# -- the writer -------------------------------------------------------------------------------


async def _turn(db: AsyncConversationDB, log: Log, cid: str, tag: str) -> None:
    log.intent("turn", cid=cid, tag=tag)
    await db.add_messages(cid, turn(tag), create=True)
    log.ack("turn", cid=cid, tag=tag)


async def _tool(db: AsyncConversationDB, log: Log, cid: str, tag: str) -> int:
    log.intent("tool", cid=cid, tag=tag)
    tid = await db.add_tool_call(
        cid, "web_search", {"query": tag}, status="running", tool_name="search",
        run_id=f"{tag}-run", call_id=f"call-{tag}",
    )  # fmt: skip
    if tid is None:  # a retry: the first attempt was stored
        call = await db.get_tool_call_by_run(cid, f"{tag}-run")
        assert call is not None, f"tool call {tag} neither stored nor found"
        tid = call.tool_call_id
    log.ack("tool", cid=cid, tag=tag, tid=tid)
    return tid


async def _sources(db: AsyncConversationDB, log: Log, cid: str, tag: str, tid: int) -> None:
    log.intent("sources", cid=cid, tag=tag, tid=tid)
    await db.add_web_sources(tid, sources(tag))
    log.ack("sources", cid=cid, tag=tag, tid=tid)


async def _done(db: AsyncConversationDB, log: Log, cid: str, tag: str, tid: int) -> None:
    log.intent("done", cid=cid, tag=tag, tid=tid)
    await db.update_tool_call(tid, output_data=output(tag), status="completed")
    log.ack("done", cid=cid, tag=tag, tid=tid)


async def _phase(db: AsyncConversationDB, log: Log, cid: str, tag: str, to: str) -> None:
    log.intent("phase", cid=cid, tag=tag, to=to)
    await db.update_conversation_phase(cid, to, reason=tag, strict=False)
    log.ack("phase", cid=cid, tag=tag, to=to)


def _others(phase: str) -> list[str]:
    return [p for p in PHASES if p != phase]


async def _retry(db: AsyncConversationDB, log: Log, pending: list[dict[str, Any]]) -> None:
    """Redo what earlier writers started but never saw acknowledged (phase changes are not
    idempotent, so they are left as they are: present or absent, both are fine)."""
    for record in pending:
        cid, tag = record["cid"], record["tag"]
        if record["op"] == "turn":
            await _turn(db, log, cid, tag)
        elif record["op"] == "tool":
            await _tool(db, log, cid, tag)
        elif record["op"] == "sources":
            await _sources(db, log, cid, tag, record["tid"])
        elif record["op"] == "done":
            await _done(db, log, cid, tag, record["tid"])


async def _task(db: AsyncConversationDB, log: Log, writer: int, task: int, seed: int) -> None:
    rng = random.Random(seed)
    cid = conversation(task)
    for i in itertools.count():
        tag = f"w{writer}-t{task}-i{i}"
        await _turn(db, log, cid, tag)
        tid = await _tool(db, log, cid, tag)
        await _sources(db, log, cid, tag, tid)
        await _done(db, log, cid, tag, tid)
        if rng.random() < 0.3:
            # Always a real change (one writer per conversation at a time), so every
            # acknowledged phase change leaves a transition row to look for.
            current = await db.get_conversation(cid)
            assert current is not None
            await _phase(db, log, cid, tag, rng.choice(_others(current.phase.value)))


async def _write(url: str, log_path: str, writer: int, seed: int, ready: Any) -> None:
    log = Log(log_path)
    async with AsyncConversationDB(url) as db:
        await db.init_db()
        ready.set()
        await _retry(db, log, unfinished(read_log(log_path)))
        await asyncio.gather(*(_task(db, log, writer, t, seed * 31 + t) for t in range(TASKS)))


def run_writer(url: str, log_path: str, writer: int, seed: int, ready: Any) -> None:
    """The body of writer process number `writer`: write until killed."""
    asyncio.run(_write(url, log_path, writer, seed, ready))


# -- the checks -------------------------------------------------------------------------------


@dataclass
class Check:
    """What one look at the database found."""

    acks: int = 0
    """Acknowledged writes looked for."""
    losses: list[str] = field(default_factory=list)
    """Acknowledged writes missing or not as written."""
    problems: list[str] = field(default_factory=list)
    """Broken invariants: half-written turns, gaps, phase and history disagreeing, ..."""


async def check_store(url: str, records: list[dict[str, Any]]) -> Check:
    """Open the store after a kill and check every acknowledged write and every invariant."""
    result = Check()
    async with AsyncConversationDB(url) as db:
        await db.init_db()
        state = {c.conversation_id: c for c in await db.list_conversations(limit=1000)}
        messages = {cid: await db.get_messages(cid) for cid in state}
        calls = {cid: await db.get_tool_calls(cid) for cid in state}
        history = {cid: await db.get_phase_history(cid) for cid in state}
    for cid in state:
        result.problems += _turn_problems(cid, messages[cid])
        result.problems += _call_problems(cid, calls[cid])
        result.problems += _phase_problems(cid, state[cid].phase.value, history[cid])
    by_tag = {m.uid.rsplit("-m", 1)[0]: m for ms in messages.values() for m in ms if m.uid}
    by_id = {c.tool_call_id: c for cs in calls.values() for c in cs}
    reasons = {(t.conversation_id, t.reason, t.to_phase.value) for h in history.values() for t in h}
    for record in records:
        if record["state"] != "ack":
            continue
        result.acks += 1
        if not _acked_write_present(record, by_tag, by_id, reasons):
            result.losses.append(json.dumps(record))
    return result


def _acked_write_present(
    record: dict[str, Any], by_tag: dict[str, Any], by_id: dict[int, Any], reasons: set[Any]
) -> bool:
    op, tag = record["op"], record["tag"]
    if op == "turn":
        return tag in by_tag  # whole turns only: _turn_problems checks the rest
    if op == "phase":
        return (record["cid"], tag, record["to"]) in reasons
    call = by_id.get(record["tid"])
    if (
        call is None
        or call.run_id != f"{tag}-run"
        or call.input_data != json.dumps({"query": tag}, separators=(",", ":"))
    ):
        return False
    if op == "sources":
        return [(s.url, s.title, s.rank) for s in call.sources] == [
            (s["url"], s["title"], s["rank"]) for s in sources(tag)
        ]
    if op == "done":
        done = call.status.value == "completed" and call.completed_at is not None
        return done and json.loads(call.output_data or "null") == output(tag)
    return True


def _turn_problems(cid: str, messages: list[Any]) -> list[str]:
    problems = []
    seqs = [m.seq for m in messages]
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append(f"{cid}: message seq is not 1..n: {seqs[:5]}...")
    groups: dict[str, list[Any]] = {}
    for m in messages:
        groups.setdefault((m.uid or "?").rsplit("-m", 1)[0], []).append(m)
    for tag, group in groups.items():
        expected = turn(tag)
        got = [(m.uid, m.role.value, m.content, m.metadata) for m in group]
        want = [(e["uid"], e["role"], e["content"], e["metadata"]) for e in expected]
        consecutive = [m.seq for m in group] == list(range(group[0].seq, group[0].seq + len(group)))
        if got != want or not consecutive:
            problems.append(f"{cid}: turn {tag} is half-written or altered: {got}")
    return problems


def _call_problems(cid: str, calls: list[Any]) -> list[str]:
    problems = []
    runs = [c.run_id for c in calls]
    if len(runs) != len(set(runs)):
        problems.append(f"{cid}: a run id is stored twice")
    for call in calls:
        if len(call.sources) not in (0, SOURCES):
            problems.append(f"{cid}: tool call {call.run_id} has a partial source batch")
    return problems


def _phase_problems(cid: str, phase: str, history: list[Any]) -> list[str]:
    accepted = [t for t in history if t.accepted]
    expected = accepted[-1].to_phase.value if accepted else "initial"
    if phase != expected:
        return [f"{cid}: phase {phase} but the last recorded transition went to {expected}"]
    return []
