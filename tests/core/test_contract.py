"""The store's contract, run on every backend: return values, ordering, idempotency, errors."""

from __future__ import annotations

import pytest

from lit_memory import (
    AsyncConversationDB,
    ConversationNotFound,
    ConversationPhase,
    InvalidInputError,
    LitMemoryError,
    MessageRole,
    PhaseTransitionError,
    ToolCallStatus,
    ToolCallType,
)


async def test_create_conversation_is_true_once_then_false(db: AsyncConversationDB) -> None:
    assert await db.create_conversation("c1", {"topic": "jazz", "n": [1, 2]}, owner="u1") is True
    assert await db.create_conversation("c1", {"other": True}) is False
    conv = await db.get_conversation("c1")
    assert conv is not None
    assert (conv.conversation_id, conv.phase, conv.owner) == ("c1", "initial", "u1")
    assert conv.metadata == {"topic": "jazz", "n": [1, 2]}  # the duplicate did not overwrite
    assert conv["phase"] is ConversationPhase.INITIAL and "metadata" in conv
    assert conv.created_at.tzinfo is not None and conv.updated_at >= conv.created_at


async def test_missing_things_are_none_or_false(db: AsyncConversationDB) -> None:
    assert await db.get_conversation("nope") is None
    assert await db.get_conversation_summary("nope") is None
    assert await db.update_conversation_phase("nope", ConversationPhase.ERROR) is False
    assert await db.add_message("nope", MessageRole.USER, "hi") is False
    assert await db.add_tool_call("nope", ToolCallType.WEB_SEARCH, "q") is None
    assert await db.update_tool_call(999, output_data="x", status="completed") is False
    assert await db.add_web_source(999, "https://example.com") is False
    assert await db.create_mashup("nope", "title") is None
    assert await db.get_tool_call(999) is None
    assert await db.delete_conversation("nope") is False
    assert await db.get_messages("nope") == []
    assert await db.count_messages("nope") == 0
    with pytest.raises(ConversationNotFound) as info:
        await db.add_messages("nope", [{"role": "user", "content": "hi"}])
    assert isinstance(info.value, LookupError) and isinstance(info.value, LitMemoryError)


async def test_messages_keep_order_and_sequence(db: AsyncConversationDB) -> None:
    await db.create_conversation("c")
    assert await db.add_message("c", MessageRole.USER, "one", {"k": 1}) is True
    assert (
        await db.add_messages(
            "c",
            [
                {"role": "assistant", "content": "two", "uid": "a2"},
                {
                    "role": MessageRole.TOOL,
                    "content": "three",
                    "payload": {"type": "tool", "x": [1]},
                },
                {"role": "system", "content": "four"},
            ],
        )
        == 3
    )
    messages = await db.get_messages("c")
    assert [(m.seq, m.role, m.content) for m in messages] == [
        (1, "user", "one"),
        (2, "assistant", "two"),
        (3, "tool", "three"),
        (4, "system", "four"),
    ]
    assert messages[0].metadata == {"k": 1} and messages[0]["metadata"] == {"k": 1}
    assert messages[1].uid == "a2" and messages[2].payload == {"type": "tool", "x": [1]}
    assert [m.content for m in await db.get_messages("c", limit=2, offset=1)] == ["two", "three"]
    assert [m.content for m in await db.get_messages("c", after_seq=2)] == ["three", "four"]
    assert [m.content for m in await db.get_last_messages("c", 2)] == ["three", "four"]
    assert [m.content for m in await db.get_last_messages("c", 2, before_seq=3)] == ["one", "two"]
    assert await db.get_last_messages("c", 0) == []
    assert await db.count_messages("c") == 4
    assert all(a.timestamp <= b.timestamp for a, b in zip(messages, messages[1:], strict=False))


async def test_same_uid_is_stored_once(db: AsyncConversationDB) -> None:
    await db.create_conversation("c")
    turn = [
        {"role": "user", "content": "question", "uid": "m1"},
        {"role": "assistant", "content": "answer", "uid": "m2"},
    ]
    assert await db.add_messages("c", turn) == 2
    assert await db.add_messages("c", turn) == 0  # a retried turn
    assert await db.add_message("c", "user", "question", uid="m1") is False
    assert (
        await db.add_messages("c", [*turn, {"role": "user", "content": "next", "uid": "m3"}]) == 1
    )
    assert [(m.seq, m.uid) for m in await db.get_messages("c")] == [(1, "m1"), (2, "m2"), (3, "m3")]
    # uids are per conversation
    await db.create_conversation("d")
    assert await db.add_messages("d", turn) == 2


async def test_add_messages_can_create_the_conversation(db: AsyncConversationDB) -> None:
    stored = await db.add_messages(
        "new", [{"role": "user", "content": "hi"}], create=True, owner="u9"
    )
    assert stored == 1
    conv = await db.get_conversation("new")
    assert conv is not None and conv.owner == "u9" and conv.phase == "initial"
    assert await db.add_messages("new", [{"role": "user", "content": "again"}], create=True) == 1
    assert await db.count_messages("new") == 2


async def test_a_bad_message_in_a_turn_writes_nothing(db: AsyncConversationDB) -> None:
    await db.create_conversation("c")
    with pytest.raises(InvalidInputError):
        await db.add_messages(
            "c",
            [{"role": "user", "content": "fine"}, {"role": "wizard", "content": "bad role"}],
        )
    with pytest.raises(InvalidInputError):
        await db.add_messages("c", [{"role": "user", "content": "x", "metadata": {"t": {1, 2}}}])
    with pytest.raises(InvalidInputError):
        await db.add_messages("c", [{"role": "user", "content": "nul\x00byte"}])
    with pytest.raises(InvalidInputError):
        await db.add_messages("c", [{"role": "user", "content": "x", "extra": 1}])
    assert await db.count_messages("c") == 0


async def test_phase_changes_are_recorded(db: AsyncConversationDB) -> None:
    await db.create_conversation("c")
    assert await db.update_conversation_phase(
        "c", ConversationPhase.GENRE_EXPLORATION, reason="named a genre", run_id="r1"
    )
    assert await db.update_conversation_phase("c", "genre_exploration") is True  # no change
    # not strict: the seed allowed any move, and so does the default store
    assert await db.update_conversation_phase("c", ConversationPhase.GENERATION_COMPLETE)
    history = await db.get_phase_history("c")
    assert [(t.from_phase, t.to_phase, t.reason, t.run_id, t.accepted) for t in history] == [
        ("initial", "genre_exploration", "named a genre", "r1", True),
        ("genre_exploration", "generation_complete", None, None, True),
    ]
    conv = await db.get_conversation("c")
    assert conv is not None and conv.phase is ConversationPhase.GENERATION_COMPLETE


async def test_strict_phase_change_refuses_and_records_the_refusal(
    db: AsyncConversationDB,
) -> None:
    await db.create_conversation("c")
    with pytest.raises(PhaseTransitionError) as info:
        await db.update_conversation_phase(
            "c", ConversationPhase.GENERATION_COMPLETE, strict=True, reason="too early"
        )
    assert "initial -> generation_complete" in str(info.value)
    assert isinstance(info.value, ValueError)
    conv = await db.get_conversation("c")
    assert conv is not None and conv.phase == "initial"
    assert await db.update_conversation_phase("c", "genre_exploration", strict=True)
    assert await db.update_conversation_phase("c", "error", strict=True)  # any phase -> error
    assert await db.update_conversation_phase("c", "initial", strict=True)  # error -> initial
    history = await db.get_phase_history("c")
    assert [(t.to_phase.value, t.accepted) for t in history] == [
        ("generation_complete", False),
        ("genre_exploration", True),
        ("error", True),
        ("initial", True),
    ]


async def test_only_from_moves_only_a_conversation_in_one_of_those_phases(
    db: AsyncConversationDB,
) -> None:
    await db.create_conversation("c")
    explored = {"only_from": ["genre_exploration"], "reason": "from exploration only"}
    assert await db.update_conversation_phase("c", "cultural_research", **explored) is True
    conv = await db.get_conversation("c")
    assert conv is not None and conv.phase == "initial"  # not moved
    assert await db.get_phase_history("c") == []  # and nothing recorded
    assert await db.update_conversation_phase("c", "genre_exploration", only_from="initial")
    assert await db.update_conversation_phase("c", "cultural_research", **explored)
    history = await db.get_phase_history("c")
    assert [(t.from_phase.value, t.to_phase.value, t.reason) for t in history] == [
        ("initial", "genre_exploration", None),
        ("genre_exploration", "cultural_research", "from exploration only"),
    ]
    # A strict move from an allowed phase the flow still forbids is refused and recorded.
    with pytest.raises(PhaseTransitionError):
        await db.update_conversation_phase(
            "c", "initial", strict=True, only_from={ConversationPhase.CULTURAL_RESEARCH}
        )
    assert (await db.get_phase_history("c"))[-1].accepted is False
    assert await db.update_conversation_phase("missing", "error", only_from=["initial"]) is False
    with pytest.raises(InvalidInputError):
        await db.update_conversation_phase("c", "error", only_from=["no-such-phase"])


async def test_tool_calls_carry_timing_status_and_links(db: AsyncConversationDB) -> None:
    await db.create_conversation("c")
    tid = await db.add_tool_call(
        "c",
        "web_search",
        {"query": "jazz fusion"},
        status="running",
        tool_name="tavily_search",
        run_id="run-1",
        parent_run_id="run-0",
        call_id="call_abc",
    )
    assert isinstance(tid, int)
    assert await db.add_tool_call("c", "web_search", "again", run_id="run-1") is None
    assert await db.update_tool_call(tid, output_data={"results": [1]}, status="completed")
    call = await db.get_tool_call(tid)
    assert call is not None
    assert (call.tool_type, call.tool_name, call.status) == (
        "web_search",
        "tavily_search",
        "completed",
    )
    assert (call.run_id, call.parent_run_id, call.call_id) == ("run-1", "run-0", "call_abc")
    assert call.input_data == '{"query":"jazz fusion"}' and call.output_data == '{"results":[1]}'
    assert call.started_at is not None and call.completed_at is not None
    assert call.completed_at >= call.started_at and call.duration_ms is not None
    assert call.duration_ms >= 0
    by_run = await db.get_tool_call_by_run("c", "run-1")
    assert by_run is not None and by_run.tool_call_id == tid
    # completion is stamped once
    first_completed = call.completed_at
    assert await db.update_tool_call(tid, error_message="late note")
    again = await db.get_tool_call(tid)
    assert again is not None and again.completed_at == first_completed
    assert again.output_data == '{"results":[1]}' and again.error_message == "late note"


async def test_failed_and_cancelled_tool_calls(db: AsyncConversationDB) -> None:
    await db.create_conversation("c")
    failed = await db.add_tool_call(
        "c", ToolCallType.MUSIC_ANALYSIS, "x", status="failed", error_message="boom"
    )
    assert failed is not None
    call = await db.get_tool_call(failed)
    assert call is not None and call.status is ToolCallStatus.ERROR
    assert call.completed_at is not None and call.error_message == "boom"
    other = await db.add_tool_call("c", ToolCallType.OTHER, "y", status="pending")
    assert other is not None
    assert await db.update_tool_call(
        other, status=ToolCallStatus.CANCELLED, error_type="CancelledError"
    )
    cancelled = await db.get_tool_call(other)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert cancelled.error_type == "CancelledError" and cancelled.completed_at is not None
    with pytest.raises(InvalidInputError):
        await db.add_tool_call("c", "not_a_type", "q")
    with pytest.raises(InvalidInputError):
        await db.update_tool_call(other, status="exploded")


async def test_web_sources_by_tool_call_and_conversation(db: AsyncConversationDB) -> None:
    await db.create_conversation("c")
    first = await db.add_tool_call("c", "web_search", "a")
    second = await db.add_tool_call("c", "web_search", "b")
    assert first is not None and second is not None
    assert (
        await db.add_web_sources(
            first,
            [
                {"url": "https://b.example/2", "title": "B", "rank": 2, "relevance_score": 0.5},
                {"url": "https://a.example/1", "title": "A", "rank": 1, "relevance_score": 0.9},
            ],
        )
        == 2
    )
    assert await db.add_web_source(first, "https://a.example/1", "dup") is False
    assert await db.add_web_source(second, "https://a.example/1", "A again", "s", 1.0) is True
    calls = await db.get_tool_calls("c")
    assert [[s.url for s in call.sources] for call in calls] == [
        ["https://a.example/1", "https://b.example/2"],
        ["https://a.example/1"],
    ]
    sources = await db.get_web_sources("c")
    assert [(s.tool_call_id, s.rank, s.title) for s in sources] == [
        (first, 1, "A"),
        (first, 2, "B"),
        (second, None, "A again"),
    ]
    assert all(s.conversation_id == "c" for s in sources)
    assert [c.sources for c in await db.get_tool_calls("c", with_sources=False)] == [[], []]
    with pytest.raises(InvalidInputError):
        await db.add_web_source(first, "https://x.example", relevance_score=float("nan"))


async def test_mashups(db: AsyncConversationDB) -> None:
    await db.create_conversation("c")
    tid = await db.add_tool_call("c", "other", "{}", tool_name="generate_mashup")
    mid = await db.create_mashup(
        "c", "Bebop x Drill", "a study", "/audio/../etc/passwd", {"bpm": 140}, tool_call_id=tid
    )
    assert isinstance(mid, int)
    assert await db.create_mashup("c", "orphan link", tool_call_id=987654) is None
    mashups = await db.get_mashups("c")
    assert [
        (m.mashup_id, m.title, m.audio_file_path, m.metadata, m.tool_call_id) for m in mashups
    ] == [(mid, "Bebop x Drill", "/audio/../etc/passwd", {"bpm": 140}, tid)]


async def test_summary_counts(db: AsyncConversationDB) -> None:
    await db.create_conversation("c", {"a": 1})
    await db.add_messages("c", [{"role": "user", "content": str(i)} for i in range(5)])
    tid = await db.add_tool_call("c", "web_search", "q")
    assert tid is not None
    await db.add_web_sources(tid, [{"url": f"https://e.example/{i}"} for i in range(3)])
    await db.create_mashup("c", "m")
    summary = await db.get_conversation_summary("c")
    assert summary is not None
    assert (summary["message_count"], summary.tool_call_count) == (5, 1)
    assert (summary.mashup_count, summary.web_source_count) == (1, 3)
    assert summary.metadata == {"a": 1} and summary.phase == "initial"


async def test_list_conversations_by_last_activity(db: AsyncConversationDB) -> None:
    for cid, owner in [("a", "u1"), ("b", "u2"), ("c", "u1"), ("d", None)]:
        await db.create_conversation(cid, owner=owner)
    await db.add_message("a", "user", "a is active again")  # a becomes the most recent
    await db.update_conversation_phase("b", "genre_exploration")
    listed = await db.list_conversations()
    assert [c.conversation_id for c in listed] == ["b", "a", "d", "c"]
    assert listed[1].message_count == 1
    assert [c.conversation_id for c in await db.list_conversations(owner="u1")] == ["a", "c"]
    assert [c.conversation_id for c in await db.list_conversations(phase="genre_exploration")] == [
        "b"
    ]
    page1 = await db.list_conversations(limit=2)
    last = page1[-1]
    page2 = await db.list_conversations(limit=2, before=(last.updated_at, last.conversation_id))
    assert [c.conversation_id for c in page1 + page2] == ["b", "a", "d", "c"]
    with pytest.raises(InvalidInputError):
        await db.list_conversations(phase="nowhere")


async def test_delete_removes_everything_under_the_conversation(db: AsyncConversationDB) -> None:
    for cid in ("keep", "gone"):
        await db.create_conversation(cid)
        await db.add_messages(cid, [{"role": "user", "content": "hi", "uid": "u"}])
        tid = await db.add_tool_call(cid, "web_search", "q", run_id="r")
        assert tid is not None
        await db.add_web_source(tid, "https://e.example")
        await db.create_mashup(cid, "m", tool_call_id=tid)
        await db.update_conversation_phase(cid, "error")
    gone_call = await db.get_tool_call_by_run("gone", "r")
    assert gone_call is not None
    assert await db.delete_conversation("gone") is True
    assert await db.get_conversation("gone") is None
    assert await db.get_messages("gone") == [] and await db.get_tool_calls("gone") == []
    assert await db.get_web_sources("gone") == [] and await db.get_mashups("gone") == []
    assert await db.get_phase_history("gone") == []
    assert await db.get_tool_call(gone_call.tool_call_id) is None
    summary = await db.get_conversation_summary("keep")
    assert summary is not None
    assert (summary.message_count, summary.tool_call_count, summary.web_source_count) == (1, 1, 1)
    # the id can be reused from scratch
    assert await db.create_conversation("gone") is True
    assert await db.add_messages("gone", [{"role": "user", "content": "hi", "uid": "u"}]) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda db: db.create_conversation(""),
        lambda db: db.create_conversation(123),
        lambda db: db.create_conversation("x" * 600),
        lambda db: db.create_conversation("c", ["not", "a", "dict"]),
        lambda db: db.create_conversation("c", {"nan": float("nan")}),
        lambda db: db.get_messages("c", limit=-1),
        lambda db: db.get_messages("c", offset=-5),
        lambda db: db.add_message("c", "user", b"bytes are not text"),
        lambda db: db.add_message("c", "user", "lone \ud800 surrogate"),
        lambda db: db.update_conversation_phase("c", "not-a-phase"),
        lambda db: db.update_tool_call(0),
        lambda db: db.update_tool_call(True),
        lambda db: db.add_web_source(1, ""),
        lambda db: db.add_tool_call("c", "web_search", "q", duration_ms=-1),
    ],
)
async def test_bad_input_is_refused_before_writing(db: AsyncConversationDB, call) -> None:
    await db.create_conversation("c")
    with pytest.raises(InvalidInputError) as info:
        await call(db)
    assert isinstance(info.value, ValueError) and isinstance(info.value, LitMemoryError)
    summary = await db.get_conversation_summary("c")
    assert summary is not None and summary.message_count == 0 and summary.tool_call_count == 0
    assert [c.conversation_id for c in await db.list_conversations()] == ["c"]


async def test_methods_open_the_store_on_first_use(store_url: str) -> None:
    db = AsyncConversationDB(store_url)
    try:
        assert await db.create_conversation("lazy") is True  # no explicit init_db
        assert await db.schema_version() == db.backend.latest_version
    finally:
        await db.close()
    await db.close()  # idempotent


async def test_clear_messages_keeps_the_rest_of_the_conversation(db: AsyncConversationDB) -> None:
    await db.create_conversation("c", {"k": 1})
    await db.add_messages("c", [{"role": "user", "content": "bebop question", "uid": "m1"}])
    tid = await db.add_tool_call("c", "web_search", "q")
    assert tid is not None
    await db.add_web_source(tid, "https://e.example")
    assert await db.clear_messages("c") is True
    assert await db.get_messages("c") == [] and await db.search_messages("bebop") == []
    summary = await db.get_conversation_summary("c")
    assert summary is not None and summary.metadata == {"k": 1}
    assert (summary.message_count, summary.tool_call_count, summary.web_source_count) == (0, 1, 1)
    assert await db.add_messages("c", [{"role": "user", "content": "again", "uid": "m1"}]) == 1
    assert [m.seq for m in await db.get_messages("c")] == [1]
    assert await db.clear_messages("missing") is False


async def test_creating_on_first_write(db: AsyncConversationDB) -> None:
    assert await db.add_messages("empty", [], create=True, owner="u") == 0
    created = await db.get_conversation("empty")
    assert created is not None and created.owner == "u"
    tid = await db.add_tool_call("by-tool", "web_search", "q", create=True, owner="u2")
    assert tid is not None
    by_tool = await db.get_conversation("by-tool")
    assert by_tool is not None and by_tool.owner == "u2"
    assert await db.add_tool_call("nope", "web_search", "q") is None


async def test_sources_can_skip_urls_the_conversation_already_cited(
    db: AsyncConversationDB,
) -> None:
    await db.create_conversation("c")
    first = await db.add_tool_call("c", "web_search", "a")
    second = await db.add_tool_call("c", "web_search", "b")
    assert first is not None and second is not None
    await db.add_web_sources(first, [{"url": "https://a.example", "rank": 1}])
    added = await db.add_web_sources(
        second,
        [{"url": "https://a.example", "rank": 1}, {"url": "https://b.example", "rank": 2}],
        skip_known_urls=True,
    )
    assert added == 1
    assert [(s.tool_call_id, s.url) for s in await db.get_web_sources("c")] == [
        (first, "https://a.example"),
        (second, "https://b.example"),
    ]


async def test_a_tool_call_is_written_with_its_sources_in_one_transaction(
    db: AsyncConversationDB,
) -> None:
    found = [{"url": "https://a.example", "title": "A", "rank": 1}]
    whole = await db.add_tool_call(
        "new", "web_search", "q", "out", "completed", create=True, sources=found
    )
    assert whole is not None
    call = await db.get_tool_call(whole)
    assert call is not None and call.status == "completed"
    assert [(s.url, s.title, s.rank) for s in call.sources] == [("https://a.example", "A", 1)]

    running = await db.add_tool_call("new", "web_search", "q2", status="running")
    assert running is not None
    again = [{"url": "https://a.example", "rank": 1}, {"url": "https://b.example", "rank": 2}]
    assert await db.update_tool_call(
        running, "out2", "completed", sources=again, skip_known_urls=True
    )
    call = await db.get_tool_call(running)
    assert call is not None and call.status == "completed" and call.output_data == "out2"
    assert [s.url for s in call.sources] == ["https://b.example"]  # a.example was cited before

    # Bad sources are refused before anything is written: the call keeps its state.
    with pytest.raises(InvalidInputError):
        await db.update_tool_call(whole, "changed", "error", sources=[{"title": "no url"}])
    call = await db.get_tool_call(whole)
    assert call is not None and call.status == "completed" and call.output_data == "out"
    with pytest.raises(InvalidInputError):
        await db.add_tool_call("new", "web_search", "q3", sources=[{"url": ""}])
    assert len(await db.get_tool_calls("new")) == 2
    assert await db.update_tool_call(10**9, "x", sources=found) is False
    assert len(await db.get_web_sources("new")) == 2


async def test_a_mashup_links_only_to_its_own_conversations_tool_call(
    db: AsyncConversationDB,
) -> None:
    await db.create_conversation("a")
    await db.create_conversation("b")
    other = await db.add_tool_call("b", "other", "x")
    assert other is not None
    assert await db.create_mashup("a", "crossed", tool_call_id=other) is None
    assert await db.get_mashups("a") == []


async def test_one_call_can_be_checked_against_another_flow(db: AsyncConversationDB) -> None:
    from lit_memory import PhaseFlow

    await db.create_conversation("c")
    shortcut = PhaseFlow({"initial": ["generation_complete"]})
    assert await db.update_conversation_phase(
        "c", "generation_complete", strict=True, flow=shortcut
    )
    with pytest.raises(PhaseTransitionError):
        await db.update_conversation_phase("c", "initial", strict=True, flow=shortcut)
