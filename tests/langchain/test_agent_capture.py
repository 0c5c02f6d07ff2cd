"""LitCallbackHandler under real agents: create_agent and a LangGraph StateGraph with ToolNode,
driven by a scripted model making parallel tool calls, under invoke, ainvoke, stream, astream.

The search tools return the shapes real providers return (see sources.py); the assertions
are on the stored rows: every tool call once, linked to its tool_call_id, with the right
status, sources and timing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import wrap_tool_call
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool, StructuredTool, ToolException, tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from lit_memory import AsyncConversationDB, ConversationDB, ToolCall, ToolCallStatus
from lit_memory_langchain.callbacks import LitCallbackHandler

# -- scripted model and provider-shaped tools --------------------------------------------


class ScriptedModel(FakeMessagesListChatModel):
    """Answers with the scripted messages in turn; binding tools changes nothing."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:
        return self


def turn(*calls: tuple[str, str]) -> AIMessage:
    """An AI message making the given (tool name, call id) calls in parallel."""
    return AIMessage(
        "",
        tool_calls=[
            {"name": name, "args": {"query": f"{name} query"}, "id": call_id, "type": "tool_call"}
            for name, call_id in calls
        ],
    )


def both(name: str, result: Callable[[str], Any]) -> BaseTool:
    """A tool with a sync body (run in a thread pool) and an async one (run on the loop)."""

    async def run_async(query: str) -> Any:
        await asyncio.sleep(0)
        return result(query)

    def run_sync(query: str) -> Any:
        return result(query)

    return StructuredTool.from_function(
        func=run_sync, coroutine=run_async, name=name, description=f"{name} tool"
    )


TAVILY = {
    "query": "q",
    "results": [
        {"url": "https://t.example.com/1", "title": "Tavily one", "content": "a", "score": 0.9},
        {"url": "https://t.example.com/2", "title": "Tavily two", "content": "b", "score": 0.5},
    ],
}
DDG = (
    "snippet: Samba schools parade in Rio., title: Samba, link: https://d.example.org/samba, "
    "snippet: Choro predates samba., title: Choro, link: https://d.example.org/choro"
)
BRAVE = json.dumps(
    [
        {"title": "Brave <strong>one</strong>", "link": "https://b.example.net/1", "snippet": "x"},
        {"title": "Brave two", "link": "https://b.example.net/2", "snippet": "y"},
    ]
)
SERPER = str(
    {
        "searchParameters": {"q": "q"},
        "organic": [
            {"title": "Serper one", "link": "https://s.example.com/1", "position": 1},
            {"title": "Serper three", "link": "https://s.example.com/3", "position": 3},
        ],
    }
)
EXA = (
    "Title: Exa paper\nURL: https://e.example.edu/paper\nID: 1\nScore: 0.42\n"
    "Text: the text\n\nTitle: Exa blog\nURL: https://e.example.edu/blog\nID: 2\nScore: None\n"
)
MCP_BLOCKS = [
    {"type": "text", "text": json.dumps({"results": [{"url": "https://m.example.io/a"}]})},
    {"type": "text", "text": json.dumps([{"link": "https://m.example.io/b", "title": "MCP B"}])},
]


def docs_search_tool() -> BaseTool:
    @tool(response_format="content_and_artifact")
    def docs_search(query: str) -> tuple[str, list[Document]]:
        """Search a document index (results in the artifact)."""
        docs = [
            Document("Tropicália manifesto", metadata={"source": "https://doc.example.com/t"}),
            Document("Local notes", metadata={"source": "/tmp/notes.txt"}),
        ]
        return "2 documents", docs

    return docs_search


@tool
def flaky_search(query: str) -> str:
    """A search that reports its own failure."""
    raise ToolException("rate limited, try later")


flaky_search.handle_tool_error = True


@tool
def broken_search(query: str) -> str:
    """A search that raises."""
    raise ValueError("index unavailable")


TOOLS: list[BaseTool] = [
    StructuredTool.from_function(func=lambda query: TAVILY, name="tavily_search", description="t"),
    both("duckduckgo_search", lambda q: DDG),
    both("brave_search", lambda q: BRAVE),
    both("serper_search", lambda q: SERPER),
    both("exa_search", lambda q: EXA),
    both("mcp_search", lambda q: MCP_BLOCKS),
    docs_search_tool(),
    flaky_search,
    broken_search,
]

EXPECTED_URLS = {
    "tavily_search": ["https://t.example.com/1", "https://t.example.com/2"],
    "duckduckgo_search": ["https://d.example.org/samba", "https://d.example.org/choro"],
    "brave_search": ["https://b.example.net/1", "https://b.example.net/2"],
    "serper_search": ["https://s.example.com/1", "https://s.example.com/3"],
    "exa_search": ["https://e.example.edu/paper", "https://e.example.edu/blog"],
    "mcp_search": ["https://m.example.io/a", "https://m.example.io/b"],
    "docs_search": ["https://doc.example.com/t"],
}
# Serper reports positions; extract_sources ranks each MCP text block's results on its own.
EXPECTED_RANKS = {"serper_search": [1, 3], "mcp_search": [1, 1]}


def assert_stored(calls: list[ToolCall], expected: dict[str, tuple[str, ToolCallStatus]]) -> None:
    """Every expected call stored once (by call id), with its status, sources and timing."""
    assert sorted(c.call_id or "" for c in calls) == sorted(expected), calls
    for call in calls:
        name, status = expected[call.call_id or ""]
        assert (call.tool_name, call.status) == (name, status), call
        assert call.run_id and call.parent_run_id and call.run_id != call.parent_run_id
        assert call.duration_ms is not None and call.duration_ms >= 0
        assert call.started_at is not None and call.completed_at is not None
        assert [s.url for s in call.sources] == EXPECTED_URLS.get(name, [])
        ranks = EXPECTED_RANKS.get(name, list(range(1, len(call.sources) + 1)))
        assert [s.rank for s in call.sources] == ranks
        assert all(s.title or name in ("mcp_search", "docs_search") for s in call.sources)
        if status is ToolCallStatus.ERROR:
            assert call.error_message and call.error_type


def agent_with(*turns: AIMessage, **kwargs: Any) -> Any:
    model = ScriptedModel(responses=[*turns, AIMessage("done")])
    return create_agent(model, TOOLS, **kwargs)


PARALLEL_TURNS = (
    turn(("tavily_search", "c1"), ("duckduckgo_search", "c2"), ("no_such_tool", "c3")),
    turn(("brave_search", "c4"), ("flaky_search", "c5"), ("exa_search", "c6")),
)
PARALLEL_EXPECTED = {
    "c1": ("tavily_search", ToolCallStatus.COMPLETED),
    "c2": ("duckduckgo_search", ToolCallStatus.COMPLETED),
    "c3": ("no_such_tool", ToolCallStatus.ERROR),
    "c4": ("brave_search", ToolCallStatus.COMPLETED),
    "c5": ("flaky_search", ToolCallStatus.ERROR),
    "c6": ("exa_search", ToolCallStatus.COMPLETED),
}
QUESTION = {"messages": [("user", "what is bossa nova?")]}


def thread(handler: LitCallbackHandler, thread_id: str = "conv") -> dict[str, Any]:
    """A LangGraph config: the conversation comes from thread_id, copied into metadata."""
    return {"callbacks": [handler], "configurable": {"thread_id": thread_id}}


@pytest.fixture
def sync_db(store_url: str) -> Iterator[ConversationDB]:
    store = ConversationDB(store_url)
    yield store
    store.close()


# -- create_agent ------------------------------------------------------------------------


def test_create_agent_invoke_parallel_calls(sync_db: ConversationDB) -> None:
    with LitCallbackHandler(sync_db) as handler:
        agent_with(*PARALLEL_TURNS).invoke(QUESTION, thread(handler))
        handler.flush()
        assert handler.open_runs == 0
    assert_stored(sync_db.get_tool_calls("conv"), PARALLEL_EXPECTED)


async def test_create_agent_ainvoke_parallel_calls(db: AsyncConversationDB) -> None:
    async with LitCallbackHandler(db) as handler:
        await agent_with(*PARALLEL_TURNS).ainvoke(QUESTION, thread(handler))
        await handler.aflush()
        assert handler.open_runs == 0
        assert_stored(await db.get_tool_calls("conv"), PARALLEL_EXPECTED)


def test_create_agent_stream() -> None:
    with ConversationDB(":memory:") as store, LitCallbackHandler(store) as handler:
        chunks = list(agent_with(*PARALLEL_TURNS).stream(QUESTION, thread(handler)))
        assert chunks
        handler.flush()
        assert_stored(store.get_tool_calls("conv"), PARALLEL_EXPECTED)


async def test_create_agent_astream_messages() -> None:
    async with AsyncConversationDB(":memory:") as store, LitCallbackHandler(store) as handler:
        agent = agent_with(*PARALLEL_TURNS)
        chunks = [c async for c in agent.astream(QUESTION, thread(handler), stream_mode="messages")]
        assert chunks
        await handler.aflush()
        assert_stored(await store.get_tool_calls("conv"), PARALLEL_EXPECTED)


async def test_an_agent_nested_in_a_chain_takes_the_outer_runs_conversation() -> None:
    agent = agent_with(turn(("tavily_search", "n1")))

    async def ask(question: str, config: RunnableConfig) -> Any:
        return await agent.ainvoke({"messages": [("user", question)]}, config)

    async with AsyncConversationDB(":memory:") as store, LitCallbackHandler(store) as handler:
        config: RunnableConfig = {"callbacks": [handler], "metadata": {"conversation_id": "outer"}}
        await RunnableLambda(ask).ainvoke("what is bossa nova?", config)
        await handler.aflush()
        (call,) = await store.get_tool_calls("outer")
        assert (call.call_id, call.status, len(call.sources)) == ("n1", ToolCallStatus.COMPLETED, 2)


FAILING_TURN = turn(("serper_search", "s1"), ("broken_search", "s2"), ("mcp_search", "s3"))
FAILING_EXPECTED = {
    "s1": ("serper_search", ToolCallStatus.COMPLETED),
    "s2": ("broken_search", ToolCallStatus.ERROR),
    "s3": ("mcp_search", ToolCallStatus.COMPLETED),
}


def test_a_raising_tool_fails_the_run_and_is_stored_as_an_error() -> None:
    with ConversationDB(":memory:") as store, LitCallbackHandler(store) as handler:
        with pytest.raises(ValueError, match="index unavailable"):
            agent_with(FAILING_TURN).invoke(QUESTION, thread(handler))
        handler.flush()
        calls = store.get_tool_calls("conv")
        assert_stored(calls, FAILING_EXPECTED)
        failed = next(c for c in calls if c.call_id == "s2")
        assert (failed.error_type, failed.error_message) == ("ValueError", "index unavailable")
        assert handler.open_runs == 0


async def test_a_raising_tool_under_ainvoke() -> None:
    async with AsyncConversationDB(":memory:") as store, LitCallbackHandler(store) as handler:
        with pytest.raises(ValueError, match="index unavailable"):
            await agent_with(FAILING_TURN).ainvoke(QUESTION, thread(handler))
        await handler.aflush()
        assert_stored(await store.get_tool_calls("conv"), FAILING_EXPECTED)
        assert handler.open_runs == 0


def test_a_middleware_answering_without_the_tool_is_recorded_once() -> None:
    @wrap_tool_call
    def cached(request: Any, handler: Callable[[Any], Any]) -> Any:
        call = request.tool_call
        if call["name"] == "tavily_search":
            return ToolMessage(json.dumps(TAVILY), tool_call_id=call["id"], name=call["name"])
        return handler(request)

    expected = {
        "m1": ("tavily_search", ToolCallStatus.COMPLETED),
        "m2": ("brave_search", ToolCallStatus.COMPLETED),
    }
    agent = agent_with(turn(("tavily_search", "m1"), ("brave_search", "m2")), middleware=[cached])
    with ConversationDB(":memory:") as store, LitCallbackHandler(store) as handler:
        agent.invoke(QUESTION, thread(handler))
        handler.flush()
        calls = store.get_tool_calls("conv")
        assert_stored(calls, expected)
        from_chain = next(c for c in calls if c.call_id == "m1")
        assert json.loads(from_chain.input_data) == {"query": "tavily_search query"}


async def test_cancelling_a_run_marks_the_running_tool_cancelled() -> None:
    started = asyncio.Event()

    async def slow(query: str) -> str:
        started.set()
        await asyncio.sleep(30)
        return "never"

    slow_tool = StructuredTool.from_function(coroutine=slow, name="slow_search", description="s")
    agent = create_agent(ScriptedModel(responses=[turn(("slow_search", "x1"))]), [slow_tool])
    async with AsyncConversationDB(":memory:") as store, LitCallbackHandler(store) as handler:
        task = asyncio.create_task(agent.ainvoke(QUESTION, thread(handler)))
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await handler.aflush()
        (call,) = await store.get_tool_calls("conv")
        assert (call.status, call.error_type) == (ToolCallStatus.CANCELLED, "CancelledError")
        assert handler.open_runs == 0


# -- LangGraph StateGraph with ToolNode ---------------------------------------------------


def tool_graph(*turns: AIMessage) -> Any:
    """The classic agent loop: a model node, a ToolNode, and tools_condition between them."""
    model = ScriptedModel(responses=[*turns, AIMessage("done")])

    async def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    def call_model_sync(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", RunnableLambda(call_model_sync, afunc=call_model))
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


GRAPH_TURN = turn(("mcp_search", "g1"), ("docs_search", "g2"), ("unknown_tool", "g3"))
GRAPH_EXPECTED = {
    "g1": ("mcp_search", ToolCallStatus.COMPLETED),
    "g2": ("docs_search", ToolCallStatus.COMPLETED),
    "g3": ("unknown_tool", ToolCallStatus.ERROR),
}


def test_state_graph_tool_node_invoke(sync_db: ConversationDB) -> None:
    with LitCallbackHandler(sync_db) as handler:
        tool_graph(GRAPH_TURN).invoke(QUESTION, thread(handler))
        handler.flush()
        assert handler.open_runs == 0
    assert_stored(sync_db.get_tool_calls("conv"), GRAPH_EXPECTED)


async def test_state_graph_tool_node_ainvoke(db: AsyncConversationDB) -> None:
    async with LitCallbackHandler(db) as handler:
        await tool_graph(GRAPH_TURN).ainvoke(QUESTION, thread(handler))
        await handler.aflush()
        assert handler.open_runs == 0
        assert_stored(await db.get_tool_calls("conv"), GRAPH_EXPECTED)


# -- bounded memory -----------------------------------------------------------------------


def test_a_thousand_agent_runs_leave_the_maps_empty() -> None:
    agent = agent_with(turn(("duckduckgo_search", "k1")))
    with ConversationDB(":memory:") as store, LitCallbackHandler(store) as handler:
        for i in range(1000):
            agent.invoke(QUESTION, thread(handler, f"conv-{i % 10}"))
        handler.flush()
        assert handler.open_runs == 0
        assert (handler._tools, handler._chains, handler._models, handler._claims) == (
            {},
            {},
            {},
            {},
        )
        calls = [c for i in range(10) for c in store.get_tool_calls(f"conv-{i}")]
        assert len(calls) == 1000
        assert {c.status for c in calls} == {ToolCallStatus.COMPLETED}
