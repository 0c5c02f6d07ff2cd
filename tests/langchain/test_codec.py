"""Tests of lit_memory_langchain.codec: every message comes back from the store equal."""

from __future__ import annotations

import copy
import json
import math
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
    messages_from_dict,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from lit_memory import (
    AsyncConversationDB,
    ConversationDB,
    InvalidInputError,
    Message,
    SchemaVersionError,
    StorageCorruptError,
)
from lit_memory_langchain.codec import (
    _payload_fields,
    decode_message,
    decode_payload,
    encode_message,
    store_role,
)

CITATION = {
    "type": "citation",
    "url": "https://en.wikipedia.org/wiki/Mashup_(music)",
    "title": "Mashup (music)",
    "start_index": 0,
    "end_index": 7,
}


def examples() -> list[BaseMessage]:
    """One of every message type, with the fields that are easiest to lose."""
    return [
        SystemMessage("You are a mashup tutor.", id="sys"),
        HumanMessage("Mix Bach with Daft Punk", id="h1", name="ada"),
        HumanMessage(
            content=[
                {"type": "text", "text": "Look at this: "},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                "and this",
            ],
            id="h2",
        ),
        AIMessage(
            content="",
            id="a1",
            name="tutor",
            tool_calls=[tool_call(name="search", args={"q": "Bach", "limit": 3}, id="call_1")],
            invalid_tool_calls=[
                invalid_tool_call(name="search", args="{bad", id="call_bad", error="bad JSON")
            ],
            usage_metadata={
                "input_tokens": 12,
                "output_tokens": 7,
                "total_tokens": 19,
                "input_token_details": {"cache_read": 2},
            },
            response_metadata={"model_name": "scripted", "finish_reason": "tool_calls"},
        ),
        ToolMessage(
            "3 results",
            tool_call_id="call_1",
            id="t1",
            name="search",
            artifact={"results": [{"url": CITATION["url"], "score": 0.93}]},
        ),
        ToolMessage("boom", tool_call_id="call_bad", status="error", id="t2"),
        AIMessage(
            content=[
                {"type": "text", "text": "Mashups ", "annotations": [CITATION]},
                {"type": "text", "text": "layer two songs."},
            ],
            id="a2",
        ),
        ChatMessage(content="Keep the tempo.", role="critic", id="c1"),
        ChatMessage(content="Be brief.", role="Developer", id="c2"),
        FunctionMessage(content="42", name="calc", id="f1"),
        HumanMessageChunk(content="par", id="hc"),
        AIMessageChunk(
            content="Hel",
            id="ac",
            tool_call_chunks=[tool_call_chunk(name="search", args='{"q": "x"}', id="c3", index=0)],
            chunk_position="last",
        ),
        SystemMessageChunk(content="system chunk", id="sc"),
        ToolMessageChunk(content="out", tool_call_id="c3", artifact=[1, 2], id="tc"),
        ChatMessageChunk(content="chat chunk", role="user", id="cc"),
        FunctionMessageChunk(content="fn chunk", name="calc", id="fc"),
        HumanMessage("with an extra field", id="h3", custom_field={"k": [1, 2]}),
    ]


EXPECTED_ROLES = [
    "system", "user", "user", "assistant", "tool", "tool", "assistant", "assistant", "system",
    "tool", "user", "assistant", "system", "tool", "user", "tool", "user",
]  # fmt: skip


async def round_trip(db: AsyncConversationDB, messages: list[BaseMessage]) -> list[BaseMessage]:
    cid = f"c-{uuid.uuid4().hex}"
    await db.add_messages(cid, [encode_message(m) for m in messages], create=True)
    return [decode_message(row) for row in await db.get_messages(cid)]


async def test_every_message_type_round_trips_equal_and_same_class(
    db: AsyncConversationDB,
) -> None:
    originals = examples()
    decoded = await round_trip(db, originals)
    assert [type(m) for m in decoded] == [type(m) for m in originals]
    assert decoded == originals
    assert [m.model_dump() for m in decoded] == [m.model_dump() for m in originals]
    assert decoded[-1].model_extra == {"custom_field": {"k": [1, 2]}}


async def test_rows_hold_role_searchable_text_and_uid(db: AsyncConversationDB) -> None:
    originals = examples()
    await db.add_messages("c", [encode_message(m) for m in originals], create=True)
    rows = await db.get_messages("c")
    assert [row.role.value for row in rows] == EXPECTED_ROLES
    assert [row.uid for row in rows] == [m.id for m in originals]
    assert rows[2].content == "Look at this: and this"
    assert rows[6].content == "Mashups layer two songs."
    assert rows[3].content == ""


async def test_same_message_id_is_stored_once_and_messages_without_id_get_no_uid(
    db: AsyncConversationDB,
) -> None:
    turn = [encode_message(HumanMessage("hi", id="m1")), encode_message(AIMessage("yo"))]
    assert await db.add_messages("c", turn, create=True) == 2
    assert await db.add_messages("c", turn) == 1  # m1 again is skipped, the id-less one is not
    rows = await db.get_messages("c")
    assert [(row.uid, row.content) for row in rows] == [("m1", "hi"), (None, "yo"), (None, "yo")]


@pytest.mark.parametrize("message_id", ["  ", "a\x00b", "x" * 513])
async def test_ids_the_store_cannot_hold_become_a_digest_uid(
    db: AsyncConversationDB, message_id: str
) -> None:
    message = HumanMessage("x", id=message_id)
    uid = encode_message(message)["uid"]
    assert uid is not None and uid.startswith("sha256:") and len(uid) == 71
    assert await round_trip(db, [message, message]) == [message]


def test_an_empty_id_gives_no_uid() -> None:
    assert encode_message(HumanMessage("x", id=""))["uid"] is None


@pytest.mark.parametrize(
    ("role", "stored"),
    [
        ("user", "user"), ("HUMAN", "user"), ("assistant", "assistant"), ("ai", "assistant"),
        ("model", "assistant"), ("system", "system"), ("developer", "system"),
        ("tool", "tool"), ("function", "tool"), (" Critic ", "assistant"),
    ],
)  # fmt: skip
def test_chat_message_roles_map_to_store_roles(role: str, stored: str) -> None:
    assert store_role(ChatMessage(content="x", role=role)) == stored
    assert encode_message(ChatMessageChunk(content="x", role=role))["role"] == stored


def special_values() -> dict[str, Any]:
    """Values JSON cannot hold, each of which must come back equal and of the same type."""
    paris = ZoneInfo("Europe/Paris")
    return {
        "dst_gap": datetime(2024, 3, 31, 2, 30, tzinfo=paris),
        "dst_fold": datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=paris),
        "utc": datetime(2024, 1, 1, tzinfo=timezone.utc),
        "offset": datetime(2024, 1, 1, 8, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        "naive": datetime(2024, 1, 1, 12, 0, 0, 123456),
        "day": date(2024, 5, 1),
        "clock": time(12, 30, 1, 5),
        "clock_zone": time(1, 2, tzinfo=ZoneInfo("Asia/Tokyo")),
        "span": timedelta(days=-1, seconds=5, microseconds=7),
        "raw": b"\x00\xffdata",
        "buffer": bytearray(b"ab"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "price": Decimal("1.10"),
        "tiny": Decimal("-0E-7"),
        "pair": (1, "a", (2.5, None)),
        "tags": {"x", "y"},
        "frozen": frozenset({1, 2}),
        "inf": float("inf"),
        "minus_inf": float("-inf"),
        "int_keys": {1: "one", (2, 3): "tuple key", None: "none key"},
        "looks_tagged": {"__lit__": "datetime", "v": "not a tag"},
        "document": Document(page_content="p", metadata={"at": date(2024, 1, 1)}, id="d1"),
        "message": AIMessage("inner", id="inner", additional_kwargs={"when": date(2020, 2, 2)}),
    }


def assert_same(decoded: dict[str, Any], original: dict[str, Any]) -> None:
    assert set(decoded) == set(original)
    for key, value in original.items():
        assert type(decoded[key]) is type(value), key
        assert decoded[key] == value, key
    assert decoded["dst_gap"].tzinfo is ZoneInfo("Europe/Paris")
    assert decoded["dst_gap"].utcoffset() == original["dst_gap"].utcoffset()
    assert decoded["dst_fold"].fold == 1
    assert decoded["clock_zone"].tzinfo is ZoneInfo("Asia/Tokyo")


async def test_values_json_cannot_hold_come_back_exactly(db: AsyncConversationDB) -> None:
    values = special_values()
    message = AIMessage(
        content=[{"type": "text", "text": "t", "extras": {"at": values["day"]}}],
        additional_kwargs=values,
        response_metadata={"created": values["utc"]},
        tool_calls=[tool_call(name="plan", args={"when": values["dst_gap"]}, id="c1")],
        id="a",
    )
    artifact = ToolMessage("r", tool_call_id="c1", artifact=[values["document"], values], id="t")
    decoded_ai, decoded_tool = await round_trip(db, [message, artifact])
    assert decoded_ai == message and decoded_tool == artifact
    assert isinstance(decoded_ai, AIMessage) and isinstance(decoded_tool, ToolMessage)
    assert_same(decoded_ai.additional_kwargs, values)
    assert_same(decoded_tool.artifact[1], values)
    assert decoded_ai.tool_calls[0]["args"]["when"].tzinfo is ZoneInfo("Europe/Paris")


async def test_dict_key_order_is_kept_on_sqlite() -> None:
    """PostgreSQL's jsonb reorders keys, so this holds on SQLite only (dicts still compare
    equal on every backend)."""
    args = {"zeta": 1, "alpha": {"y": 2, "b": 3}}
    async with AsyncConversationDB(":memory:") as db:
        (decoded,) = await round_trip(db, [AIMessage("x", additional_kwargs=args)])
    assert isinstance(decoded, AIMessage)
    assert list(decoded.additional_kwargs) == ["zeta", "alpha"]
    assert list(decoded.additional_kwargs["alpha"]) == ["y", "b"]


def test_nan_is_kept() -> None:
    row = encode_message(HumanMessage("x", additional_kwargs={"score": float("nan")}))
    decoded = decode_via_row(row)
    assert math.isnan(decoded.additional_kwargs["score"])


def stored_row(row: dict[str, Any]) -> Message:
    """An encoded row as the store returns it (its payload through JSON text)."""
    return Message.model_construct(
        message_id=1, conversation_id="c", seq=1, role=row["role"], content=row["content"],
        timestamp=datetime.now(timezone.utc), metadata=None, uid=row["uid"],
        payload=json.loads(json.dumps(row["payload"], allow_nan=False)),
    )  # fmt: skip


def decode_via_row(row: dict[str, Any]) -> BaseMessage:
    return decode_message(stored_row(row))


class Color(Enum):
    RED = "red"


class StrColor(str, Enum):
    RED = "red"


@pytest.mark.parametrize("value", [Color.RED, StrColor.RED, object(), Path("x"), 1j])
def test_values_without_a_lossless_form_are_refused_with_their_path(value: Any) -> None:
    message = AIMessage("x", additional_kwargs={"k": [value]})
    with pytest.raises(InvalidInputError, match=r"additional_kwargs\['k'\]\[0\]"):
        encode_message(message)


def test_messages_that_are_not_langchain_messages_are_refused() -> None:
    class Custom(HumanMessage):
        pass

    with pytest.raises(InvalidInputError, match="RemoveMessage"):
        encode_message(RemoveMessage(id="x"))
    with pytest.raises(InvalidInputError, match="Custom"):
        encode_message(Custom(content="x"))


async def test_rows_written_without_payload_decode_by_role(db: AsyncConversationDB) -> None:
    for role in ("system", "user", "assistant", "tool"):
        await db.create_conversation("c") if role == "system" else None
        await db.add_message("c", role, f"{role} text")
    decoded = [decode_message(row) for row in await db.get_messages("c")]
    assert decoded == [
        SystemMessage("system text"),
        HumanMessage("user text"),
        AIMessage("assistant text"),
        ToolMessage("tool text", tool_call_id=""),
    ]


def test_a_payload_of_a_newer_format_is_refused_not_misread() -> None:
    row = stored_row(encode_message(AIMessage("x", id="a")))
    assert row.payload is not None
    row.payload["v"] = 2
    with pytest.raises(SchemaVersionError, match="payload format 2"):
        decode_message(row)
    row.payload = {"v": "another framework's", "data": {}}
    assert decode_message(row) == AIMessage("x", id="a")  # read by role, like no payload


def test_payload_reads_back_with_langchain_messages_from_dict() -> None:
    for original in examples():
        row = encode_message(original)
        payload = row["payload"]
        data = {"content": row["content"], **payload["data"]}
        (rebuilt,) = messages_from_dict([{"type": payload["type"], "data": data}])
        assert rebuilt == original


def test_payload_leaves_out_defaults_and_text_equal_to_the_content_column() -> None:
    row = encode_message(AIMessage("hello", id="a"))
    assert row["payload"] == {"v": 1, "type": "ai", "data": {"id": "a"}}
    assert row["content"] == "hello"


@pytest.mark.parametrize(
    ("raw", "column"), [("a\x00b", "ab"), ("lone \ud800 surrogate", "lone ? surrogate")]
)
async def test_text_databases_refuse_is_kept_in_the_payload(
    db: AsyncConversationDB, raw: str, column: str
) -> None:
    message = AIMessage(
        raw, id=raw, name=raw, additional_kwargs={raw: [raw]}, response_metadata={"k": raw}
    )
    row = encode_message(message)
    assert row["content"] == column
    assert await round_trip(db, [message]) == [message]


def typed(value: Any) -> Any:
    """`value` with the type of everything in it, so `1`, `1.0` and `True` compare unequal."""
    if isinstance(value, dict):
        return dict, [(typed(key), typed(item)) for key, item in value.items()]
    if isinstance(value, (list, tuple)):
        return type(value), [typed(item) for item in value]
    if isinstance(value, BaseModel):
        return type(value), typed(value.__dict__), typed(value.__pydantic_extra__ or {})
    return type(value), value


def assert_built_as_validation_builds(payload: dict[str, Any], content: str) -> None:
    """Decoding skips validation: it must build exactly what validation builds from the same
    fields, so a change of LangChain's fields, defaults or validators shows here first."""
    cls, data = _payload_fields(copy.deepcopy(payload), content)
    validated = cls(**data)
    decoded = decode_payload(payload, content)
    assert type(decoded) is type(validated)
    assert decoded.model_dump() == validated.model_dump()
    assert typed(decoded.__dict__) == typed(validated.__dict__)  # values, types, field order
    assert typed(decoded.model_extra) == typed(validated.model_extra)
    assert repr(decoded) == repr(validated)
    assert decoded == validated
    # The given fields; validation adds those its validators assign (a chunk's tool calls).
    assert decoded.model_fields_set == set(data) <= validated.model_fields_set


def test_decoded_messages_are_what_validation_builds() -> None:
    for original in examples():
        row = stored_row(encode_message(original))
        assert row.payload is not None
        assert_built_as_validation_builds(row.payload, row.content)


RAW_CALLS = [
    {"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"q": 1}'}},
    {"id": "c2", "type": "function", "function": {"name": "search", "arguments": "{oops"}},
]


def derived() -> list[BaseMessage]:
    """Messages whose validators derive or rewrite fields from the ones they are given."""
    server_call = {"type": "server_tool_call_chunk", "args": '{"a": 1}', "id": "s", "name": "web"}
    return [
        AIMessage("", additional_kwargs={"tool_calls": RAW_CALLS}),  # parsed to tool calls
        AIMessage("", additional_kwargs={"tool_calls": [{"no": "function"}]}),  # parsed to none
        AIMessageChunk(
            content="", additional_kwargs={"tool_calls": [{**RAW_CALLS[0], "index": 0}]}
        ),
        AIMessageChunk(content="", tool_calls=[tool_call(name="a", args={"x": 1}, id="1")]),
        AIMessageChunk(
            content=[server_call], response_metadata={"output_version": "v1"}, chunk_position="last"
        ),
        ToolMessage(content=(1, "a", {"k": 1}), tool_call_id=7),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("original", derived(), ids=lambda m: type(m).__name__)
def test_messages_with_derived_fields_are_what_validation_builds(original: BaseMessage) -> None:
    row = stored_row(encode_message(original))
    assert decode_message(row) == original
    assert row.payload is not None
    assert_built_as_validation_builds(row.payload, row.content)


def test_a_chunk_keeps_invalid_tool_calls_validation_would_derive_again() -> None:
    """Validating a chunk again derives its tool calls from its chunks, where an unclosed
    argument parses as {}: the stored invalid call would become a valid one. Decoding
    builds what was stored."""
    chunk = AIMessageChunk(
        content="", invalid_tool_calls=[invalid_tool_call(name="b", args="{", id="2", error="e")]
    )
    decoded = decode_via_row(encode_message(chunk))
    assert isinstance(decoded, AIMessageChunk)
    assert decoded == chunk and decoded.invalid_tool_calls == chunk.invalid_tool_calls


@pytest.mark.parametrize(
    "damage",
    [
        {"type": "no such type"},
        {"data": ["not", "a", "dict"]},
        {"data": {}, "type": "tool"},  # a ToolMessage without its required tool_call_id
        {"data": {"additional_kwargs": {"__lit__": "datetime", "v": "x"}},
         "tagged": ["additional_kwargs"]},
        {"data": {"additional_kwargs": {"__lit__": "no such tag", "v": 1}},
         "tagged": ["additional_kwargs"]},
    ],
)  # fmt: skip
def test_a_damaged_payload_is_a_corrupt_row(damage: dict[str, Any]) -> None:
    row = stored_row(encode_message(AIMessage("x", id="a")))
    assert row.payload is not None
    row.payload.update(damage)
    with pytest.raises(StorageCorruptError, match="the payload of message 1 of 'c' is not one"):
        decode_message(row)
    with pytest.raises(StorageCorruptError, match="a message payload is not one"):
        decode_payload(row.payload, row.content)


def test_decoding_does_not_compute_field_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic fills a missing default_factory field through inspect.signature, which made
    decoding 25 times slower: decoding must fill every field itself."""
    rows = [stored_row(encode_message(m)) for m in examples()]

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("FieldInfo.get_default called while decoding")

    monkeypatch.setattr(FieldInfo, "get_default", refuse)
    assert [decode_message(row) for row in rows] == examples()


# -- property test -------------------------------------------------------------------------

# Any code point, lone surrogates and NUL included: no backend stores those in text as is.
text = st.text(
    st.characters() | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.just("\x00"),
    max_size=20,
)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
specials = (
    st.datetimes(timezones=st.none() | st.timezones() | st.just(timezone.utc))
    | st.dates()
    | st.times(timezones=st.none() | st.timezones())
    | st.timedeltas()
    | st.binary(max_size=8)
    | st.uuids()
    | st.decimals(allow_nan=False)
)
hashables = scalars | specials | st.tuples(scalars, scalars)
values = st.recursive(
    hashables,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(text, inner, max_size=3)
        | st.dictionaries(st.integers() | st.just("__lit__"), inner, max_size=2)
        | st.tuples(inner, inner)
        | st.frozensets(hashables, max_size=3)
        | st.sets(scalars, max_size=3)
    ),
    max_leaves=8,
)
mappings = st.dictionaries(text, values, max_size=3)
text_blocks = st.builds(
    lambda t, a: {"type": "text", "text": t, "annotations": a}, text, st.lists(mappings, max_size=2)
)
image_blocks = st.builds(lambda u: {"type": "image_url", "image_url": {"url": u}}, text)
blocks = st.lists(
    text | text_blocks | image_blocks | st.dictionaries(text, values, max_size=2), max_size=3
)
contents = text | blocks
common = {
    "content": contents,
    "additional_kwargs": mappings,
    "response_metadata": mappings,
    "name": st.none() | text,
}
tool_calls = st.lists(
    st.builds(
        tool_call, name=text, args=st.dictionaries(text, values, max_size=2), id=st.none() | text
    ),
    max_size=2,
)
json_args = st.dictionaries(text, scalars, max_size=2).map(lambda args: json.dumps(args))
tool_call_chunks = st.lists(
    st.builds(tool_call_chunk, name=st.none() | text, args=st.none() | json_args | text,
              id=st.none() | text, index=st.none() | st.integers(0, 3)),
    max_size=2,
)  # fmt: skip
usage = st.none() | st.builds(
    lambda i, o: {"input_tokens": i, "output_tokens": o, "total_tokens": i + o},
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)
tool_fields = {
    **common,
    "tool_call_id": text,
    "status": st.sampled_from(["success", "error"]),
    "artifact": values,
}
messages = st.one_of(
    st.builds(HumanMessage, **common),
    st.builds(SystemMessage, **common),
    st.builds(AIMessage, **common, tool_calls=tool_calls, usage_metadata=usage),
    st.builds(ToolMessage, **tool_fields),
    st.builds(ChatMessage, **common, role=text),
    st.builds(FunctionMessage, **{**common, "name": text}),
    st.builds(HumanMessageChunk, **common),
    # A chunk's tool calls are parsed from its tool_call_chunks' JSON argument strings.
    st.builds(AIMessageChunk, **common, tool_call_chunks=tool_call_chunks, usage_metadata=usage),
    st.builds(ToolMessageChunk, **tool_fields),
    st.builds(ChatMessageChunk, **common, role=text),
)


@pytest.fixture(scope="module")
def memory_store() -> Any:
    store = ConversationDB(":memory:")
    yield store
    store.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(messages, min_size=1, max_size=4), ids=st.lists(st.none() | text, max_size=4))
def test_any_message_round_trips_through_a_real_store(
    memory_store: ConversationDB, batch: list[BaseMessage], ids: list[str | None]
) -> None:
    for index, (message, drawn) in enumerate(zip(batch, ids, strict=False)):
        # Unique ids: the store keeps one message per id, by design.
        message.id = None if drawn is None else f"{drawn}#{index}"
    cid = f"c-{uuid.uuid4().hex}"
    memory_store.add_messages(cid, [encode_message(m) for m in batch], create=True)
    rows = memory_store.get_messages(cid)
    decoded = [decode_message(row) for row in rows]
    assert [type(m) for m in decoded] == [type(m) for m in batch]
    assert decoded == batch
    for row in rows:
        assert row.payload is not None
        assert_built_as_validation_builds(row.payload, row.content)
