"""LitCallbackHandler on plain LCEL chains: what is stored, for which conversation, and how
failures, redaction, caps, flushing, closing and exit behave."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import BaseTool, tool

from lit_memory import (
    AsyncConversationDB,
    ConfigurationError,
    ConversationDB,
    StorageError,
    SyncInAsyncContextError,
    ToolCall,
    ToolCallStatus,
    ToolCallType,
)
from lit_memory_langchain._store import close_shared_stores, shared_store
from lit_memory_langchain.callbacks import (
    MODEL_SEARCH_TOOL,
    LitCallbackHandler,
    MissingConversationWarning,
    tool_type_of,
)
from lit_memory_langchain.sources import ExtractedSource, SourceExtractors

INTEGRATION = Path(__file__).resolve().parents[2] / "integrations" / "langchain"

TAVILY: dict[str, Any] = {
    "query": "bossa nova",
    "results": [
        {
            "url": "https://en.example.org/wiki/Bossa_nova?utm_source=tavily",
            "title": "Bossa nova",
            "content": "Bossa nova is a style of samba developed in the late 1950s.",
            "score": 0.93,
        },
        {
            "url": "https://music.example.com/joao-gilberto",
            "title": "João Gilberto",
            "content": "The guitarist who defined the bossa nova beat.",
            "score": 0.71,
        },
    ],
}


@tool
def tavily_search(query: str) -> dict[str, Any]:
    """Search the web (Tavily-shaped results)."""
    return TAVILY


@tool
def lookup(term: str) -> str:
    """Look a term up (not a search tool by name)."""
    return f"{term}: a definition"


@tool
def generate_mashup(genres: str) -> dict[str, Any]:
    """Generate a mashup."""
    return {
        "title": "Bossa Trap",
        "description": "Bossa nova chords over trap drums",
        "audio_file_path": "/audio/bossa-trap.wav",
        "bpm": 140,
        "genres": genres.split("+"),
    }


def chain_of(tool_: BaseTool) -> Runnable[Any, Any]:
    """A plain LCEL chain that calls the tool with plain args (no ToolCall, no tool_call_id)."""
    return RunnableLambda(lambda value: value) | tool_


def only(calls: list[ToolCall]) -> ToolCall:
    assert len(calls) == 1, calls
    return calls[0]


def assert_timed(call: ToolCall) -> None:
    assert call.started_at is not None and call.completed_at is not None
    assert call.started_at <= call.completed_at
    assert call.duration_ms is not None and call.duration_ms >= 0


@pytest.fixture
def sync_db(store_url: str) -> Iterator[ConversationDB]:
    """A sync facade on every backend, for the tests where storage matters."""
    store = ConversationDB(store_url)
    yield store
    store.close()


@pytest.fixture
def mem_db() -> Iterator[ConversationDB]:
    """A sync facade on an in-memory SQLite store, for tests of the handler's own logic."""
    store = ConversationDB(":memory:")
    yield store
    store.close()


# -- what is stored -----------------------------------------------------------------------


def test_lcel_tool_call_is_stored_with_input_output_timing_and_sources(
    sync_db: ConversationDB,
) -> None:
    with LitCallbackHandler(sync_db, "conv") as handler:
        chain_of(tavily_search).invoke({"query": "bossa nova"}, {"callbacks": [handler]})
        handler.flush()
    call = only(sync_db.get_tool_calls("conv"))
    assert (call.tool_name, call.tool_type, call.status) == (
        "tavily_search",
        ToolCallType.WEB_SEARCH,
        ToolCallStatus.COMPLETED,
    )
    assert json.loads(call.input_data) == {"query": "bossa nova"}
    assert json.loads(call.output_data or "") == TAVILY
    assert call.run_id and call.parent_run_id and call.call_id is None
    assert call.error_message is None and call.error_type is None
    assert_timed(call)
    assert [(s.url, s.title, s.rank, s.relevance_score) for s in call.sources] == [
        ("https://en.example.org/wiki/Bossa_nova", "Bossa nova", 1, 0.93),
        ("https://music.example.com/joao-gilberto", "João Gilberto", 2, 0.71),
    ]


async def test_lcel_ainvoke_on_an_async_store(db: AsyncConversationDB) -> None:
    async with LitCallbackHandler(db, "conv") as handler:
        await chain_of(tavily_search).ainvoke({"query": "q"}, {"callbacks": [handler]})
        await handler.aflush()
        call = only(await db.get_tool_calls("conv"))
        assert call.status is ToolCallStatus.COMPLETED and len(call.sources) == 2
        assert_timed(call)
        assert handler.open_runs == 0


@pytest.mark.parametrize("mode", ["astream", "abatch", "stream", "batch"])
async def test_lcel_streaming_and_batch_modes(mode: str) -> None:
    async with AsyncConversationDB(":memory:") as store:
        async with LitCallbackHandler(store, "conv") as handler:
            chain, config = chain_of(tavily_search), {"callbacks": [handler]}
            if mode == "astream":
                _ = [chunk async for chunk in chain.astream({"query": "q"}, config)]
            elif mode == "abatch":
                await chain.abatch([{"query": "q"}], config)
            elif mode == "stream":  # the sync API from a worker thread: the loop stays free
                await asyncio.to_thread(lambda: list(chain.stream({"query": "q"}, config)))
            else:
                await asyncio.to_thread(chain.batch, [{"query": "q"}], config)
            await handler.aflush()
            call = only(await store.get_tool_calls("conv"))
            assert call.status is ToolCallStatus.COMPLETED and len(call.sources) == 2
            assert handler.open_runs == 0


def test_tool_error_is_stored_with_type_and_message(sync_db: ConversationDB) -> None:
    @tool
    def broken(x: str) -> str:
        """Fail."""
        raise ValueError("the service said no")

    with LitCallbackHandler(sync_db, "conv") as handler:
        with pytest.raises(ValueError):
            chain_of(broken).invoke({"x": "1"}, {"callbacks": [handler]})
        handler.flush()
    call = only(sync_db.get_tool_calls("conv"))
    assert call.status is ToolCallStatus.ERROR
    assert (call.error_type, call.error_message) == ("ValueError", "the service said no")
    assert call.output_data is None
    assert_timed(call)


def test_tavily_error_result_reported_as_success_is_an_error(mem_db: ConversationDB) -> None:
    @tool
    def tavily_search(query: str) -> dict[str, Any]:
        """Tavily returns its failure as a result."""
        return {"error": "Unauthorized: missing or invalid API key."}

    with LitCallbackHandler(mem_db, "conv") as handler:
        chain_of(tavily_search).invoke({"query": "q"}, {"callbacks": [handler]})
        handler.flush()
    call = only(mem_db.get_tool_calls("conv"))
    assert call.status is ToolCallStatus.ERROR and call.error_type == "ToolError"
    assert call.error_message == "Unauthorized: missing or invalid API key."
    assert call.sources == []


def test_tool_types_default_rule_and_custom_mapping() -> None:
    assert tool_type_of("tavily_search_results_json") is ToolCallType.WEB_SEARCH
    assert tool_type_of("duckduckgo_search") is ToolCallType.WEB_SEARCH
    assert tool_type_of("brave-search") is ToolCallType.WEB_SEARCH
    assert tool_type_of("exa") is ToolCallType.WEB_SEARCH
    assert tool_type_of("example_tool") is ToolCallType.OTHER
    assert tool_type_of("lookup", {"lookup": "theory_explanation"}) is (
        ToolCallType.THEORY_EXPLANATION
    )
    by_prefix = lambda name: "music_analysis" if name.startswith("analyze") else None  # noqa: E731
    assert tool_type_of("analyze_song", by_prefix) is ToolCallType.MUSIC_ANALYSIS
    assert tool_type_of("web_search", by_prefix) is ToolCallType.WEB_SEARCH


def test_tool_types_mapping_is_applied_to_stored_rows(mem_db: ConversationDB) -> None:
    with LitCallbackHandler(mem_db, "conv", tool_types={"lookup": "cultural_research"}) as h:
        chain_of(lookup).invoke({"term": "samba"}, {"callbacks": [h]})
        h.flush()
    assert only(mem_db.get_tool_calls("conv")).tool_type is ToolCallType.CULTURAL_RESEARCH


# -- which conversation -------------------------------------------------------------------


def test_bound_conversation_beats_metadata(mem_db: ConversationDB) -> None:
    with LitCallbackHandler(mem_db, "bound") as handler:
        config = {"callbacks": [handler], "metadata": {"conversation_id": "meta"}}
        chain_of(lookup).invoke({"term": "x"}, config)
        handler.flush()
    assert len(mem_db.get_tool_calls("bound")) == 1
    assert mem_db.get_conversation("meta") is None


@pytest.mark.parametrize("key", ["conversation_id", "session_id", "thread_id"])
def test_conversation_from_run_metadata_is_created_if_missing(
    mem_db: ConversationDB, key: str
) -> None:
    with LitCallbackHandler(mem_db) as handler:
        chain_of(lookup).invoke({"term": "x"}, {"callbacks": [handler], "metadata": {key: 42}})
        handler.flush()
    assert mem_db.get_conversation("42") is not None
    assert len(mem_db.get_tool_calls("42")) == 1


def test_metadata_keys_are_tried_in_order(mem_db: ConversationDB) -> None:
    metadata = {"thread_id": "t", "session_id": "s", "conversation_id": "c"}
    with LitCallbackHandler(mem_db) as handler:
        chain_of(lookup).invoke({"term": "x"}, {"callbacks": [handler], "metadata": metadata})
        del metadata["conversation_id"]
        chain_of(lookup).invoke({"term": "y"}, {"callbacks": [handler], "metadata": metadata})
        handler.flush()
    assert [len(mem_db.get_tool_calls(cid)) for cid in ("c", "s", "t")] == [1, 1, 0]


def test_configurable_session_id_does_not_reach_handlers(mem_db: ConversationDB) -> None:
    """langchain-core >= 1.3 keeps `configurable` from handlers: say so, store nothing."""
    with LitCallbackHandler(mem_db) as handler:
        config = {"callbacks": [handler], "configurable": {"session_id": "s"}}
        with pytest.warns(MissingConversationWarning):
            chain_of(lookup).invoke({"term": "x"}, config)
        handler.flush()
    assert mem_db.get_conversation("s") is None


def test_missing_conversation_warns_once_and_stores_nothing(mem_db: ConversationDB) -> None:
    with LitCallbackHandler(mem_db) as handler:
        with pytest.warns(MissingConversationWarning, match="conversation_id") as caught:
            for term in ("a", "b", "c"):
                chain_of(lookup).invoke({"term": term}, {"callbacks": [handler]})
        handler.flush()
        assert handler.open_runs == 0
    assert len([w for w in caught if w.category is MissingConversationWarning]) == 1
    assert mem_db.list_conversations() == []


# -- redaction and caps -------------------------------------------------------------------


def test_default_redaction_scrubs_inputs_outputs_errors_and_sources(
    mem_db: ConversationDB,
) -> None:
    @tool
    def fetch_page(url: str, api_key: str) -> str:
        """Fetch a page."""
        if url.endswith("fail"):
            raise RuntimeError(f"401 for {url} with Bearer abcdefghijklmnop")
        return json.dumps({"results": [{"url": url, "title": "token=sk-" + "a" * 24}]})

    with LitCallbackHandler(mem_db, "conv") as handler:
        secret_url = "https://bob:hunter2@example.com/page"
        chain_of(fetch_page).invoke({"url": secret_url, "api_key": "k"}, {"callbacks": [handler]})
        with pytest.raises(RuntimeError):
            chain_of(fetch_page).invoke(
                {"url": secret_url + "/fail", "api_key": "k"}, {"callbacks": [handler]}
            )
        handler.flush()
    ok, failed = mem_db.get_tool_calls("conv")
    stored = " ".join(
        str(v) for v in (ok.input_data, ok.output_data, failed.error_message, ok.sources[0].title)
    )
    for secret in ("hunter2", "sk-aaaa", "abcdefghijklmnop", '"k"'):
        assert secret not in stored
    assert json.loads(ok.input_data)["api_key"] == "[REDACTED]"
    assert ok.sources[0].url == "https://example.com/page"


def test_custom_redact_hook_gets_plain_data(mem_db: ConversationDB) -> None:
    seen: list[Any] = []

    def hide_emails(data: Any) -> Any:
        seen.append(data)
        return json.loads(json.dumps(data).replace("ana@example.com", "<email>"))

    with LitCallbackHandler(mem_db, "conv", redact=hide_emails) as handler:
        chain_of(lookup).invoke({"term": "ana@example.com"}, {"callbacks": [handler]})
        handler.flush()
    call = only(mem_db.get_tool_calls("conv"))
    assert json.loads(call.input_data) == {"term": "<email>"}
    assert call.output_data == "<email>: a definition"
    assert {"term": "ana@example.com"} in seen


def test_payload_cap_truncates_each_field_with_a_marker(mem_db: ConversationDB) -> None:
    @tool
    def big(text: str) -> str:
        """Echo a lot."""
        return "é" * 50_000

    with LitCallbackHandler(mem_db, "conv", max_field_bytes=1024) as handler:
        chain_of(big).invoke({"text": "x" * 5000}, {"callbacks": [handler]})
        handler.flush()
    call = only(mem_db.get_tool_calls("conv"))
    for field in (call.input_data, call.output_data or ""):
        assert len(field.encode("utf-8")) <= 1024
        assert "[truncated by lit-memory:" in field
    assert call.output_data is not None and "100000 bytes" in call.output_data


# -- generated content and sources --------------------------------------------------------


def test_generator_result_becomes_a_mashup_linked_to_its_call(sync_db: ConversationDB) -> None:
    with LitCallbackHandler(sync_db, "conv") as handler:
        chain_of(generate_mashup).invoke({"genres": "bossa+trap"}, {"callbacks": [handler]})
        handler.flush()
    call = only(sync_db.get_tool_calls("conv"))
    mashup = only_mashup(sync_db)
    assert (mashup.title, mashup.description, mashup.audio_file_path) == (
        "Bossa Trap",
        "Bossa nova chords over trap drums",
        "/audio/bossa-trap.wav",
    )
    assert mashup.metadata == {"bpm": 140, "genres": ["bossa", "trap"]}
    assert mashup.tool_call_id == call.tool_call_id


def only_mashup(store: ConversationDB) -> Any:
    mashups = store.get_mashups("conv")
    assert len(mashups) == 1, mashups
    return mashups[0]


def test_generators_option_selects_the_tools(mem_db: ConversationDB) -> None:
    with LitCallbackHandler(mem_db, "conv", generators={"lookup"}) as handler:
        chain_of(lookup).invoke({"term": "x"}, {"callbacks": [handler]})
        chain_of(generate_mashup).invoke({"genres": "a"}, {"callbacks": [handler]})
        handler.flush()
    mashup = only_mashup(mem_db)
    assert (mashup.title, mashup.description) == ("lookup result", "x: a definition")


def test_failed_generator_stores_no_mashup(mem_db: ConversationDB) -> None:
    @tool
    def generate_mashup(genres: str) -> str:
        """Fail to generate."""
        raise RuntimeError("GPU out of memory")

    with LitCallbackHandler(mem_db, "conv") as handler:
        with pytest.raises(RuntimeError):
            chain_of(generate_mashup).invoke({"genres": "a"}, {"callbacks": [handler]})
        handler.flush()
    assert mem_db.get_mashups("conv") == []


def test_url_already_stored_for_the_conversation_is_skipped(sync_db: ConversationDB) -> None:
    with LitCallbackHandler(sync_db, "conv") as handler:
        for _ in range(2):
            chain_of(tavily_search).invoke({"query": "q"}, {"callbacks": [handler]})
        handler.flush()
    first, second = sync_db.get_tool_calls("conv")
    assert len(first.sources) == 2 and second.sources == []
    assert len(sync_db.get_web_sources("conv")) == 2


def test_custom_extractor_hook(mem_db: ConversationDB) -> None:
    @tool
    def archive_lookup(term: str) -> str:
        """A tool with its own output format."""
        return "HIT|https://archive.example.net/item/1|Field recording"

    def pipes(output: Any, artifact: Any) -> list[ExtractedSource] | None:
        if isinstance(output, str) and output.startswith("HIT|"):
            _, url, title = output.split("|")
            return [ExtractedSource(url=url, title=title, rank=1)]
        return None

    extractors = SourceExtractors([pipes])
    with LitCallbackHandler(mem_db, "conv", extractors=extractors) as handler:
        chain_of(archive_lookup).invoke({"term": "x"}, {"callbacks": [handler]})
        chain_of(tavily_search).invoke({"query": "q"}, {"callbacks": [handler]})
        handler.flush()
    custom, builtin = mem_db.get_tool_calls("conv")
    assert [(s.url, s.title) for s in custom.sources] == [
        ("https://archive.example.net/item/1", "Field recording")
    ]
    assert len(builtin.sources) == 2


class CitingModel(FakeMessagesListChatModel):
    """A scripted model whose answer carries provider-side citations."""


def test_model_citations_are_stored_as_a_model_web_search_call(sync_db: ConversationDB) -> None:
    answer = AIMessage(
        content=[
            {
                "type": "text",
                "text": "Bossa nova began in Rio.",
                "annotations": [
                    {"type": "citation", "url": "https://rio.example.com/", "title": "Rio"},
                    {"type": "url_citation", "url": "https://b.example.org/x", "title": "B"},
                ],
            }
        ]
    )
    with LitCallbackHandler(sync_db, "conv") as handler:
        CitingModel(responses=[answer]).invoke("where?", {"callbacks": [handler]})
        CitingModel(responses=[AIMessage("no citations")]).invoke("x", {"callbacks": [handler]})
        handler.flush()
        assert handler.open_runs == 0
    call = only(sync_db.get_tool_calls("conv"))
    assert (call.tool_name, call.tool_type) == (MODEL_SEARCH_TOOL, ToolCallType.WEB_SEARCH)
    assert call.status is ToolCallStatus.COMPLETED and call.run_id
    assert [(s.url, s.title, s.rank) for s in call.sources] == [
        ("https://rio.example.com/", "Rio", 1),
        ("https://b.example.org/x", "B", 2),
    ]


# -- failures -----------------------------------------------------------------------------


@pytest.fixture
def corrupt_db(tmp_path: Path) -> str:
    """A file that is not a database: every write fails with StorageCorruptError."""
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a SQLite database " * 100)
    return str(path)


def test_storage_failure_is_logged_and_raised_from_flush(
    corrupt_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = ConversationDB(corrupt_db)
    handler = LitCallbackHandler(store, "conv")
    with caplog.at_level(logging.ERROR, logger="lit_memory_langchain"):
        result = chain_of(lookup).invoke({"term": "x"}, {"callbacks": [handler]})
        assert result == "x: a definition"  # the user's chain is not broken
        with pytest.raises(StorageError, match="not a usable database"):
            handler.flush()
    assert any("could not store" in r.message and r.exc_info for r in caplog.records)
    handler.flush()  # reported once
    handler.close()
    store.close()


def test_raise_error_raises_the_storage_failure_from_the_callback(corrupt_db: str) -> None:
    store = ConversationDB(corrupt_db)
    handler = LitCallbackHandler(store, "conv", raise_error=True)
    with pytest.raises(StorageError, match="not a usable database"):
        chain_of(lookup).invoke({"term": "x"}, {"callbacks": [handler]})
    handler.close()
    store.close()


async def test_raise_error_under_ainvoke(corrupt_db: str) -> None:
    store = ConversationDB(corrupt_db)
    handler = LitCallbackHandler(store, "conv", raise_error=True)
    with pytest.raises(StorageError):
        await chain_of(lookup).ainvoke({"term": "x"}, {"callbacks": [handler]})
    await handler.aclose()
    await asyncio.to_thread(store.close)


# -- flush, close, lifetime ---------------------------------------------------------------


async def test_sync_flush_inside_a_running_loop_names_aflush(db: AsyncConversationDB) -> None:
    async with LitCallbackHandler(db, "conv") as handler:
        await chain_of(lookup).ainvoke({"term": "x"}, {"callbacks": [handler]})
        with pytest.raises(SyncInAsyncContextError, match="aflush"):
            handler.flush()
        await handler.aflush()
        assert len(await db.get_tool_calls("conv")) == 1


def test_async_store_needs_a_running_loop() -> None:
    store = AsyncConversationDB(":memory:")
    with pytest.raises(ConfigurationError, match="ConversationDB, a path or a URL"):
        LitCallbackHandler(store)


def test_a_path_uses_the_shared_store_and_close_keeps_the_handler_usable(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    handler = LitCallbackHandler(path, "conv")
    assert handler.db is shared_store(path).async_db  # the same store as the histories
    chain_of(lookup).invoke({"term": "x"}, {"callbacks": [handler]})
    handler.close()
    chain_of(lookup).invoke({"term": "y"}, {"callbacks": [handler]})
    handler.close()
    close_shared_stores()
    with ConversationDB(path) as store:
        terms = [json.loads(c.input_data)["term"] for c in store.get_tool_calls("conv")]
    assert terms == ["x", "y"]


def test_runs_that_never_end_are_swept(mem_db: ConversationDB) -> None:
    """A run whose end never arrives (a cancelled stream, a killed thread) is dropped after
    run_ttl and its call marked cancelled; the maps do not grow."""
    with LitCallbackHandler(mem_db, "conv", run_ttl=0.05) as handler:
        run_id = uuid.uuid4()
        handler.on_tool_start({"name": "lookup"}, "x", run_id=run_id, inputs={"term": "x"})
        assert handler.open_runs == 1
        time.sleep(0.06)
        chain_of(lookup).invoke({"term": "y"}, {"callbacks": [handler]})
        handler.on_tool_end("too late", run_id=run_id)
        handler.flush()
        assert handler.open_runs == 0
    abandoned, normal = mem_db.get_tool_calls("conv")
    assert abandoned.status is ToolCallStatus.CANCELLED and abandoned.error_type == "Abandoned"
    assert normal.status is ToolCallStatus.COMPLETED


EXIT_SCRIPT = """
import sys
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from lit_memory_langchain.callbacks import LitCallbackHandler

@tool
def web_search(query: str) -> str:
    "Search."
    return '{"results": [{"url": "https://example.com/%s", "title": "T"}]}' % query

handler = LitCallbackHandler(sys.argv[1], "exit")
chain = RunnableLambda(lambda value: value) | web_search
for i in range(100):
    chain.invoke({"query": str(i)}, {"callbacks": [handler]})
if sys.argv[2] == "raise":
    raise SystemExit("ending with an error, without flush or close")
"""


@pytest.mark.parametrize("ending", ["normal", "raise"])
def test_interpreter_exit_loses_nothing(tmp_path: Path, ending: str) -> None:
    path = str(tmp_path / "exit.db")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(INTEGRATION), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT_SCRIPT), path, ending],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == (0 if ending == "normal" else 1), done.stderr
    with ConversationDB(path) as store:
        calls = store.get_tool_calls("exit")
        assert len(calls) == 100
        assert {c.status for c in calls} == {ToolCallStatus.COMPLETED}
        assert len(store.get_web_sources("exit")) == 100
