"""Tests of LitChatMessageHistory: storage, sync and async access, windows, chains."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call
from langchain_core.outputs import ChatResult
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from lit_memory import (
    AsyncConversationDB,
    ConfigurationError,
    ConversationDB,
    ConversationNotFound,
    InvalidInputError,
    Message,
    SyncInAsyncContextError,
)
from lit_memory_langchain import LitChatMessageHistory, close_shared_stores
from lit_memory_langchain.window import select_window, validate_window

ROOT = Path(__file__).resolve().parents[2]
DEPRECATED_RUNNABLE = pytest.mark.filterwarnings(
    "ignore:RunnableWithMessageHistory is deprecated"
    ":langchain_core._api.deprecation.LangChainDeprecationWarning"
)


@pytest.fixture(autouse=True)
def _close_shared() -> Iterator[None]:
    yield
    close_shared_stores()


class CountingDB(AsyncConversationDB):
    """A store that counts the message rows its reads return."""

    rows_read = 0
    reads = 0

    async def get_last_messages(self, *args: Any, **kwargs: Any) -> list[Message]:
        rows = await super().get_last_messages(*args, **kwargs)
        self.reads += 1
        self.rows_read += len(rows)
        return rows

    async def get_messages(self, *args: Any, **kwargs: Any) -> list[Message]:
        rows = await super().get_messages(*args, **kwargs)
        self.reads += 1
        self.rows_read += len(rows)
        return rows


@pytest.fixture
async def counting_db(store_url: str) -> AsyncIterator[CountingDB]:
    store = CountingDB(store_url)
    await store.init_db()
    yield store
    await store.close()


def tool_turn(n: int, text: str = "") -> list[BaseMessage]:
    """A user question, a tool call with its result, and the answer: one turn."""
    call = tool_call(name="search", args={"q": f"question {n}"}, id=f"call-{n}")
    return [
        HumanMessage(f"question {n} {text}", id=f"h{n}"),
        AIMessage("", tool_calls=[call], id=f"a{n}"),
        ToolMessage(f"result {n} {text}", tool_call_id=f"call-{n}", id=f"t{n}"),
        AIMessage(f"answer {n} {text}", id=f"f{n}"),
    ]


# -- storage -----------------------------------------------------------------------------------


def test_constructing_does_no_io(tmp_path: Path) -> None:
    path = tmp_path / "never.db"
    history = LitChatMessageHistory("c", str(path))
    assert history.conversation_id == "c"
    assert not path.exists()


def test_db_of_another_type_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="db must be"):
        LitChatMessageHistory("c", 42)  # type: ignore[arg-type]


async def test_async_round_trip_creates_the_conversation_on_first_write(
    db: AsyncConversationDB,
) -> None:
    history = LitChatMessageHistory("c", db, owner="ada")
    assert await history.aget_messages() == []
    assert await db.get_conversation("c") is None
    turn = tool_turn(1)
    await history.aadd_messages(turn)
    assert await history.aget_messages() == turn
    conversation = await db.get_conversation("c")
    assert conversation is not None and conversation.owner == "ada"


async def test_a_retried_turn_is_stored_once(db: AsyncConversationDB) -> None:
    history = LitChatMessageHistory("c", db)
    await history.aadd_messages(tool_turn(1))
    await history.aadd_messages(tool_turn(1) + tool_turn(2))
    assert await history.aget_messages() == tool_turn(1) + tool_turn(2)


async def test_a_turn_is_one_write_and_a_refused_value_writes_nothing(
    counting_db: CountingDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = AsyncConversationDB.add_messages

    async def add_messages(self: AsyncConversationDB, cid: str, rows: Any, **kw: Any) -> int:
        calls.append(len(rows))
        return await original(self, cid, rows, **kw)

    monkeypatch.setattr(AsyncConversationDB, "add_messages", add_messages)
    history = LitChatMessageHistory("c", counting_db)
    await history.aadd_messages(tool_turn(1))
    assert calls == [4]
    bad = AIMessage("x", additional_kwargs={"handle": object()})
    with pytest.raises(InvalidInputError, match="additional_kwargs"):
        await history.aadd_messages([HumanMessage("fine"), bad])
    assert calls == [4] and await counting_db.count_messages("c") == 4


async def test_adding_nothing_writes_nothing(db: AsyncConversationDB) -> None:
    await LitChatMessageHistory("c", db).aadd_messages([])
    assert await db.get_conversation("c") is None


async def test_aclear_deletes_the_messages_and_keeps_the_conversation(
    db: AsyncConversationDB,
) -> None:
    history = LitChatMessageHistory("c", db)
    await history.aadd_messages(tool_turn(1))
    tool_call = await db.add_tool_call("c", "web_search", "q")
    await history.aclear()
    assert await history.aget_messages() == []
    assert await db.get_conversation("c") is not None and await db.count_messages("c") == 0
    assert [call.tool_call_id for call in await db.get_tool_calls("c")] == [tool_call]
    await history.aadd_messages(tool_turn(2))
    assert await history.aget_messages() == tool_turn(2)


async def test_an_owner_sees_only_its_conversation(db: AsyncConversationDB) -> None:
    await LitChatMessageHistory("c", db, owner="ada").aadd_messages(tool_turn(1))
    intruder = LitChatMessageHistory("c", db, owner="bob")
    assert await intruder.aget_messages() == []
    with pytest.raises(ConversationNotFound):
        await intruder.aadd_messages([HumanMessage("mine now")])
    await intruder.aclear()
    assert await db.count_messages("c") == 4


# -- sync and async access -----------------------------------------------------------------------


def test_sync_methods_work_on_a_url_shared_per_process(store_url: str) -> None:
    LitChatMessageHistory("c", store_url).add_messages(tool_turn(1))
    # A new history per turn, as RunnableWithMessageHistory builds: same store, same data.
    history = LitChatMessageHistory("c", store_url)
    assert history.messages == tool_turn(1)
    history.clear()
    assert history.messages == []


def test_sync_methods_from_many_threads(store_url: str) -> None:
    store = ConversationDB(store_url)
    try:
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda n: LitChatMessageHistory("c", store).add_messages(tool_turn(n)),
                    range(16),
                )
            )
        stored = LitChatMessageHistory("c", store).messages
    finally:
        store.close()
    assert len(stored) == 64
    assert {message.id for message in stored} == {m.id for n in range(16) for m in tool_turn(n)}


def test_async_methods_over_a_facade_work_from_any_event_loop(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_thread_pool(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a thread pool was used")

    monkeypatch.setattr(asyncio.BaseEventLoop, "run_in_executor", no_thread_pool)
    history = LitChatMessageHistory("c", store_url)
    asyncio.run(history.aadd_messages(tool_turn(1)))
    # Another loop, in another thread: the store still answers on its own loop.
    results: list[list[BaseMessage]] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(history.aget_messages())))
    thread.start()
    thread.join()
    assert results == [tool_turn(1)]
    assert asyncio.run(history.aget_window(1000)) == tool_turn(1)
    asyncio.run(history.aclear())
    assert history.messages == []


async def test_sync_methods_inside_an_event_loop_name_the_async_one(store_url: str) -> None:
    history = LitChatMessageHistory("c", store_url)
    with pytest.raises(SyncInAsyncContextError, match="aget_messages"):
        history.messages  # noqa: B018 - the property read is the call under test
    with pytest.raises(SyncInAsyncContextError, match="aadd_messages"):
        history.add_messages([HumanMessage("x")])


async def test_sync_methods_over_an_async_store_explain_the_choice(
    db: AsyncConversationDB,
) -> None:
    history = LitChatMessageHistory("c", db)
    for call in (lambda: history.messages, history.clear, lambda: history.get_window(10)):
        with pytest.raises(ConfigurationError, match="AsyncConversationDB"):
            call()


# -- the window ----------------------------------------------------------------------------------


def long_history(turns: int) -> list[BaseMessage]:
    history: list[BaseMessage] = [SystemMessage("You are a mashup tutor.", id="sys")]
    for n in range(turns):
        history += tool_turn(n, text="x" * (n % 7) * 10)
        if n % 9 == 4:
            history.append(SystemMessage(f"mid-history note {n}", id=f"note{n}"))
        if n % 11 == 3:
            # An orphan result and an unanswered call: never sent, wherever they fall.
            history.append(ToolMessage("orphan", tool_call_id="nobody", id=f"o{n}"))
            call = tool_call(name="search", args={}, id=f"open-{n}")
            history.append(AIMessage("", tool_calls=[call], id=f"u{n}"))
    return history


@pytest.mark.parametrize("keep_system", [True, False])
async def test_window_equals_the_selection_over_the_whole_history(
    db: AsyncConversationDB, keep_system: bool
) -> None:
    messages = long_history(60)
    history = LitChatMessageHistory("c", db)
    await history.aadd_messages(messages)
    for budget in (0, 5, 20, 60, 150, 400, 1000, 3000, 100_000):
        window = await history.aget_window(budget, keep_system=keep_system)
        assert window == select_window(messages, budget, keep_system=keep_system), budget
        assert validate_window(window) == []


async def test_window_keeps_the_opening_system_message_and_lists_sources(
    db: AsyncConversationDB,
) -> None:
    history = LitChatMessageHistory("c", db)
    await history.aadd_messages(long_history(40))
    for url, title in [("https://a.example/bach", "Bach"), ("https://b.example", None)]:
        call_id = await db.add_tool_call("c", "web_search", {"q": "bach"}, status="completed")
        assert call_id is not None
        await db.add_web_source(call_id, url, title)
        await db.add_web_source(call_id, "https://a.example/bach", "Bach again")
    window = await history.aget_window(60, include_sources=True)
    assert window[0] == SystemMessage("You are a mashup tutor.", id="sys")
    assert window[1] == SystemMessage(
        "Sources:\n[1] Bach — https://a.example/bach\n[2] https://b.example"
    )
    assert window[-1] == AIMessage(f"answer 39 {'x' * 40}", id="f39")
    assert validate_window(window) == []


async def test_window_of_an_empty_conversation(db: AsyncConversationDB) -> None:
    history = LitChatMessageHistory("missing", db)
    assert await history.aget_window(100, include_sources=True) == []
    with pytest.raises(ValueError, match="max_tokens"):
        await history.aget_window(-1)


async def fill(db: AsyncConversationDB, count: int) -> None:
    messages: list[BaseMessage] = [SystemMessage("opening")]
    messages += [HumanMessage(f"message {n}") for n in range(count - 1)]
    for start in range(0, count, 2000):
        chunk = messages[start : start + 2000]
        await LitChatMessageHistory("c", db).aadd_messages(chunk)


async def test_window_cost_does_not_grow_with_the_conversation(store_url: str) -> None:
    costs = []
    for count in (100, 10_000):
        store = CountingDB(store_url)
        await store.delete_conversation("c")
        await fill(store, count)
        store.reads = store.rows_read = 0
        window = await LitChatMessageHistory("c", store).aget_window(200)
        costs.append((store.reads, store.rows_read, len(window)))
        await store.close()
    assert costs[0] == costs[1]
    reads, rows, size = costs[0]
    assert reads <= 3 and rows <= 64 and size > 10


def test_sync_window_matches_the_async_one(store_url: str) -> None:
    history = LitChatMessageHistory("c", store_url)
    history.add_messages(long_history(20))
    assert history.get_window(300) == asyncio.run(history.aget_window(300))


# -- RunnableWithMessageHistory ------------------------------------------------------------------


class RecordingModel(GenericFakeChatModel):
    """A scripted chat model that remembers every prompt it was given."""

    prompts: list[list[BaseMessage]] = []

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        # Streaming goes through _generate too.
        self.prompts.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def chat_chain(
    db: Any, answers: Sequence[str]
) -> tuple[RunnableWithMessageHistory, RecordingModel]:
    model = RecordingModel(messages=iter([AIMessage(a) for a in answers]), prompts=[])
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be brief."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    chain = RunnableWithMessageHistory(
        prompt | model,
        lambda session_id: LitChatMessageHistory(session_id, db),
        input_messages_key="question",
        history_messages_key="history",
    )
    return chain, model


CONFIG: Any = {"configurable": {"session_id": "chat"}}


def assert_replayed(model: RecordingModel, questions: list[str], answers: list[str]) -> None:
    """Each prompt held the earlier turns, in order."""
    for turn, prompt in enumerate(model.prompts):
        earlier = [text for pair in zip(questions, answers, strict=True) for text in pair]
        assert [m.text for m in prompt] == ["Be brief.", *earlier[: 2 * turn], questions[turn]]


@DEPRECATED_RUNNABLE
def test_runnable_with_message_history_sync_invoke_and_stream(store_url: str) -> None:
    questions, answers = ["I am Ada", "Who am I?", "And now?"], ["Hi Ada", "Ada", "Still Ada"]
    chain, model = chat_chain(store_url, answers)
    assert chain.invoke({"question": questions[0]}, CONFIG).content == answers[0]
    assert chain.invoke({"question": questions[1]}, CONFIG).content == answers[1]
    chunks = list(chain.stream({"question": questions[2]}, CONFIG))
    assert "".join(str(chunk.content) for chunk in chunks) == answers[2]
    assert_replayed(model, questions, answers)
    stored = LitChatMessageHistory("chat", store_url).messages
    assert [m.text for m in stored] == [
        t for pair in zip(questions, answers, strict=True) for t in pair
    ]
    assert [type(m) for m in stored][-2:] == [HumanMessage, AIMessageChunk]


@DEPRECATED_RUNNABLE
async def test_runnable_with_message_history_ainvoke_and_astream(
    db: AsyncConversationDB,
) -> None:
    questions, answers = ["I am Ada", "Who am I?", "And now?"], ["Hi Ada", "Ada", "Still Ada"]
    chain, model = chat_chain(db, answers)
    assert (await chain.ainvoke({"question": questions[0]}, CONFIG)).content == answers[0]
    assert (await chain.ainvoke({"question": questions[1]}, CONFIG)).content == answers[1]
    chunks = [chunk async for chunk in chain.astream({"question": questions[2]}, CONFIG)]
    assert "".join(str(chunk.content) for chunk in chunks) == answers[2]
    assert_replayed(model, questions, answers)
    rows = await db.get_messages("chat")
    assert [row.role.value for row in rows] == ["user", "assistant"] * 3
    assert all(row.uid for row in rows if row.role.value == "assistant")


# -- the sample ----------------------------------------------------------------------------------


def test_chat_history_sample_runs_and_stores_the_chat(tmp_path: Path) -> None:
    database = tmp_path / "sample.db"
    env = {**os.environ, "LIT_MEMORY_URL": str(database), "PYTHONWARNINGS": "error"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "samples" / "chat_history.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "You are Ada" in result.stdout
    with ConversationDB(str(database)) as store:
        rows = store.get_messages("chat-history-sample")
    assert [row.role.value for row in rows] == ["user", "assistant"] * 3
    assert rows[0].content.startswith("Hi, I'm Ada") and "123 BPM" in rows[-1].content
    assert sorted(path.name for path in tmp_path.iterdir())[0] == "sample.db"


# -- the package ---------------------------------------------------------------------------------


def test_package_exports_are_pinned() -> None:
    import lit_memory_langchain

    assert lit_memory_langchain.__all__ == [
        "DEFAULT_PHASE_RULES", "ExtractedSource", "LitCallbackHandler", "LitChatMessageHistory",
        "LitMemoryMiddleware", "MissingConversationWarning", "PhaseRule", "PhaseTracker",
        "SourceExtractors", "__version__", "approximate_token_count", "close_shared_stores",
        "decode_message", "encode_message", "extract_sources", "format_sources",
        "select_window", "validate_window",
    ]  # fmt: skip
    for name in lit_memory_langchain.__all__:
        assert getattr(lit_memory_langchain, name) is not None, name
    assert lit_memory_langchain.LitChatMessageHistory is LitChatMessageHistory
    with pytest.raises(AttributeError):
        lit_memory_langchain.nothing_here  # noqa: B018


# Blocks `langchain` (the optional extra) and LangChain's deprecated chat-history module.
BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "langchain" or name == "langchain_core.chat_history":
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
"""


def test_package_imports_light_and_history_works_without_the_deprecated_base() -> None:
    script = BLOCKER + (
        "import lit_memory_langchain\n"
        "assert 'lit_memory_langchain.history' not in sys.modules\n"
        "from lit_memory_langchain import LitChatMessageHistory, close_shared_stores\n"
        "from langchain_core.messages import HumanMessage\n"
        "history = LitChatMessageHistory('c', ':memory:')\n"
        "history.add_messages([HumanMessage('hi')])\n"
        "assert history.messages == [HumanMessage('hi')]\n"
        "close_shared_stores()\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
