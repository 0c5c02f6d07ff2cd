"""Search, retention, erasure, statistics, export and import, on every backend."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from lit_memory import (
    AsyncConversationDB,
    ConversationExistsError,
    InvalidInputError,
)


async def _populate(db: AsyncConversationDB, cid: str, owner: str | None = None) -> None:
    await db.create_conversation(cid, {"topic": "mashups", "cid": cid}, owner=owner)
    await db.add_messages(
        cid,
        [
            {"role": "user", "content": f"Tell me about bebop in {cid}", "uid": f"{cid}-1"},
            {
                "role": "assistant",
                "content": "Bebop is fast, harmonically dense jazz from the 1940s.",
                "metadata": {"model": "scripted"},
                "payload": {"type": "ai", "data": {"content": "Bebop...", "id": "m2"}},
                "uid": f"{cid}-2",
            },
        ],
    )
    await db.update_conversation_phase(cid, "genre_exploration", reason="genre named", run_id="r")
    tid = await db.add_tool_call(
        cid, "web_search", {"query": "bebop history"}, status="running",
        tool_name="tavily_search", run_id=f"{cid}-run", call_id="call_1",
    )  # fmt: skip
    assert tid is not None
    await db.update_tool_call(tid, output_data={"results": 2}, status="completed")
    await db.add_web_sources(
        tid,
        [
            {"url": "https://jazz.example/bebop", "title": "Bebop", "snippet": "1940s", "rank": 1,
             "relevance_score": 0.93},
            {"url": "https://jazz.example/bird", "title": "Charlie Parker", "rank": 2},
        ],
    )  # fmt: skip
    await db.create_mashup(cid, "Bebop x Drill", "tempo study", "out/mix.wav", {"bpm": 140},
                           tool_call_id=tid)  # fmt: skip
    failed = await db.add_tool_call(cid, "other", "x", status="error", error_message="boom")
    assert failed is not None


async def test_search_finds_ranked_messages_with_snippets(db: AsyncConversationDB) -> None:
    await _populate(db, "a", owner="u1")
    await _populate(db, "b", owner="u2")
    await db.add_message("b", "user", "Drill production uses sliding 808s and bebop samples")
    hits = await db.search_messages("bebop")
    assert {h.message.conversation_id for h in hits} == {"a", "b"}
    assert all("**" in h.snippet for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    only_b = await db.search_messages("808s drill", conversation_id="b")
    assert [h.message.content for h in only_b] == [
        "Drill production uses sliding 808s and bebop samples"
    ]
    assert {h.message.conversation_id for h in await db.search_messages("bebop", owner="u1")} == {
        "a"
    }
    assert await db.search_messages("bebop", conversation_id="missing") == []
    # plain words: punctuation and operators are literal, never a syntax error
    assert await db.search_messages('bebop" OR (NEAR') == []
    assert len(await db.search_messages("bebop", limit=1)) == 1


async def test_search_keeps_in_sync_with_deletions(db: AsyncConversationDB) -> None:
    await _populate(db, "a")
    await _populate(db, "b")
    await db.delete_conversation("a")
    assert {h.message.conversation_id for h in await db.search_messages("bebop")} == {"b"}


async def test_bad_raw_search_is_a_clear_error(db: AsyncConversationDB, store_url: str) -> None:
    await _populate(db, "a")
    if not store_url.startswith("postgres"):  # PostgreSQL's web syntax accepts any text
        with pytest.raises(InvalidInputError) as info:
            await db.search_messages('"unclosed AND (', raw=True)
        assert "bad full-text query" in str(info.value)
    assert len(await db.search_messages("bebop", raw=True)) >= 1
    with pytest.raises(InvalidInputError):
        await db.search_messages("   ")


async def test_purge_removes_idle_conversations(db: AsyncConversationDB) -> None:
    for cid in ("old-1", "old-2", "fresh"):
        await _populate(db, cid, owner="u1" if cid != "old-2" else "u2")
    cutoff = datetime.now(timezone.utc)
    await db.add_message("fresh", "user", "still here")  # activity after the cutoff
    would = await db.purge_conversations(idle_since=cutoff, dry_run=True)
    assert sorted(c.conversation_id for c in would) == ["old-1", "old-2"]
    assert await db.get_conversation("old-1") is not None  # dry run changed nothing
    only_u2 = await db.purge_conversations(idle_since=cutoff, owner="u2")
    assert [c.conversation_id for c in only_u2] == ["old-2"]
    assert only_u2[0].message_count == 2 and only_u2[0].web_source_count == 2
    assert await db.purge_conversations(idle_since=cutoff, phase="error") == []
    removed = await db.purge_conversations(idle_since=cutoff)
    assert [c.conversation_id for c in removed] == ["old-1"]
    assert [c.conversation_id for c in await db.list_conversations()] == ["fresh"]
    assert {h.message.conversation_id for h in await db.search_messages("bebop")} == {"fresh"}
    with pytest.raises(InvalidInputError):
        await db.purge_conversations(idle_since="yesterday")  # type: ignore[arg-type]


async def test_erase_owner_removes_all_of_one_owner(db: AsyncConversationDB) -> None:
    await _populate(db, "a1", owner="alice")
    await _populate(db, "a2", owner="alice")
    await _populate(db, "b1", owner="bob")
    counts = await db.erase_owner("alice")
    assert counts == {
        "conversations": 2, "messages": 4, "tool_calls": 4, "web_sources": 4, "mashups": 2,
    }  # fmt: skip
    assert [c.conversation_id for c in await db.list_conversations()] == ["b1"]
    assert await db.erase_owner("alice") == dict.fromkeys(counts, 0)
    stats = await db.stats()
    assert (stats.conversations, stats.messages, stats.tool_calls) == (1, 2, 2)


async def test_stats(db: AsyncConversationDB) -> None:
    await _populate(db, "a")
    await _populate(db, "b")
    await db.add_message("b", "user", "one more")
    stats = await db.stats(busiest=1)
    assert (stats.conversations, stats.messages, stats.tool_calls) == (2, 5, 4)
    assert (stats.web_sources, stats.mashups, stats.phase_transitions) == (4, 2, 2)
    assert stats.size_bytes > 0 and stats.schema_version == db.backend.latest_version
    assert [(c.conversation_id, c.message_count) for c in stats.busiest] == [("b", 3)]


async def test_export_delete_import_export_is_identical(db: AsyncConversationDB) -> None:
    await _populate(db, "a", owner="u1")
    await db.update_conversation_phase("a", "generation_complete", strict=False)
    first = await db.export_conversation("a")
    assert first is not None
    assert first["format"] == "lit-memory.conversation" and len(first["messages"]) == 2
    assert first["mashups"][0]["tool_call_ref"] == 1
    assert first["tool_calls"][0]["sources"][0]["url"] == "https://jazz.example/bebop"
    json.dumps(first)  # JSON-able as it is
    assert await db.delete_conversation("a")
    assert await db.import_conversation(first) == "a"
    second = await db.export_conversation("a")
    assert second == first
    restored = await db.get_conversation("a")
    assert restored is not None and restored.updated_at.isoformat() == first["conversation"][
        "updated_at"
    ].replace("Z", "+00:00")
    # the restored conversation works like any other
    assert await db.add_message("a", "user", "after import") is True
    assert [m.seq for m in await db.get_messages("a")] == [1, 2, 3]
    assert await db.add_message("a", "user", "dup uid", uid="a-1") is False


async def test_import_refuses_an_existing_id_unless_replacing(db: AsyncConversationDB) -> None:
    await _populate(db, "a")
    document = await db.export_conversation("a")
    assert document is not None
    with pytest.raises(ConversationExistsError) as info:
        await db.import_conversation(document)
    assert "replace=True" in str(info.value)
    await db.add_message("a", "user", "extra")
    assert await db.count_messages("a") == 3
    assert await db.import_conversation(json.dumps(document), replace=True) == "a"
    assert await db.count_messages("a") == 2
    assert await db.export_conversation("a") == document


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(format="something-else"),
        lambda d: d["messages"][0].update(seq=5),
        lambda d: d["messages"][0].update(role="wizard"),
        lambda d: d["messages"][0].update(content="nul \x00"),
        lambda d: d["messages"][0].update(unexpected=True),
        lambda d: d["mashups"][0].update(tool_call_ref=9),
        lambda d: d["tool_calls"][0]["sources"][0].update(relevance_score=float("inf")),
        lambda d: d["conversation"].update(created_at="not a date"),
        lambda d: d["conversation"].update(created_at="2026-01-01T00:00:00"),
        lambda d: d.pop("conversation"),
    ],
)
async def test_import_refuses_documents_off_the_schema(db: AsyncConversationDB, mutate) -> None:
    await _populate(db, "a")
    document = await db.export_conversation("a")
    assert document is not None
    await db.delete_conversation("a")
    mutate(document)
    with pytest.raises(InvalidInputError):
        await db.import_conversation(document)
    assert await db.list_conversations() == []


async def test_export_of_a_missing_conversation_is_none(db: AsyncConversationDB) -> None:
    assert await db.export_conversation("missing") is None


async def test_imported_timestamps_are_kept(db: AsyncConversationDB) -> None:
    await _populate(db, "a")
    document = await db.export_conversation("a")
    assert document is not None
    then = datetime(2020, 5, 17, 12, 30, 15, 123456, tzinfo=timezone.utc)
    document["conversation"]["conversation_id"] = "old"
    document["conversation"]["created_at"] = then.isoformat()
    document["conversation"]["updated_at"] = (then + timedelta(hours=1)).isoformat()
    document["messages"][0]["timestamp"] = then.isoformat()
    await db.import_conversation(document)
    old = await db.get_conversation("old")
    assert old is not None and old.created_at == then
    assert old.updated_at == then + timedelta(hours=1)
    assert (await db.get_messages("old"))[0].timestamp == then
    # the oldest activity sorts last
    assert [c.conversation_id for c in await db.list_conversations()] == ["a", "old"]
