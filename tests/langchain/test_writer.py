"""The handlers' background writer: jobs of one key in order, different keys together."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.tools import tool

from lit_memory import AsyncConversationDB, InvalidInputError
from lit_memory_langchain._writer import StoreWriter
from lit_memory_langchain.callbacks import LitCallbackHandler


async def test_keyed_jobs_run_together_and_each_key_keeps_its_order(
    db: AsyncConversationDB,
) -> None:
    writer = StoreWriter(db, name="test")
    log: list[tuple[str, str]] = []
    running = 0
    most_at_once = 0

    def job(key: str, step: int) -> Any:
        async def run(store: AsyncConversationDB) -> None:
            nonlocal running, most_at_once
            running += 1
            most_at_once = max(most_at_once, running)
            log.append((key, f"start {step}"))
            await store.add_messages(key, [{"role": "user", "content": f"{step}"}], create=True)
            log.append((key, f"end {step}"))
            running -= 1

        return run

    # Hold the writer on a first job so the rest queue up and form one batch.
    gate = asyncio.Event()

    async def hold(store: AsyncConversationDB) -> None:
        await gate.wait()

    writer.submit(hold)
    for step in range(3):
        for key in ("a", "b", "c"):
            writer.submit(job(key, step), key=key)
    await asyncio.sleep(0.05)
    gate.set()
    await writer.aflush()

    assert most_at_once == 3  # the three keys ran at once
    for key in ("a", "b", "c"):
        steps = [event for k, event in log if k == key]
        assert steps == ["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]
        stored = await db.get_messages(key)
        assert [m.content for m in stored] == ["0", "1", "2"]
    await writer.aclose()


async def test_a_job_without_a_key_waits_for_those_before_and_holds_those_after(
    db: AsyncConversationDB,
) -> None:
    writer = StoreWriter(db, name="test")
    log: list[str] = []
    gate = asyncio.Event()

    def job(name: str) -> Any:
        async def run(store: AsyncConversationDB) -> None:
            log.append(f"start {name}")
            await store.add_messages(name, [{"role": "user", "content": name}], create=True)
            log.append(f"end {name}")

        return run

    async def hold(store: AsyncConversationDB) -> None:
        await gate.wait()

    writer.submit(hold)
    writer.submit(job("k1"), key="k1")
    writer.submit(job("k2"), key="k2")
    writer.submit(job("alone"))
    writer.submit(job("k3"), key="k3")
    await asyncio.sleep(0.05)
    gate.set()
    await writer.aflush()

    alone_start, alone_end = log.index("start alone"), log.index("end alone")
    assert alone_end == alone_start + 1  # nothing ran beside it
    assert {"end k1", "end k2"} <= set(log[:alone_start])
    assert log[alone_end + 1 :] == ["start k3", "end k3"]
    await writer.aclose()


async def test_a_failing_keyed_job_fails_alone(db: AsyncConversationDB) -> None:
    writer = StoreWriter(db, name="test")

    async def bad(store: AsyncConversationDB) -> None:
        await store.add_messages("", [{"role": "user", "content": "x"}])

    def good(cid: str) -> Any:
        async def run(store: AsyncConversationDB) -> None:
            await store.add_messages(cid, [{"role": "user", "content": cid}], create=True)

        return run

    writer.submit(good("g1"), key="g1")
    writer.submit(bad, key="bad")
    writer.submit(good("g2"), key="g2")
    with pytest.raises(InvalidInputError):  # raised from the next flush
        await writer.aflush()
    assert await db.count_messages("g1") == 1
    assert await db.count_messages("g2") == 1
    await writer.aclose()


@tool
def web_search(query: str) -> list[dict[str, Any]]:
    """Search the web (two results)."""
    return [
        {"url": f"https://example.org/{query}/{rank}", "title": f"Result {rank}", "score": 0.9}
        for rank in range(2)
    ]


@tool
async def slow_search(query: str) -> list[dict[str, Any]]:
    """Search the web, slowly: its start is stored before it ends."""
    await asyncio.sleep(0.3)
    return web_search.func(query)  # type: ignore[misc]


@tool
def generate_mashup(genres: str) -> dict[str, Any]:
    """Generate a mashup."""
    return {"title": "Bossa Trap", "description": genres, "bpm": 140}


async def test_a_call_whose_end_is_queued_with_its_start_is_stored_by_one_insert(
    db: AsyncConversationDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = LitCallbackHandler(db, "c")
    writes: list[str] = []
    for name in ("add_tool_call", "update_tool_call", "add_web_sources"):
        original = getattr(db, name)

        def counted(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            writes.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(db, name, counted)
    gate = asyncio.Event()

    async def hold(store: AsyncConversationDB) -> None:
        await gate.wait()

    handler._writer.submit(hold)  # the tools' starts and ends queue up behind this
    await web_search.ainvoke("bossa", {"callbacks": [handler]})
    await generate_mashup.ainvoke("bossa+trap", {"callbacks": [handler]})
    await asyncio.sleep(0.05)
    gate.set()
    await handler.aflush()

    assert writes == ["add_tool_call", "add_tool_call"]  # no update, no separate sources
    search, generator = await db.get_tool_calls("c")
    assert search.status == "completed" and search.started_at and search.completed_at
    assert [s.url for s in search.sources] == [
        "https://example.org/bossa/0", "https://example.org/bossa/1",
    ]  # fmt: skip
    assert generator.status == "completed"
    (mashup,) = await db.get_mashups("c")
    assert mashup.title == "Bossa Trap" and mashup.tool_call_id == generator.tool_call_id

    # Apart, a start is stored as running and its end updates it with its sources.
    writes.clear()
    await slow_search.ainvoke("trap", {"callbacks": [handler]})
    await handler.aflush()
    assert writes[-1] == "update_tool_call" and "add_web_sources" not in writes
    last = (await db.get_tool_calls("c"))[-1]
    assert last.status == "completed" and len(last.sources) == 2
    await handler.aclose()
