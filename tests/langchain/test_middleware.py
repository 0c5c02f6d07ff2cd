"""Tests of LitMemoryMiddleware with create_agent, a scripted tool-calling model and a tool."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from lit_memory import AsyncConversationDB, ConfigurationError, ConversationDB, Message
from lit_memory_langchain import LitChatMessageHistory, close_shared_stores
from lit_memory_langchain.middleware import LitMemoryMiddleware, conversation_from_config
from lit_memory_langchain.window import validate_window

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _close_shared() -> Iterator[None]:
    yield
    close_shared_stores()


class ScriptedModel(GenericFakeChatModel):
    """A scripted chat model that accepts tools and remembers every prompt."""

    prompts: list[list[BaseMessage]] = []

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.prompts.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


@tool
def search(query: str) -> str:
    """Search the web for `query`."""
    return f"3 pages about {query}"


def turn_script(n: int) -> list[AIMessage]:
    """Turn `n`: the model searches, then answers."""
    call = {"name": "search", "args": {"query": f"topic {n}"}, "id": f"call-{n}"}
    return [AIMessage("", tool_calls=[call]), AIMessage(f"answer {n}")]


def make_agent(db: Any, turns: int, checkpointer: Any = None, **options: Any) -> Any:
    script = [message for n in range(1, turns + 1) for message in turn_script(n)]
    model = ScriptedModel(messages=iter(script), prompts=[])
    agent = create_agent(
        model,
        tools=[search],
        middleware=[LitMemoryMiddleware(db, **options)],
        checkpointer=checkpointer,
    )
    return agent, model


def ask(n: int) -> Any:
    return {"messages": [HumanMessage(f"question {n}")]}


TURN_ROLES = ["user", "assistant", "tool", "assistant"]


def assert_turns_stored(rows: list[Message], turns: int) -> None:
    """Each turn stored once, in order: question, tool call, tool result, answer."""
    assert [row.role.value for row in rows] == TURN_ROLES * turns
    assert [row.content for row in rows[::4]] == [f"question {n}" for n in range(1, turns + 1)]
    assert [row.content for row in rows[3::4]] == [f"answer {n}" for n in range(1, turns + 1)]
    assert all(row.uid for row in rows) and len({row.uid for row in rows}) == len(rows)
    for n, row in enumerate(rows[1::4], start=1):
        assert row.payload is not None
        assert row.payload["data"]["tool_calls"][0]["id"] == f"call-{n}"
    for n, row in enumerate(rows[2::4], start=1):
        assert row.payload is not None and row.payload["data"]["tool_call_id"] == f"call-{n}"


def assert_saw_earlier_turns(model: ScriptedModel, turns: int) -> None:
    """The model's first call of each turn saw every earlier turn once, then the question."""
    for n in range(1, turns + 1):
        prompt = model.prompts[2 * (n - 1)]
        assert [m.text for m in prompt[::4]] == [f"question {k}" for k in range(1, n + 1)]
        assert len(prompt) == 4 * (n - 1) + 1
        assert validate_window(prompt) == []


def test_sync_invoke_stores_turns_and_replays_them_without_a_checkpointer(
    store_url: str,
) -> None:
    store = ConversationDB(store_url)
    try:
        agent, model = make_agent(store, 3, conversation_id="c")
        for n in range(1, 4):
            result = agent.invoke(ask(n))
            assert result["messages"][-1].text == f"answer {n}"
        assert_saw_earlier_turns(model, 3)
        assert_turns_stored(store.get_messages("c"), 3)
    finally:
        store.close()


async def test_async_invoke_over_an_async_store(db: AsyncConversationDB) -> None:
    agent, model = make_agent(db, 3, conversation_id="c")
    for n in range(1, 4):
        result = await agent.ainvoke(ask(n))
        assert result["messages"][-1].text == f"answer {n}"
    assert_saw_earlier_turns(model, 3)
    assert_turns_stored(await db.get_messages("c"), 3)


@pytest.mark.parametrize("use_async", [False, True])
async def test_with_a_checkpointer_history_is_neither_loaded_twice_nor_stored_twice(
    db_file: str, use_async: bool
) -> None:
    agent, model = make_agent(db_file, 3, checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "thread-1"}}
    for n in range(1, 4):
        if use_async:
            result = await agent.ainvoke(ask(n), config)
        else:
            result = await _in_thread(agent.invoke, ask(n), config)
        assert len(result["messages"]) == 4 * n
    assert_saw_earlier_turns(model, 3)
    rows = await LitChatMessageHistory("thread-1", db_file).aget_messages()
    assert [m.text for m in rows[::4]] == ["question 1", "question 2", "question 3"]
    assert len(rows) == 12


async def _in_thread(function: Any, *args: Any) -> Any:
    import asyncio

    # Sync hooks use the sync facade, which refuses to run inside this test's event loop.
    return await asyncio.to_thread(function, *args)


def test_first_run_on_a_checkpointed_thread_loads_the_stored_history(db_file: str) -> None:
    earlier = [HumanMessage("old question"), AIMessage("old answer")]  # no ids, as from LCEL
    LitChatMessageHistory("thread-2", db_file).add_messages(earlier)
    agent, model = make_agent(db_file, 2, checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "thread-2"}}
    agent.invoke(ask(1), config)
    agent.invoke(ask(2), config)
    assert [m.text for m in model.prompts[0]] == ["old question", "old answer", "question 1"]
    assert [m.text for m in model.prompts[2]][:3] == ["old question", "old answer", "question 1"]
    stored = LitChatMessageHistory("thread-2", db_file).messages
    assert [m.text for m in stored[:2]] == ["old question", "old answer"]
    assert len(stored) == 2 + 8  # the loaded messages, id-less, were not stored again


def test_loaded_messages_without_ids_are_not_stored_again(db_file: str) -> None:
    LitChatMessageHistory("c", db_file).add_messages([HumanMessage("hi"), AIMessage("hello")])
    agent, _ = make_agent(db_file, 1, conversation_id="c")
    agent.invoke(ask(1))
    stored = LitChatMessageHistory("c", db_file).messages
    assert [m.text for m in stored] == [
        "hi",
        "hello",
        "question 1",
        "",
        "3 pages about topic 1",
        "answer 1",
    ]


def test_only_the_window_is_loaded(db_file: str) -> None:
    long = [HumanMessage(f"old {n} " + "x" * 40) for n in range(200)]
    LitChatMessageHistory("c", db_file).add_messages(long)
    agent, model = make_agent(db_file, 1, conversation_id="c", max_tokens=100)
    agent.invoke(ask(1))
    prompt = model.prompts[0]
    assert 1 < len(prompt) < 10
    assert [m.text for m in prompt[:-1]] == [m.text for m in long[-(len(prompt) - 1) :]]


@pytest.mark.parametrize(
    "config",
    [
        {"configurable": {"thread_id": "from-config"}},
        {"metadata": {"conversation_id": "from-config"}},
        {"metadata": {"session_id": "from-config"}, "configurable": {"thread_id": "other"}},
    ],
)
def test_conversation_comes_from_the_run_config(db_file: str, config: Any) -> None:
    agent, _ = make_agent(db_file, 1)
    agent.invoke(ask(1), config)
    assert len(LitChatMessageHistory("from-config", db_file).messages) == 4


def test_a_run_without_a_conversation_is_refused(db_file: str) -> None:
    agent, _ = make_agent(db_file, 1)
    with pytest.raises(ConfigurationError, match="thread_id"):
        agent.invoke(ask(1))


def test_conversation_from_config_order() -> None:
    assert conversation_from_config({}) is None
    assert conversation_from_config({"configurable": {"thread_id": " "}}) is None
    assert conversation_from_config({"configurable": {"thread_id": 7}}) == "7"
    both = {"metadata": {"thread_id": "m"}, "configurable": {"conversation_id": "c"}}
    assert conversation_from_config(both) == "c"


def test_a_tool_error_turn_is_stored_with_its_status(db_file: str) -> None:
    call = {"name": "missing_tool", "args": {}, "id": "call-x"}
    model = ScriptedModel(
        messages=iter([AIMessage("", tool_calls=[call]), AIMessage("sorry")]), prompts=[]
    )
    agent = create_agent(
        model, tools=[search], middleware=[LitMemoryMiddleware(db_file, conversation_id="c")]
    )
    agent.invoke(ask(1))
    stored = LitChatMessageHistory("c", db_file).messages
    assert isinstance(stored[2], ToolMessage) and stored[2].status == "error"
    assert stored[2].tool_call_id == "call-x"


def test_middleware_agent_sample_runs_and_stores_the_turns(tmp_path: Path) -> None:
    database = tmp_path / "sample.db"
    env = {**os.environ, "LIT_MEMORY_URL": str(database), "PYTHONWARNINGS": "error"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "samples" / "middleware_agent.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with ConversationDB(str(database)) as store:
        rows = store.get_messages("middleware-agent-sample")
    assert [row.role.value for row in rows] == TURN_ROLES * 2
    assert "Daft Punk" in rows[3].content
