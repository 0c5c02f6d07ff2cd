"""A store scoped to one owner cannot read, list, search, export, change or delete another
owner's data, and another owner's conversation looks exactly like a missing one."""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta, timezone

import pytest

from lit_memory import (
    AsyncConversationDB,
    ConversationDB,
    ConversationExistsError,
    ConversationNotFound,
    InvalidInputError,
)


async def _seed(db: AsyncConversationDB, cid: str) -> int:
    await db.add_messages(cid, [{"role": "user", "content": f"secret plans of {cid}"}], create=True)
    tid = await db.add_tool_call(cid, "web_search", "q", run_id=f"run-{cid}")
    assert tid is not None
    await db.add_web_source(tid, f"https://example.com/{cid}")
    await db.create_mashup(cid, f"mashup of {cid}", tool_call_id=tid)
    await db.update_conversation_phase(cid, "genre_exploration")
    return tid


async def _snapshot(db: AsyncConversationDB, cid: str) -> object:
    return await db.export_conversation(cid)


# Each probe is what one owner's view does to the other owner's conversation "b" (or its tool
# call), and what it must get back: exactly what a missing conversation gives.
PROBES = {
    "get_conversation": (lambda v, cid, tid: v.get_conversation(cid), None),
    "get_conversation_summary": (lambda v, cid, tid: v.get_conversation_summary(cid), None),
    "update_conversation_phase": (
        lambda v, cid, tid: v.update_conversation_phase(cid, "error"), False),
    "get_phase_history": (lambda v, cid, tid: v.get_phase_history(cid), []),
    "delete_conversation": (lambda v, cid, tid: v.delete_conversation(cid), False),
    "clear_messages": (lambda v, cid, tid: v.clear_messages(cid), False),
    "add_message": (lambda v, cid, tid: v.add_message(cid, "user", "injected"), False),
    "get_messages": (lambda v, cid, tid: v.get_messages(cid), []),
    "get_last_messages": (lambda v, cid, tid: v.get_last_messages(cid, 5), []),
    "count_messages": (lambda v, cid, tid: v.count_messages(cid), 0),
    "add_tool_call": (lambda v, cid, tid: v.add_tool_call(cid, "other", "x"), None),
    "update_tool_call": (lambda v, cid, tid: v.update_tool_call(tid, status="error"), False),
    "get_tool_call": (lambda v, cid, tid: v.get_tool_call(tid), None),
    "get_tool_call_by_run": (lambda v, cid, tid: v.get_tool_call_by_run(cid, f"run-{cid}"), None),
    "get_tool_calls": (lambda v, cid, tid: v.get_tool_calls(cid), []),
    "add_web_source": (lambda v, cid, tid: v.add_web_source(tid, "https://evil.example"), False),
    "add_web_sources": (
        lambda v, cid, tid: v.add_web_sources(tid, [{"url": "https://evil.example"}]), 0),
    "get_web_sources": (lambda v, cid, tid: v.get_web_sources(cid), []),
    "create_mashup": (lambda v, cid, tid: v.create_mashup(cid, "x"), None),
    "get_mashups": (lambda v, cid, tid: v.get_mashups(cid), []),
    "search_messages": (lambda v, cid, tid: v.search_messages("secret", conversation_id=cid), []),
    "export_conversation": (lambda v, cid, tid: v.export_conversation(cid), None),
    "list_conversations": (lambda v, cid, tid: v.list_conversations(owner="bob"), []),
    "purge_conversations": (
        lambda v, cid, tid: v.purge_conversations(
            idle_since=datetime.now(timezone.utc) + timedelta(days=1), owner="bob"
        ),
        [],
    ),
    "erase_owner": (
        lambda v, cid, tid: v.erase_owner("bob"),
        {"conversations": 0, "messages": 0, "tool_calls": 0, "web_sources": 0, "mashups": 0},
    ),
}  # fmt: skip

# Methods that are not about one conversation, or are covered by a dedicated test below.
NOT_PROBED = {
    "connect", "init_db", "migrate", "schema_version", "add_messages", "create_conversation",
    "import_conversation", "stats",
}  # fmt: skip


def test_every_public_method_is_probed() -> None:
    public = {
        name
        for name, value in vars(AsyncConversationDB).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(value) and name != "close"
    }
    assert public == set(PROBES) | NOT_PROBED


@pytest.mark.parametrize("probe", sorted(PROBES))
async def test_another_owners_conversation_looks_missing(db: AsyncConversationDB, probe) -> None:
    alice, bob = db.for_owner("alice"), db.for_owner("bob")
    await _seed(alice, "a")
    bob_tool = await _seed(bob, "b")
    before = await _snapshot(db, "b")
    call, expected = PROBES[probe]
    # what alice gets for bob's conversation is what she gets for a missing one
    assert await call(alice, "b", bob_tool) == expected
    assert await call(alice, "missing", 10**9) == expected
    assert await _snapshot(db, "b") == before  # nothing of bob's changed
    assert await db.get_conversation("a") is not None  # and alice's own data is intact


async def test_sources_given_with_a_tool_call_stay_out_of_anothers_conversation(
    db: AsyncConversationDB,
) -> None:
    alice, bob = db.for_owner("alice"), db.for_owner("bob")
    bob_tool = await _seed(bob, "b")
    before = await _snapshot(db, "b")
    evil = [{"url": "https://evil.example"}]
    assert await alice.update_tool_call(bob_tool, "x", "error", sources=evil) is False
    assert await alice.add_tool_call("b", "other", "x", create=True, sources=evil) is None
    assert await _snapshot(db, "b") == before
    mine = await alice.add_tool_call("a", "web_search", "q", create=True, sources=evil)
    assert mine is not None
    assert [s.url for s in await alice.get_web_sources("a")] == ["https://evil.example"]


async def test_owners_see_and_change_their_own(db: AsyncConversationDB) -> None:
    alice = db.for_owner("alice")
    assert alice.owner == "alice" and db.owner is None
    assert await alice.create_conversation("a1") is True
    conv = await db.get_conversation("a1")
    assert conv is not None and conv.owner == "alice"  # created for the view's owner
    tid = await _seed(alice, "a2")
    assert await alice.update_tool_call(tid, status="completed")
    assert [c.conversation_id for c in await alice.list_conversations()] == ["a2", "a1"]
    assert len(await alice.search_messages("secret")) == 1
    with pytest.raises(InvalidInputError):
        await alice.create_conversation("a3", owner="bob")
    with pytest.raises(InvalidInputError):
        await alice.stats()


async def test_views_cannot_write_into_or_claim_anothers_conversation(
    db: AsyncConversationDB,
) -> None:
    alice, bob = db.for_owner("alice"), db.for_owner("bob")
    await _seed(bob, "b")
    with pytest.raises(ConversationNotFound):
        await alice.add_messages("b", [{"role": "user", "content": "x"}])
    with pytest.raises(ConversationNotFound):
        await alice.add_messages("b", [{"role": "user", "content": "x"}], create=True)
    assert await alice.create_conversation("b") is False  # ids are global
    document = await bob.export_conversation("b")
    assert document is not None
    with pytest.raises(InvalidInputError):  # the document names bob as its owner
        await alice.import_conversation(document, replace=True)
    document["conversation"]["owner"] = None
    with pytest.raises(ConversationExistsError):  # and "b" is bob's, replace or not
        await alice.import_conversation(document, replace=True)
    assert await db.count_messages("b") == 1
    # a document without an owner imports as the view's owner
    document["conversation"]["conversation_id"] = "copied"
    assert await alice.import_conversation(document) == "copied"
    copied = await db.get_conversation("copied")
    assert copied is not None and copied.owner == "alice"


async def test_mashups_link_only_to_their_own_tool_calls(db: AsyncConversationDB) -> None:
    alice, bob = db.for_owner("alice"), db.for_owner("bob")
    await _seed(alice, "a")
    bob_tool = await _seed(bob, "b")
    assert await alice.create_mashup("a", "stolen link", tool_call_id=bob_tool) is None


def test_the_sync_facade_has_owner_views(tmp_path) -> None:
    with ConversationDB(tmp_path / "s.db") as db:
        alice, bob = db.for_owner("alice"), db.for_owner("bob")
        assert alice.create_conversation("a") is True
        assert alice.add_message("a", "user", "hi") is True
        assert bob.get_messages("a") == [] and bob.add_message("a", "user", "x") is False
        assert [m.content for m in db.get_messages("a")] == ["hi"]
