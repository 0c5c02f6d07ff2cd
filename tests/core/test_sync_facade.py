"""The sync facade `ConversationDB`: the seed's examples without `await`, a clear error instead
of a deadlock inside an event loop, a sync twin for every async method, and scripts that
exit promptly (with their writes on disk) even when they forget `close()`."""

from __future__ import annotations

import asyncio
import inspect
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import lit_memory
from lit_memory import (
    AsyncConversationDB,
    ConversationDB,
    ConversationPhase,
    LitMemoryError,
    MessageRole,
    SyncInAsyncContextError,
    ToolCallType,
)

REPO = Path(lit_memory.__file__).resolve().parents[1]


def raw(path: str | Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(query, params).fetchall()


def test_seed_examples_through_the_sync_facade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's two examples, each `await` dropped, on the embedded default file."""
    monkeypatch.delenv("LIT_MEMORY_URL")
    monkeypatch.chdir(tmp_path)

    with ConversationDB() as db:
        db.init_db()
        conversation_id = "conv_123"
        assert db.create_conversation(conversation_id) is True
        assert db.create_conversation(conversation_id) is False
        db.add_message(conversation_id, MessageRole.USER, "Hello!")
        db.add_message(conversation_id, MessageRole.ASSISTANT, "Hi there!")
        db.update_conversation_phase(conversation_id, ConversationPhase.GENRE_EXPLORATION)
        summary = db.get_conversation_summary(conversation_id)
        print(f"Messages: {summary['message_count']}")

        tool_call_id = db.add_tool_call(
            conversation_id, ToolCallType.WEB_SEARCH, "jazz fusion history", status="pending"
        )
        assert db.update_tool_call(
            tool_call_id, output_data="Found information about jazz fusion", status="completed"
        )
        assert db.add_web_source(
            tool_call_id,
            "https://example.com/jazz-fusion",
            "Jazz Fusion History",
            "Jazz fusion emerged in the late 1960s...",
            0.95,
        )
        assert [m.content for m in db.get_messages(conversation_id)] == ["Hello!", "Hi there!"]
        assert db.get_tool_call(tool_call_id).sources[0].relevance_score == 0.95

    assert capsys.readouterr().out == "Messages: 2\n"
    path = tmp_path / "lit_memory.db"
    assert raw(path, "SELECT seq, role, content FROM messages ORDER BY seq") == [
        (1, "user", "Hello!"),
        (2, "assistant", "Hi there!"),
    ]
    assert raw(path, "SELECT phase FROM conversations") == [("genre_exploration",)]
    assert raw(path, "SELECT status, output_data FROM tool_calls") == [
        ("completed", "Found information about jazz fusion")
    ]
    assert raw(path, "SELECT conversation_id, url, relevance_score FROM web_sources") == [
        ("conv_123", "https://example.com/jazz-fusion", 0.95)
    ]


# -- inside an event loop ----------------------------------------------------------------------


def in_a_thread_with_its_own_loop(body: Any) -> Any:
    """Run `body()` (a coroutine function) on a fresh loop in another thread; give up after
    10 s, so a deadlock fails the test instead of hanging the run."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(body()))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the sync call blocked the event loop (deadlock)"
    return outcome[0]


CALLS = {
    "add_message": lambda db: db.add_message("c", "user", "from inside a loop"),
    "add_messages": lambda db: db.add_messages("c", [{"role": "user", "content": "x"}]),
    "get_messages": lambda db: db.get_messages("c"),
    "init_db": lambda db: db.init_db(),
    "close": lambda db: db.close(),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_sync_call_inside_an_event_loop_names_the_async_method(db_file: str, name: str) -> None:
    with ConversationDB(db_file) as db:
        db.create_conversation("c")

        async def misuse() -> Any:
            CALLS[name](db)

        error = in_a_thread_with_its_own_loop(misuse)
        assert isinstance(error, SyncInAsyncContextError), error
        assert isinstance(error, LitMemoryError) and isinstance(error, RuntimeError)
        assert f"await AsyncConversationDB.{name}(" in str(error)
        # Nothing ran, and the facade still works from sync code.
        assert db.add_message("c", "user", "from sync code")
    assert raw(db_file, "SELECT content FROM messages") == [("from sync code",)]


def test_sync_call_on_the_facades_own_loop_raises_instead_of_deadlocking(db_file: str) -> None:
    """The deadlock-prone case: a coroutine running on the facade's loop calls the facade."""
    with ConversationDB(db_file) as db:
        db.create_conversation("c")

        async def nested() -> Any:
            try:
                return db.add_message("c", "user", "nested")
            except SyncInAsyncContextError as exc:
                return exc

        error = db.submit(nested()).result(timeout=10)
        assert isinstance(error, SyncInAsyncContextError)
        assert "await AsyncConversationDB.add_message(" in str(error)
        assert db.count_messages("c") == 0


async def test_submit_lets_async_code_use_the_facades_store(db_file: str) -> None:
    db = ConversationDB(db_file)
    try:
        store = db.async_db
        await asyncio.wrap_future(db.submit(store.create_conversation("c")))
        await asyncio.wrap_future(db.submit(store.add_message("c", "user", "via submit")))
        messages = await asyncio.wrap_future(db.submit(store.get_messages("c")))
        assert [m.content for m in messages] == ["via submit"]
    finally:
        await asyncio.to_thread(db.close)
    assert raw(db_file, "SELECT seq, content FROM messages") == [(1, "via submit")]


# -- one facade method per async method --------------------------------------------------------


def _async_methods() -> list[str]:
    return sorted(
        name
        for name, value in vars(AsyncConversationDB).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(value)
    )


def test_the_async_store_has_the_methods_this_test_expects() -> None:
    assert {"init_db", "add_message", "get_conversation_summary", "close"} <= set(_async_methods())


@pytest.mark.parametrize("name", _async_methods())
def test_every_async_method_has_a_sync_twin(name: str) -> None:
    async_method = getattr(AsyncConversationDB, name)
    twin = getattr(ConversationDB, name, None)
    assert twin is not None, f"ConversationDB.{name} is missing"
    assert callable(twin) and not inspect.iscoroutinefunction(twin)
    assert twin.__name__ == name
    assert inspect.getdoc(twin) == inspect.getdoc(async_method)
    assert inspect.signature(twin) == inspect.signature(async_method)


def test_sync_twins_return_what_the_async_methods_return(db_file: str) -> None:
    with ConversationDB(db_file) as db:
        assert db.create_conversation("c", {"k": 1}) is True
        assert db.add_messages("c", [{"role": "user", "content": "a", "uid": "u1"}]) == 1
        assert db.add_messages("c", [{"role": "user", "content": "a", "uid": "u1"}]) == 0
        assert db.get_conversation("missing") is None
        assert db.get_conversation("c").metadata == {"k": 1}
        assert db.schema_version() == db.async_db.backend.latest_version
    assert raw(db_file, "SELECT uid FROM messages") == [("u1",)]


# -- scripts that exit -------------------------------------------------------------------------

SCRIPTS = {
    "never_closed": """
        db = ConversationDB(PATH)
        db.add_messages("c", [{"role": "user", "content": "saved"}], create=True)
    """,
    "dropped_in_a_function": """
        def save():
            ConversationDB(PATH).add_messages(
                "c", [{"role": "user", "content": "saved"}], create=True
            )
        save()
        import gc; gc.collect()
    """,
    "used_from_a_thread": """
        import threading
        db = ConversationDB(PATH)
        t = threading.Thread(
            target=db.add_messages,
            args=("c", [{"role": "user", "content": "saved"}]),
            kwargs={"create": True},
        )
        t.start(); t.join()
    """,
    "close_misused_in_a_loop": """
        import asyncio
        from lit_memory import SyncInAsyncContextError
        db = ConversationDB(PATH)
        db.add_messages("c", [{"role": "user", "content": "saved"}], create=True)
        async def main():
            try:
                db.close()  # wrong here: raises, and must not forget the facade is open
            except SyncInAsyncContextError:
                pass
        asyncio.run(main())
    """,
    "ends_with_an_exception": """
        db = ConversationDB(PATH)
        db.add_messages("c", [{"role": "user", "content": "saved"}], create=True)
        raise SystemExit("the script failed after writing")
    """,
}


def run_script(path: Path, body: str) -> subprocess.CompletedProcess[str] | None:
    """Run `body` (with PATH bound to `path`) in a fresh interpreter; None if it hangs."""
    code = "PATH = " + repr(str(path)) + "\n" + textwrap.dedent(body)
    paths = [str(REPO), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    try:
        return subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_script_without_close_exits_promptly_with_its_write_on_disk(
    tmp_path: Path, script: str
) -> None:
    path = tmp_path / "script.db"
    done = run_script(
        path, "from lit_memory import ConversationDB\n" + textwrap.dedent(SCRIPTS[script])
    )
    assert done is not None, f"the script {script!r} did not exit within 20 s"
    if script == "ends_with_an_exception":
        assert done.returncode == 1 and "failed after writing" in done.stderr
    else:
        assert (done.returncode, done.stderr) == (0, "")
    assert raw(path, "SELECT conversation_id, seq, content FROM messages") == [("c", 1, "saved")]


def test_async_script_that_forgets_close_still_exits(tmp_path: Path) -> None:
    """The same mistake with the async store: a store still referenced at exit (a module
    global) keeps aiosqlite's non-daemon connection threads alive, so the interpreter
    waits for them forever unless the store stops them at shutdown."""
    path = tmp_path / "script.db"
    done = run_script(
        path,
        """
        import asyncio
        from lit_memory import AsyncConversationDB
        db = AsyncConversationDB(PATH)
        asyncio.run(db.add_messages("c", [{"role": "user", "content": "saved"}], create=True))
        """,
    )
    assert raw(path, "SELECT conversation_id, seq, content FROM messages") == [("c", 1, "saved")]
    assert done is not None, "the script did not exit within 20 s: its connections kept it alive"
    assert done.returncode == 0, done.stderr
