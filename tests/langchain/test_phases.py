"""PhaseTracker: rules on each event type, the default mashup rules, refusals, root failure,
the custom "phase" event, and reading the phase right after the events."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import ToolException, tool
from langgraph.graph import END, START, MessagesState, StateGraph

from lit_memory import (
    AsyncConversationDB,
    ConfigurationError,
    ConversationDB,
    ConversationPhase,
    InvalidInputError,
    PhaseFlow,
    SyncInAsyncContextError,
)
from lit_memory_langchain.callbacks import LitCallbackHandler, MissingConversationWarning
from lit_memory_langchain.phases import DEFAULT_PHASE_RULES, PhaseRule, PhaseTracker

P = ConversationPhase


class ScriptedModel(FakeMessagesListChatModel):
    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:
        return self


def calls(name: str, call_id: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": {"q": "x"}, "id": call_id}])


@tool
def explain_theory(q: str) -> str:
    """Explain some music theory."""
    return "a tritone substitution replaces V with bII7"


@tool
def web_search(q: str) -> str:
    """Search the web."""
    return '{"results": [{"url": "https://x.example/a", "title": "A"}]}'


@tool
def plan_mashup(q: str) -> str:
    """Plan a mashup."""
    return "plan: bossa chords, trap drums"


@tool
def generate_mashup(q: str) -> dict[str, Any]:
    """Generate a mashup."""
    return {"title": "Bossa Trap", "audio_file_path": "/audio/bt.wav"}


@tool
def clarify(q: str) -> str:
    """Fails with a handled error."""
    raise ToolException("nothing to clarify")


clarify.handle_tool_error = True

MASHUP_TOOLS = [explain_theory, web_search, plan_mashup, generate_mashup]
MASHUP_SCRIPT = [
    calls("web_search", "c0"),  # during genre exploration: a forward skip, refused
    calls("explain_theory", "c1"),
    calls("web_search", "c2"),
    calls("plan_mashup", "c3"),
    calls("generate_mashup", "c4"),
    calls("web_search", "c5"),  # after completion: no rule moves backwards
    AIMessage("Here is your mashup."),
]
QUESTION = {"messages": [("user", "make me a bossa trap mashup")]}


@pytest.fixture
def sync_db(store_url: str) -> Iterator[ConversationDB]:
    store = ConversationDB(store_url)
    yield store
    store.close()


@pytest.fixture
def mem_db() -> Iterator[ConversationDB]:
    store = ConversationDB(":memory:")
    yield store
    store.close()


def history(store: ConversationDB, cid: str = "conv") -> list[tuple[str, str, bool]]:
    return [(t.from_phase, t.to_phase, t.accepted) for t in store.get_phase_history(cid)]


MASHUP_HISTORY = [
    (P.INITIAL, P.GENRE_EXPLORATION, True),
    (P.GENRE_EXPLORATION, P.CULTURAL_RESEARCH, False),
    (P.GENRE_EXPLORATION, P.EDUCATIONAL_CLARIFICATION, True),
    (P.EDUCATIONAL_CLARIFICATION, P.CULTURAL_RESEARCH, True),
    (P.CULTURAL_RESEARCH, P.READY_FOR_GENERATION, True),
    (P.READY_FOR_GENERATION, P.GENERATION_COMPLETE, True),
]


# -- the default rules on a real agent ---------------------------------------------------


def test_default_rules_walk_the_mashup_flow_under_invoke(sync_db: ConversationDB) -> None:
    agent = create_agent(ScriptedModel(responses=MASHUP_SCRIPT), MASHUP_TOOLS)
    with PhaseTracker(sync_db, "conv") as tracker:
        agent.invoke(QUESTION, {"callbacks": [tracker]})
        assert tracker.current_phase is P.GENERATION_COMPLETE
        assert tracker.open_runs == 0
    assert history(sync_db) == MASHUP_HISTORY
    transitions = sync_db.get_phase_history("conv")
    assert all(t.run_id for t in transitions)
    assert transitions[0].reason == "chain_start 'LangGraph': first turn"
    assert transitions[1].reason == "tool_start 'web_search': web search"


async def test_default_rules_under_astream_with_the_callback_handler(
    db: AsyncConversationDB,
) -> None:
    agent = create_agent(ScriptedModel(responses=MASHUP_SCRIPT), MASHUP_TOOLS)
    async with PhaseTracker(db) as tracker, LitCallbackHandler(db) as handler:
        config: RunnableConfig = {
            "callbacks": [tracker, handler],
            "configurable": {"thread_id": "conv"},
        }
        _ = [chunk async for chunk in agent.astream(QUESTION, config)]
        assert await tracker.aphase("conv") is P.GENERATION_COMPLETE
        await handler.aflush()
    got = [(t.from_phase, t.to_phase, t.accepted) for t in await db.get_phase_history("conv")]
    assert got == MASHUP_HISTORY
    assert len(await db.get_tool_calls("conv")) == 6
    assert [m.title for m in await db.get_mashups("conv")] == ["Bossa Trap"]


def test_a_new_turn_after_an_error_restarts_the_flow(mem_db: ConversationDB) -> None:
    def boom(_: Any) -> Any:
        raise RuntimeError("model provider down")

    with PhaseTracker(mem_db, "conv") as tracker:
        with pytest.raises(RuntimeError):
            RunnableLambda(boom, name="turn").invoke("hi", {"callbacks": [tracker]})
        assert tracker.phase() is P.ERROR
        RunnableLambda(lambda x: x, name="turn").invoke("again", {"callbacks": [tracker]})
        assert tracker.phase() is P.GENRE_EXPLORATION
    assert history(mem_db) == [
        (P.INITIAL, P.GENRE_EXPLORATION, True),
        (P.GENRE_EXPLORATION, P.ERROR, True),
        (P.ERROR, P.INITIAL, True),
        (P.INITIAL, P.GENRE_EXPLORATION, True),
    ]
    reason = mem_db.get_phase_history("conv")[1].reason or ""
    assert "RuntimeError: model provider down" in reason


def test_closing_a_stream_early_is_not_a_failure(mem_db: ConversationDB) -> None:
    agent = create_agent(ScriptedModel(responses=MASHUP_SCRIPT), MASHUP_TOOLS)
    with PhaseTracker(mem_db, "conv") as tracker:
        stream = agent.stream(QUESTION, {"callbacks": [tracker]})
        next(stream)
        stream.close()  # the root run ends with GeneratorExit: the consumer stopped
        assert tracker.phase() is P.GENRE_EXPLORATION
        assert tracker.open_runs == 0


def test_nested_failure_is_not_a_root_failure(mem_db: ConversationDB) -> None:
    def inner(_: Any) -> Any:
        raise ValueError("handled below")

    def outer(value: Any, config: RunnableConfig) -> Any:
        try:
            RunnableLambda(inner).invoke(value, config)
        except ValueError:
            return "recovered"

    with PhaseTracker(mem_db, "conv", rules=()) as tracker:
        assert RunnableLambda(outer).invoke("x", {"callbacks": [tracker]}) == "recovered"
        assert tracker.phase() is None  # nothing moved: the conversation was never touched


# -- one rule per event type ---------------------------------------------------------------


def tracker_with(store: ConversationDB, *rules: PhaseRule) -> PhaseTracker:
    return PhaseTracker(store, "conv", rules=rules, error_on_failure=False)


def test_chain_start_and_chain_end_rules_match_run_names(mem_db: ConversationDB) -> None:
    rules = (
        PhaseRule("chain_start", P.GENRE_EXPLORATION, name="^intake$"),
        PhaseRule("chain_end", P.EDUCATIONAL_CLARIFICATION, name="^intake$"),
        PhaseRule("chain_end", P.ERROR, name="^other$"),
    )
    with tracker_with(mem_db, *rules) as tracker:
        RunnableLambda(lambda x: x, name="intake").invoke(1, {"callbacks": [tracker]})
        assert tracker.phase() is P.EDUCATIONAL_CLARIFICATION
    assert [t.reason for t in mem_db.get_phase_history("conv")] == [
        "chain_start 'intake': chain_start[name=^intake$] -> genre_exploration",
        "chain_end 'intake': chain_end[name=^intake$] -> educational_clarification",
    ]


def test_chain_error_rule_on_a_nested_run(mem_db: ConversationDB) -> None:
    def fail(_: Any) -> Any:
        raise KeyError("x")

    rule = PhaseRule("chain_error", P.ERROR, name="lookup", root=False)
    with tracker_with(mem_db, rule) as tracker:
        chain = RunnableLambda(lambda x: x) | RunnableLambda(fail, name="lookup")
        with pytest.raises(KeyError):
            chain.invoke(1, {"callbacks": [tracker]})
        assert tracker.phase() is P.ERROR


def test_tool_rules_by_name_type_and_outcome(mem_db: ConversationDB) -> None:
    rules = (
        PhaseRule("tool_start", P.GENRE_EXPLORATION, tool="^explain"),
        PhaseRule("tool_end", P.EDUCATIONAL_CLARIFICATION, tool="explain_theory"),
        PhaseRule("tool_start", P.CULTURAL_RESEARCH, tool_type="web_search"),
        PhaseRule("tool_error", P.ERROR, tool="clarify"),
    )
    with tracker_with(mem_db, *rules) as tracker:
        config: RunnableConfig = {"callbacks": [tracker]}
        explain_theory.invoke({"q": "x"}, config)
        assert tracker.phase() is P.EDUCATIONAL_CLARIFICATION
        web_search.invoke({"q": "x"}, config)
        assert tracker.phase() is P.CULTURAL_RESEARCH
        # A handled error ends with on_tool_end and an error ToolMessage: a tool_error event.
        clarify.invoke(
            {"name": "clarify", "args": {"q": "x"}, "id": "t1", "type": "tool_call"}, config
        )
        assert tracker.phase() is P.ERROR


def test_tool_error_rule_on_a_raised_exception(mem_db: ConversationDB) -> None:
    @tool
    def render(q: str) -> str:
        """Fails."""
        raise RuntimeError("renderer crashed")

    with tracker_with(mem_db, PhaseRule("tool_error", P.ERROR, tool="render")) as tracker:
        with pytest.raises(RuntimeError):
            render.invoke({"q": "x"}, {"callbacks": [tracker]})
        assert tracker.phase() is P.ERROR


def test_tag_and_node_matches(mem_db: ConversationDB) -> None:
    rules = (
        PhaseRule("chain_start", P.GENRE_EXPLORATION, tag="intake"),
        PhaseRule("chain_end", P.EDUCATIONAL_CLARIFICATION, node="teacher"),
    )
    graph = StateGraph(MessagesState)
    graph.add_node("teacher", lambda state: {"messages": [AIMessage("a lesson")]})
    graph.add_edge(START, "teacher")
    graph.add_edge("teacher", END)
    app = graph.compile()
    with tracker_with(mem_db, *rules) as tracker:
        RunnableLambda(lambda x: x).invoke(1, {"callbacks": [tracker], "tags": ["other"]})
        assert tracker.phase() is None
        RunnableLambda(lambda x: x).invoke(1, {"callbacks": [tracker], "tags": ["intake"]})
        assert tracker.phase() is P.GENRE_EXPLORATION
        app.invoke(QUESTION, {"callbacks": [tracker]})
        assert tracker.phase() is P.EDUCATIONAL_CLARIFICATION


def test_custom_phase_event_and_custom_rules(mem_db: ConversationDB) -> None:
    def step(value: Any, config: RunnableConfig) -> Any:
        dispatch_custom_event(
            "phase", {"phase": "genre_exploration", "reason": "asked"}, config=config
        )
        dispatch_custom_event("lesson_done", {}, config=config)
        return value

    rule = PhaseRule("custom", P.EDUCATIONAL_CLARIFICATION, name="^lesson_done$")
    with tracker_with(mem_db, rule) as tracker:
        RunnableLambda(step).invoke(1, {"callbacks": [tracker]})
        assert tracker.phase() is P.EDUCATIONAL_CLARIFICATION
    reasons = [t.reason for t in mem_db.get_phase_history("conv")]
    assert reasons[0] == "asked"


async def test_async_custom_phase_event(db: AsyncConversationDB) -> None:
    async def step(value: Any) -> Any:
        await adispatch_custom_event("phase", {"phase": "genre_exploration"})
        return value

    async with PhaseTracker(db, "conv", rules=()) as tracker:
        await RunnableLambda(step).ainvoke(1, {"callbacks": [tracker]})
        assert await tracker.aphase() is P.GENRE_EXPLORATION
        with pytest.raises(SyncInAsyncContextError, match="aphase|aflush"):
            tracker.phase()
    (move,) = await db.get_phase_history("conv")
    assert (move.reason, move.accepted) == ("custom event 'phase'", True)


# -- refusals, flows, validation -----------------------------------------------------------


def test_a_forbidden_transition_is_refused_and_recorded(sync_db: ConversationDB) -> None:
    rule = PhaseRule("chain_start", P.GENERATION_COMPLETE)
    with tracker_with(sync_db, rule) as tracker:
        RunnableLambda(lambda x: x, name="skip").invoke(1, {"callbacks": [tracker]})
        assert tracker.phase() is P.INITIAL
    (refused,) = sync_db.get_phase_history("conv")
    assert (refused.from_phase, refused.to_phase, refused.accepted) == (
        P.INITIAL,
        P.GENERATION_COMPLETE,
        False,
    )
    assert refused.reason and "chain_start 'skip'" in refused.reason


def test_only_from_limits_a_rule_to_some_phases(mem_db: ConversationDB) -> None:
    rule = PhaseRule("chain_start", P.GENRE_EXPLORATION, only_from={P.ERROR})
    with tracker_with(mem_db, rule) as tracker:
        RunnableLambda(lambda x: x).invoke(1, {"callbacks": [tracker]})
        assert tracker.phase() is None
        assert mem_db.get_phase_history("conv") == []


def test_custom_flow_on_a_store_the_tracker_opens(tmp_path: Any) -> None:
    flow = PhaseFlow({"initial": ["cultural_research"], "cultural_research": []})
    path = str(tmp_path / "flow.db")
    rule = PhaseRule("chain_start", P.CULTURAL_RESEARCH)
    with PhaseTracker(path, "conv", flow=flow, rules=(rule,)) as tracker:
        RunnableLambda(lambda x: x).invoke(1, {"callbacks": [tracker]})
        assert tracker.phase() is P.CULTURAL_RESEARCH
        assert tracker.flow == flow


def test_a_flow_other_than_the_stores_is_refused(mem_db: ConversationDB) -> None:
    flow = PhaseFlow({"initial": ["error"]})
    with pytest.raises(ConfigurationError, match="flow"):
        PhaseTracker(mem_db, flow=flow)


def test_rule_validation() -> None:
    with pytest.raises(InvalidInputError, match="unknown event"):
        PhaseRule("tool_begin", P.ERROR)
    with pytest.raises(InvalidInputError):
        PhaseRule("tool_start", "nowhere")
    rule = PhaseRule("tool_start", "error", tool_type="web_search", only_from=["initial"])
    assert rule.target is P.ERROR and rule.only_from == frozenset({P.INITIAL})
    assert DEFAULT_PHASE_RULES[0].describe() == "a new turn after an error restarts the flow"


def test_missing_conversation_warns_once(mem_db: ConversationDB) -> None:
    with PhaseTracker(mem_db) as tracker:
        with pytest.warns(MissingConversationWarning) as caught:
            for _ in range(3):
                RunnableLambda(lambda x: x).invoke(1, {"callbacks": [tracker]})
        assert len(caught) == 1
        assert tracker.open_runs == 0
        with pytest.raises(InvalidInputError, match="conversation_id"):
            tracker.phase()
    assert mem_db.list_conversations() == []


def test_metadata_conversation_and_concurrent_conversations(mem_db: ConversationDB) -> None:
    with PhaseTracker(mem_db) as tracker:
        chain = RunnableLambda(lambda x: x)
        chain.batch(
            [1, 2, 3],
            [{"callbacks": [tracker], "metadata": {"conversation_id": f"c{i}"}} for i in range(3)],
        )
        assert [tracker.phase(f"c{i}") for i in range(3)] == [P.GENRE_EXPLORATION] * 3


async def test_phase_is_readable_right_after_from_a_dynamic_prompt(db: AsyncConversationDB) -> None:
    """A prompt built from the phase sees every event before it (aphase flushes first)."""
    seen: list[ConversationPhase | None] = []

    async with PhaseTracker(db, "conv") as tracker:

        async def prompt(value: Any) -> Any:
            seen.append(await tracker.aphase())
            return value

        async def teach(value: Any, config: RunnableConfig) -> Any:
            await explain_theory.ainvoke({"q": "x"}, config)
            return value

        chain = RunnableLambda(prompt) | RunnableLambda(teach) | RunnableLambda(prompt)
        await chain.ainvoke(1, {"callbacks": [tracker]})
    assert seen == [P.GENRE_EXPLORATION, P.EDUCATIONAL_CLARIFICATION]
