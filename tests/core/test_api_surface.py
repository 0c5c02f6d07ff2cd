"""The public surface: exports, enums, the phase flow, URL resolution, models."""

from __future__ import annotations

import pytest

import lit_memory
from lit_memory import (
    DEFAULT_FLOW,
    AsyncConversationDB,
    ConfigurationError,
    ConversationPhase,
    ConversationSummary,
    InvalidInputError,
    MessageRole,
    PhaseFlow,
    PhaseTransitionError,
    ToolCallStatus,
    ToolCallType,
)
from lit_memory.backends import resolve_url


def test_all_is_pinned() -> None:
    assert sorted(lit_memory.__all__) == sorted(
        [
            "AsyncConversationDB", "ConfigurationError", "Conversation", "ConversationDB",
            "ConversationExistsError", "ConversationNotFound", "ConversationPhase",
            "ConversationSummary", "DEFAULT_FLOW",
            "InvalidInputError", "LitMemoryError", "Mashup", "Message", "MessageRole",
            "NewMessage", "PhaseFlow", "PhaseTransition", "PhaseTransitionError",
            "SchemaVersionError", "SearchHit", "StorageBusyError", "StorageConnectionError",
            "StorageCorruptError", "StorageError", "StorageFullError", "StorageReadOnlyError",
            "StoreStats",
            "SyncInAsyncContextError", "ToolCall", "ToolCallStatus", "ToolCallType",
            "WebSource", "__version__", "default_redactor",
        ]
    )  # fmt: skip
    for name in lit_memory.__all__:
        assert hasattr(lit_memory, name), name


def test_the_core_does_not_import_langchain() -> None:
    import subprocess
    import sys

    code = "import sys, lit_memory; print(any(m.startswith('langchain') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_enums_keep_the_seed_values() -> None:
    assert [p.value for p in ConversationPhase] == [
        "initial", "genre_exploration", "educational_clarification", "cultural_research",
        "ready_for_generation", "generation_complete", "error",
    ]  # fmt: skip
    assert [r.value for r in MessageRole] == ["user", "assistant", "system", "tool"]
    assert ToolCallType.values()[:4] == [
        "web_search", "music_analysis", "cultural_research", "theory_explanation",
    ]  # fmt: skip
    assert "other" in ToolCallType.values()
    assert [s.value for s in ToolCallStatus] == [
        "pending", "running", "completed", "error", "cancelled",
    ]  # fmt: skip
    assert MessageRole.is_valid_role("tool") and not MessageRole.is_valid_role("wizard")
    assert ToolCallType.is_valid_type("web_search")


def test_phase_helpers_follow_the_seed() -> None:
    phase = ConversationPhase
    assert phase.get_next_phase(phase.INITIAL) is phase.GENRE_EXPLORATION
    assert phase.get_next_phase("ready_for_generation") is phase.GENERATION_COMPLETE
    assert phase.get_next_phase(phase.GENERATION_COMPLETE) is phase.ERROR
    assert phase.is_terminal(phase.GENERATION_COMPLETE) and phase.is_terminal("error")
    assert not phase.is_terminal(phase.CULTURAL_RESEARCH)
    assert phase.get_initial_phase() is phase.INITIAL
    assert phase.parse(" Cultural_Research ") is phase.CULTURAL_RESEARCH
    with pytest.raises(InvalidInputError) as info:
        phase.parse("finished")
    assert "initial, genre_exploration" in str(info.value) and isinstance(info.value, ValueError)
    assert str(phase.ERROR) == "error" and phase.ERROR == "error"


def test_default_flow_is_linear_with_error_exits() -> None:
    flow = DEFAULT_FLOW
    assert flow.can_transition("initial", "genre_exploration")
    assert not flow.can_transition("initial", "cultural_research")
    assert all(flow.can_transition(p, "error") for p in ConversationPhase)
    assert flow.can_transition("error", "initial")
    assert not flow.can_transition("generation_complete", "initial")
    assert flow.can_transition("cultural_research", "cultural_research")
    with pytest.raises(PhaseTransitionError) as info:
        flow.check("initial", "generation_complete")
    assert (info.value.from_phase, info.value.to_phase) == ("initial", "generation_complete")
    assert "genre_exploration" in str(info.value)


def test_custom_flow_is_plain_data() -> None:
    flow = PhaseFlow(
        {"initial": ["cultural_research"], "cultural_research": ["generation_complete"]}
    )
    assert flow.can_transition("initial", "cultural_research")
    assert not flow.can_transition("initial", "genre_exploration")
    assert flow.to_dict() == {
        "initial": ["cultural_research"],
        "cultural_research": ["generation_complete"],
    }
    assert PhaseFlow(flow.to_dict()) == flow
    with pytest.raises(InvalidInputError):
        PhaseFlow({"initial": ["nowhere"]})
    with pytest.raises(InvalidInputError):
        PhaseFlow([("initial", "error")])  # type: ignore[arg-type]


async def test_a_custom_flow_governs_strict_stores(tmp_path) -> None:
    flow = PhaseFlow({"initial": ["cultural_research"]})
    async with AsyncConversationDB(tmp_path / "f.db", flow=flow, strict_phases=True) as db:
        await db.create_conversation("c")
        assert await db.update_conversation_phase("c", "cultural_research")
        with pytest.raises(PhaseTransitionError):
            await db.update_conversation_phase("c", "error")
        assert await db.update_conversation_phase("c", "error", strict=False)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (":memory:", ("sqlite", ":memory:")),
        ("data/x.db", ("sqlite", "data/x.db")),
        ("sqlite:///rel.db", ("sqlite", "rel.db")),
        ("sqlite:////abs/x.db", ("sqlite", "/abs/x.db")),
        ("sqlite:///:memory:", ("sqlite", ":memory:")),
        ("postgresql://u@h/db", ("postgresql", "postgresql://u@h/db")),
        ("postgres://u@h/db", ("postgres", "postgres://u@h/db")),
    ],
)
def test_urls_choose_the_backend(given: str, expected: tuple[str, str]) -> None:
    assert resolve_url(given) == expected


def test_default_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIT_MEMORY_URL", "sqlite:///elsewhere.db")
    assert resolve_url(None) == ("sqlite", "elsewhere.db")
    monkeypatch.delenv("LIT_MEMORY_URL")
    assert resolve_url(None) == ("sqlite", "lit_memory.db")


def test_unknown_schemes_and_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError) as info:
        AsyncConversationDB("mysql://u@h/db")
    assert "sqlite://" in str(info.value)
    with pytest.raises(ConfigurationError):
        AsyncConversationDB(":memory:", no_such_option=1)
    with pytest.raises(ConfigurationError):
        AsyncConversationDB("")


def test_models_allow_item_access_like_the_seed_dicts() -> None:
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    summary = ConversationSummary(
        conversation_id="c", created_at=now, updated_at=now, message_count=3
    )
    assert summary["message_count"] == 3 and summary.get("nope", 7) == 7
    assert "phase" in summary and "nope" not in summary
    assert dict(summary)["conversation_id"] == "c"
    assert "message_count" in summary.keys()
    with pytest.raises(KeyError):
        summary["nope"]
    with pytest.raises(ValueError):
        ConversationSummary(conversation_id="c", created_at=now, updated_at=now, extra=1)


def test_rows_are_built_as_model_construct_would() -> None:
    from datetime import datetime, timezone

    from lit_memory import Message
    from lit_memory.backends import _rows

    stamp = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    row = (7, "c", 3, "tool", "out", stamp.isoformat(), '{"a":[1]}', "u-1", '{"type":"tool"}')
    built = _rows.message(row)
    expected = Message.model_construct(
        message_id=7, conversation_id="c", seq=3, role=MessageRole.TOOL, content="out",
        timestamp=stamp, metadata={"a": [1]}, uid="u-1", payload={"type": "tool"},
    )  # fmt: skip
    assert built == expected and built.model_fields_set == expected.model_fields_set
    assert Message.model_validate(built.model_dump()) == built
    assert built.model_copy(update={"seq": 4}).seq == 4 and built["content"] == "out"
