"""Paths are data, and imported documents are untrusted.

A path the store accepts (``audio_file_path``, a path in tool input or metadata) is stored and
returned as text and never opened: a FIFO proves it, since opening one for reading blocks until
a writer comes, and an audit hook watches every file operation Python makes meanwhile.
`import_conversation` refuses hostile documents before anything is written.
"""

from __future__ import annotations

import asyncio
import copy
import errno
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _dataset import populate
from _hostile import nested

from lit_memory import AsyncConversationDB, ConversationExistsError, InvalidInputError

# -- paths ------------------------------------------------------------------------------------

_WATCHED: set[str] = set()
_SEEN: list[tuple[str, str]] = []
_FILE_EVENTS = {
    "open", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.chmod", "os.chown",
    "os.mkdir", "os.symlink", "os.truncate", "os.utime", "shutil.copyfile", "shutil.rmtree",
    "sqlite3.connect",
}  # fmt: skip


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _WATCHED or event not in _FILE_EVENTS:
        return
    for arg in args:
        if isinstance(arg, (str, bytes, os.PathLike)):
            text = os.fsdecode(arg)
            if any(watched in text for watched in _WATCHED):
                _SEEN.append((event, text))


sys.addaudithook(_audit)  # hooks cannot be removed: this one only looks while _WATCHED is set


def _reader_holds(fifo: Path) -> bool:
    """Whether any process has `fifo` open for reading."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        assert exc.errno == errno.ENXIO, exc  # ENXIO: no reader
        return False
    os.close(fd)
    return True


async def test_paths_are_stored_as_data_and_never_opened(
    db: AsyncConversationDB, tmp_path: Path, record_property: Any
) -> None:
    fifo = tmp_path / "audio.fifo"
    os.mkfifo(fifo)
    paths = [
        str(fifo), "/etc/shadow", "../../x", "/dev/zero", "/proc/self/mem",
        str(tmp_path / "missing" / "mix.wav"), "file:///etc/passwd", "\\\\server\\share\\a",
    ]  # fmt: skip
    _WATCHED.update([str(fifo), "/etc/shadow", "/dev/zero", "/proc/self/mem", "missing"])
    try:
        await asyncio.wait_for(_store_and_read(db, paths), timeout=30)
    finally:
        _WATCHED.clear()
    record_property("bad_inputs_tried", len(paths) * 4)
    assert _SEEN == [], f"the store touched files it was only given as data: {_SEEN}"
    assert not _reader_holds(fifo)
    assert not (tmp_path / "missing").exists()


async def _store_and_read(db: AsyncConversationDB, paths: list[str]) -> None:
    await db.create_conversation("c", {"paths": paths})
    for path in paths:
        mashup = await db.create_mashup("c", "mix", "d", path, {"file": path})
        assert mashup is not None
        tid = await db.add_tool_call("c", "music_analysis", {"file": path}, output_data=path)
        assert tid is not None
        await db.add_message("c", "tool", path, {"file": path})
    assert [m.audio_file_path for m in await db.get_mashups("c")] == paths
    assert [m.content for m in await db.get_messages("c")] == paths
    document = await db.export_conversation("c")
    assert document is not None
    await db.delete_conversation("c")
    await db.import_conversation(json.dumps(document))
    assert await db.export_conversation("c") == document


# -- documents --------------------------------------------------------------------------------


def _nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def _spliced(document: dict[str, Any], raw_json: str) -> str:
    """The document as JSON text, with `raw_json` as a value in the conversation's metadata."""
    document["conversation"]["metadata"] = {"x": "@@here@@"}
    return json.dumps(document).replace('"@@here@@"', raw_json)


class Whole:
    """A mutation's result that replaces the whole document (with anything, even None)."""

    def __init__(self, value: Any) -> None:
        self.value = value


Mutation = Callable[[dict[str, Any]], Any]

HOSTILE_DOCUMENTS: dict[str, Mutation] = {
    # structure
    "not a document (list)": lambda d: Whole([d]),
    "not a document (None)": lambda d: Whole(None),
    "invalid UTF-8 bytes": lambda d: Whole(b'{"format": "\xff\xfe"}'),
    "10,000-deep JSON text": lambda d: Whole(_nested_json(10_000)),
    "10,000-deep metadata (JSON text)": lambda d: Whole(_spliced(d, _nested_json(10_000))),
    "10,000-deep metadata (dict)": lambda d: d["conversation"].update(
        metadata={"deep": nested(10_000)}
    ),
    "900-deep metadata (dict)": lambda d: d["conversation"].update(metadata={"deep": nested(900)}),
    "NaN in metadata (JSON text)": lambda d: Whole(_spliced(d, "NaN")),
    "wrong format": lambda d: d.update(format="lit-memory.other"),
    "version 2": lambda d: d.update(version=2),
    # extra fields at every level
    "extra field (top)": lambda d: d.update(admin=True),
    "extra field (conversation)": lambda d: d["conversation"].update(sql="DROP TABLE x"),
    "extra field (message)": lambda d: d["messages"][0].update(message_id=1),
    "extra field (source)": lambda d: d["tool_calls"][0]["sources"][0].update(source_id=1),
    # wrong types
    "seq as text": lambda d: d["messages"][0].update(seq="1"),
    "seq as float": lambda d: d["messages"][0].update(seq=1.0),
    "seq as bool": lambda d: d["messages"][0].update(seq=True),
    "timestamp as a number": lambda d: d["messages"][0].update(timestamp=0),
    "score as text": lambda d: d["tool_calls"][0]["sources"][0].update(relevance_score="0.5"),
    "content as a number": lambda d: d["messages"][0].update(content=5),
    "metadata as a list": lambda d: d["conversation"].update(metadata=[1]),
    "role as a number": lambda d: d["messages"][0].update(role=1),
    # values the API refuses
    "negative seq": lambda d: d["messages"][0].update(seq=-1),
    "zero seq": lambda d: d["messages"][0].update(seq=0),
    "seq with a gap": lambda d: d["messages"][-1].update(seq=99),
    "negative tool_call_ref": lambda d: d["mashups"][0].update(tool_call_ref=-1),
    "blank conversation id": lambda d: d["conversation"].update(conversation_id="   "),
    "empty uid": lambda d: d["messages"][0].update(uid=""),
    "uid of 1,000 characters": lambda d: d["messages"][0].update(uid="u" * 1000),
    "empty run_id": lambda d: d["tool_calls"][0].update(run_id=""),
    "NUL in content": lambda d: d["messages"][0].update(content="a\x00b"),
    "lone surrogate in a title": lambda d: d["mashups"][0].update(title="\ud800"),
    "naive timestamp": lambda d: d["conversation"].update(created_at="2026-01-01T00:00:00"),
    "year 1 at +05:00": lambda d: d["messages"][0].update(timestamp="0001-01-01T00:00:00+05:00"),
    "year 9999 at -05:00": lambda d: d["conversation"].update(
        updated_at="9999-12-31T23:00:00-05:00"
    ),
    "rank past 32 bits": lambda d: d["tool_calls"][0]["sources"][0].update(rank=2**40),
    "rank past 64 bits": lambda d: d["tool_calls"][0]["sources"][0].update(rank=2**70),
    "infinite duration": lambda d: d["tool_calls"][0].update(duration_ms=1e400),
    "unknown phase": lambda d: d["conversation"].update(phase="wizard"),
}


async def test_hostile_documents_are_refused_before_anything_is_written(
    db: AsyncConversationDB, record_property: Any
) -> None:
    await populate(db, conversations=2, turns=2)
    original = await db.export_conversation("kept-0")
    assert original is not None
    untouched = await db.export_conversation("kept-1")
    outcomes = {}
    for name, mutate in HOSTILE_DOCUMENTS.items():
        for replace in (False, True):
            document: Any = copy.deepcopy(original)
            document["conversation"]["conversation_id"] = "kept-1" if replace else "new"
            result = mutate(document)
            if isinstance(result, Whole):
                document = result.value
            outcomes[f"{name}{' (replacing)' if replace else ''}"] = await _import_outcome(
                db, document, replace
            )
    record_property("bad_inputs_tried", len(outcomes))
    wrong = {case: o for case, o in outcomes.items() if o != "refused"}
    assert wrong == {}, "\n".join(f"{case}: {o}" for case, o in sorted(wrong.items()))
    # a refused replacement leaves the conversation it would have replaced as it was
    assert await db.export_conversation("kept-1") == untouched


async def _import_outcome(db: AsyncConversationDB, document: Any, replace: bool) -> str:
    before = await db.stats()
    try:
        cid = await db.import_conversation(document, replace=replace)
    except InvalidInputError:
        after = await db.stats()
        same = (before.conversations, before.messages) == (after.conversations, after.messages)
        return "refused" if same else "refused, but the database changed"
    except ConversationExistsError:
        return "refused as existing (the document was accepted)"
    except Exception as exc:  # noqa: BLE001 - name it
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    await _remove(db, cid)
    return f"accepted as {cid!r}"


async def _remove(db: AsyncConversationDB, cid: str) -> None:
    try:
        await db.delete_conversation(cid)
    except InvalidInputError:  # an id the API refuses: only a purge reaches it
        from datetime import datetime, timezone

        await db.purge_conversations(idle_since=datetime(9999, 1, 1, tzinfo=timezone.utc))


async def test_stored_json_is_parsed_as_data(db: AsyncConversationDB) -> None:
    """Shapes that type-rehydrating decoders turn into objects come back as plain dicts."""
    shapes = {
        "pickle-ish": {"py/object": "subprocess.Popen", "__reduce__": ["os.system", ["id"]]},
        "dotnet": {"$type": "System.IO.FileInfo", "fileName": "/etc/passwd"},
        "class": {"__class__": "os._wrap_close", "__module__": "os"},
        "langchain": {"lc": 1, "type": "constructor", "id": ["langchain", "llms", "OpenAI"],
                      "kwargs": {"openai_model": {"lc": 1, "type": "secret",
                                                  "id": ["OPENAI_MODEL"]}}},
        "yaml": {"!!python/object/apply:os.system": ["id"]},
    }  # fmt: skip
    await db.create_conversation("c", shapes)
    await db.add_message("c", "user", "x", shapes, payload=shapes)
    conversation = await db.get_conversation("c")
    [message] = await db.get_messages("c")
    assert conversation is not None and conversation.metadata == shapes
    assert message.metadata == shapes and message.payload == shapes
    assert all(type(v) is dict for v in conversation.metadata.values())
