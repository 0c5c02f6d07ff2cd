"""Lossless conversion between LangChain messages and lit-memory message rows.

A message becomes a row of the core store (`lit_memory.AsyncConversationDB.add_messages`):

* ``role``: human -> ``user``, ai -> ``assistant``, system -> ``system``, tool and function ->
  ``tool``; a ChatMessage's own role is mapped when it names one of these (``user``/``human``,
  ``assistant``/``ai``/``model``, ``system``/``developer``, ``tool``/``function``, any case),
  and any other role is stored as ``assistant``. Chunks map like their message class.
* ``content``: the text, so full-text search finds it. For list content, the text blocks
  joined as ``message.text`` joins them. What databases refuse in text (NUL characters, lone
  surrogates) is dropped or replaced in this column only.
* ``uid``: the message's ``id``, so a retried write of the same message is stored once
  (``sha256:<hex digest>`` of an id the store cannot hold as it is: blank, over 512
  characters, or with a NUL character or a lone surrogate). Messages without an id get none.
* ``payload``: the lossless form, ``{"v": 1, "type": <message type>, "data": {...}}``, shaped
  like ``langchain_core.messages.message_to_dict``: ``data`` holds every field (and pydantic
  extra) whose value differs from the class default; ``content`` is left out when it is a
  string equal to the ``content`` column. ``"tagged"`` lists the fields of ``data`` holding
  tagged values (below), so decoding walks only those.

Values JSON cannot hold are written as ``{"__lit__": <tag>, "v": <value>}`` and decoded back to
an equal value of the same type:

* ``datetime``, ``date``, ``time``: ISO text, with ``"fold"`` when set; a ``ZoneInfo`` keeps its
  key in ``"tz"`` next to the wall time, any other time zone becomes its fixed UTC offset
  (which compares equal);
* a string that is not storable as text everywhere (a NUL character, which PostgreSQL's jsonb
  refuses, or a lone surrogate): base64 of its UTF-8 bytes, surrogates passed through;
* ``timedelta``: ``[days, seconds, microseconds]``; ``bytes``, ``bytearray``: base64;
  ``UUID``, ``Decimal``: text; non-finite floats: ``"inf"``, ``"-inf"``, ``"nan"``;
* ``tuple``, ``set``, ``frozenset``: a list; a dict whose keys are not all such storable
  strings, or with a ``"__lit__"`` key: ``[[key, value], ...]``;
* a ``Document`` (id, page content, metadata) and a nested message (its row's content and
  payload), e.g. in a ToolMessage's artifact.

Anything else (enums, subclasses of str or int, arbitrary objects) is refused with
`lit_memory.InvalidInputError` before anything is written: nothing is dropped silently.

Decoding rebuilds a message without validating its stored fields again, as validation would
build it (see `_Shape`); a payload this module cannot have written raises
`lit_memory.StorageCorruptError`.
"""

from __future__ import annotations

import base64
import hashlib
import math
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

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
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
)

from lit_memory import InvalidInputError, Message, SchemaVersionError, StorageCorruptError

__all__ = [
    "PAYLOAD_VERSION",
    "decode_message",
    "decode_payload",
    "encode_message",
    "store_role",
    "store_uid",
]

PAYLOAD_VERSION = 1
"""The version of the payload format written by `encode_message`."""

_MAX_UID = 512  # the core's limit on identifiers

TAG = "__lit__"
"""The key that marks a tagged value in a payload."""

_CLASSES: dict[str, type[BaseMessage]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        HumanMessage, AIMessage, SystemMessage, ToolMessage, ChatMessage, FunctionMessage,
        HumanMessageChunk, AIMessageChunk, SystemMessageChunk, ToolMessageChunk,
        ChatMessageChunk, FunctionMessageChunk,
    )
}  # fmt: skip
_TYPES = {cls: kind for kind, cls in _CLASSES.items()}

_ROLES = {
    HumanMessage: "user", AIMessage: "assistant", SystemMessage: "system", ToolMessage: "tool",
    FunctionMessage: "tool",
}  # fmt: skip
# Chunks subclass their message class, so they map like it; ChatMessage maps by its role.
_ROLE_BY_CLASS = {
    cls: role for cls in _TYPES for base, role in _ROLES.items() if issubclass(cls, base)
}

_CHAT_ROLES = {
    "user": "user", "human": "user", "assistant": "assistant", "ai": "assistant",
    "model": "assistant", "system": "system", "developer": "system", "tool": "tool",
    "function": "tool",
}  # fmt: skip

# Field defaults per class, to leave them out of payloads (most fields of most messages).
_DEFAULTS: dict[type[BaseMessage], dict[str, Any]] = {
    cls: {
        name: field.get_default(call_default_factory=True)
        for name, field in cls.model_fields.items()
        if not field.is_required()
    }
    for cls in _TYPES
}

# -- encoding ----------------------------------------------------------------------------------


def store_role(message: BaseMessage) -> str:
    """The store role of a message (see the module docstring for the mapping)."""
    if isinstance(message, ChatMessage):
        return _CHAT_ROLES.get(message.role.strip().lower(), "assistant")
    return _ROLE_BY_CLASS[type(message)]


def store_uid(message_id: str | None) -> str | None:
    """The store uid for a message id: the id itself, or a digest of an id the store cannot
    take as it is (blank, NUL characters, over 512 characters); None for no id."""
    if not message_id:
        return None
    if message_id.strip() and len(message_id) <= _MAX_UID and _storable(message_id):
        return message_id
    digest = hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest}"


def encode_message(message: BaseMessage) -> dict[str, Any]:
    """The store row for `message`: role, searchable text, uid and lossless payload.

    Raises `InvalidInputError` for a message class or a value it cannot store exactly.
    """
    kind = _TYPES.get(type(message))
    if kind is None:
        raise InvalidInputError(
            f"cannot store a {type(message).__name__}: only LangChain's message classes "
            f"({', '.join(cls.__name__ for cls in _TYPES)}) round-trip exactly"
        )
    text = _text(message.content)
    data, tagged = _fields(message, text)
    payload: dict[str, Any] = {"v": PAYLOAD_VERSION, "type": kind, "data": data}
    if tagged:
        payload["tagged"] = tagged
    return {
        "role": store_role(message),
        "content": text,
        "uid": store_uid(message.id),
        "payload": payload,
    }


def _text(content: str | list[str | dict[Any, Any]]) -> str:
    if isinstance(content, str):
        text = content
    else:
        text = "".join(
            block if isinstance(block, str) else block["text"]
            for block in content
            if isinstance(block, str)
            or (block.get("type") == "text" and isinstance(block.get("text"), str))
        )
    if _storable(text):
        return str(text)
    # The column only serves search: drop what databases refuse in text.
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _storable(text: str) -> bool:
    """Whether every backend stores `text` exactly: no NUL character, no lone surrogate."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fields(message: BaseMessage, text: str) -> tuple[dict[str, Any], list[str]]:
    defaults = _DEFAULTS[type(message)]
    data: dict[str, Any] = {}
    tagged: list[str] = []
    extra = message.__pydantic_extra__ or {}
    for name, value in [*message.__dict__.items(), *extra.items()]:
        if name == "type" or (name in defaults and _same(value, defaults[name])):
            continue
        if name == "content" and value == text and type(value) is str:
            continue
        encoded, has_tag = _encode(value, name)
        data[name] = encoded
        if has_tag:
            tagged.append(name)
    return data, tagged


def _same(value: Any, default: Any) -> bool:
    # `1 == True` and `0.0 == 0`: a default is skipped only when the type matches too.
    return type(value) is type(default) and value == default


def _encode(value: Any, path: str) -> tuple[Any, bool]:
    """`value` as JSON data, and whether it holds a tagged value."""
    kind = type(value)
    if kind is str:
        return (value, False) if _storable(value) else (_encode_raw_text(value), True)
    if kind is int or kind is bool or value is None:
        return value, False
    if kind is float:
        return (value, False) if math.isfinite(value) else (_tag("float", repr(value)), True)
    if kind is list:
        return _encode_list(value, path)
    if kind is dict:
        return _encode_dict(value, path)
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise InvalidInputError(
            f"cannot store {path}: a {kind.__module__}.{kind.__qualname__} has no lossless "
            "JSON form; convert it to JSON data (str, int, float, bool, None, list, dict) or "
            "to one of the types the lit_memory_langchain.codec docstring lists"
        )
    return encoder(value, path), True


def _encode_list(items: Iterable[Any], path: str) -> tuple[list[Any], bool]:
    encoded, any_tag = [], False
    for index, item in enumerate(items):
        value, has_tag = _encode(item, f"{path}[{index}]")
        encoded.append(value)
        any_tag = any_tag or has_tag
    return encoded, any_tag


def _encode_dict(mapping: dict[Any, Any], path: str) -> tuple[Any, bool]:
    if TAG in mapping or not all(type(key) is str and _storable(key) for key in mapping):
        pairs = [list(_encode_list(pair, path)[0]) for pair in mapping.items()]
        return _tag("dict", pairs), True
    encoded, any_tag = {}, False
    for key, item in mapping.items():
        value, has_tag = _encode(item, f"{path}[{key!r}]")
        encoded[key] = value
        any_tag = any_tag or has_tag
    return encoded, any_tag


def _tag(tag: str, value: Any) -> dict[str, Any]:
    return {TAG: tag, "v": value}


def _encode_raw_text(value: str) -> dict[str, Any]:
    # PostgreSQL's jsonb refuses "\u0000" and no backend takes a lone surrogate as text.
    return _tag("str", base64.b64encode(value.encode("utf-8", "surrogatepass")).decode("ascii"))


def _encode_clock(tag: str) -> Callable[[Any, str], dict[str, Any]]:
    def encode(value: datetime | time, path: str) -> dict[str, Any]:
        zone = value.tzinfo
        # A named zone keeps its key and the wall time: converting through an offset would
        # move a wall time that falls in a DST gap, and equal times in one zone compare
        # by wall time.
        named = zone.key if isinstance(zone, ZoneInfo) else None
        tagged = _tag(tag, (value if named is None else value.replace(tzinfo=None)).isoformat())
        if named is not None:
            tagged["tz"] = named
        if value.fold:
            tagged["fold"] = value.fold
        return tagged

    return encode


def _encode_document(value: Document, path: str) -> dict[str, Any]:
    metadata, _ = _encode(value.metadata, f"{path}.metadata")
    return _tag("document", {"id": value.id, "page_content": value.page_content, "meta": metadata})


def _encode_message(value: BaseMessage, path: str) -> dict[str, Any]:
    row = encode_message(value)
    return _tag("message", {"content": row["content"], "payload": row["payload"]})


_ENCODERS: dict[type, Callable[[Any, str], dict[str, Any]]] = {
    datetime: _encode_clock("datetime"),
    date: lambda value, path: _tag("date", value.isoformat()),
    time: _encode_clock("time"),
    timedelta: lambda value, path: _tag(
        "timedelta", [value.days, value.seconds, value.microseconds]
    ),
    bytes: lambda value, path: _tag("bytes", base64.b64encode(value).decode("ascii")),
    bytearray: lambda value, path: _tag("bytearray", base64.b64encode(value).decode("ascii")),
    uuid.UUID: lambda value, path: _tag("uuid", str(value)),
    Decimal: lambda value, path: _tag("decimal", str(value)),
    tuple: lambda value, path: _tag("tuple", _encode_list(value, path)[0]),
    set: lambda value, path: _tag("set", _encode_list(value, path)[0]),
    frozenset: lambda value, path: _tag("frozenset", _encode_list(value, path)[0]),
    Document: _encode_document,
    **{cls: _encode_message for cls in _TYPES},
}


# -- decoding ----------------------------------------------------------------------------------


def decode_message(row: Message) -> BaseMessage:
    """Rebuild the LangChain message stored in `row`, equal to the one that was written.

    Rows written without this module's payload (through the core API) come back as the
    message class of their role, with the row's uid as id. A payload of a newer format
    raises `SchemaVersionError` rather than being read as less than it holds, and a damaged
    one `StorageCorruptError`.
    """
    payload = row.payload
    version = None if payload is None else payload.get("v")
    if version == PAYLOAD_VERSION:
        assert payload is not None
        try:
            return _rebuild(payload, row.content)
        except _DAMAGE as exc:
            where = f"the payload of message {row.seq} of {row.conversation_id!r}"
            raise _damaged(where, exc) from exc
    if isinstance(version, int) and "type" in (payload or {}):
        raise SchemaVersionError(
            f"message {row.seq} of {row.conversation_id!r} has payload format {version}; this "
            f"lit-memory-langchain reads format {PAYLOAD_VERSION}: upgrade it"
        )
    return _from_role(row)


def decode_payload(payload: dict[str, Any], content: str) -> BaseMessage:
    """Rebuild a message from a payload written by `encode_message` and its content column.

    Raises `StorageCorruptError` for a payload `encode_message` cannot have written.
    """
    try:
        return _rebuild(payload, content)
    except _DAMAGE as exc:
        raise _damaged("a message payload", exc) from exc


# What a damaged payload raises on its way through decoding (a missing key, a value of the
# wrong type, text that does not parse, a field validation finds missing).
_DAMAGE = (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError)


def _damaged(where: str, exc: Exception) -> StorageCorruptError:
    return StorageCorruptError(
        f"{where} is not one lit-memory-langchain wrote ({exc!r}): the row is damaged, or "
        "was written through the core API in this codec's format"
    )


def _rebuild(payload: dict[str, Any], content: str) -> BaseMessage:
    cls, data = _payload_fields(payload, content)
    return _SHAPES[cls].build(data)


def _payload_fields(payload: dict[str, Any], content: str) -> tuple[type[BaseMessage], Any]:
    """The message class of `payload` and the fields a validating build would be given."""
    cls = _CLASSES[payload["type"]]
    data = dict(payload["data"])
    for name in payload.get("tagged", ()):
        data[name] = _decode(data[name])
    if "content" not in data:
        data["content"] = content
    return cls, data


class _Shape:
    """How to build one message class from the fields a payload holds, without pydantic
    validation (which was most of a read's cost) and with the same result.

    Payloads hold fields as validation left them when the message was built, and LangChain's
    validators only normalize and derive values (coerced content, canonical tool calls, a
    chunk's tool calls from its chunks): given their own output, they give it back. So a
    message is built as validation builds it: every field in declaration order, fresh
    containers for default factories, extras apart, and the payload's fields as the fields
    set (a validator that assigns a field left at its default, as AIMessageChunk's do, adds
    it there: that only shows in ``model_dump(exclude_unset=True)``). A class whose
    construction involves more (aliases, private attributes, a post-init hook, a default
    that is not an immutable value) is built through validation, and so is a payload
    missing a required field, which validation reports.
    """

    def __init__(self, cls: type[BaseMessage]) -> None:
        fields = cls.model_fields
        self.cls = cls
        self.fields = frozenset(fields)
        self.required = frozenset(name for name, field in fields.items() if field.is_required())
        # Required fields hold a place in declaration order; a payload always sets them.
        self.template = {
            name: None if field.default_factory is not None else field.default
            for name, field in fields.items()
        }
        self.factories = [
            (name, field.default_factory)
            for name, field in fields.items()
            if field.default_factory is not None
        ]
        self.exact = _builds_exactly(cls)

    def build(self, data: dict[str, Any]) -> BaseMessage:
        """The message of `data` (fields and extras), equal to ``cls(**data)``."""
        if not self.exact or not self.required <= data.keys():
            return self.cls(**data)
        fields = self.template.copy()
        for name, factory in self.factories:
            if name not in data:
                fields[name] = factory()  # type: ignore[call-arg]
        extra: dict[str, Any] = {}
        if data.keys() <= self.fields:
            fields.update(data)
        else:
            for name, value in data.items():
                (fields if name in self.fields else extra)[name] = value
        message = self.cls.__new__(self.cls)
        _set(message, "__dict__", fields)
        _set(message, "__pydantic_fields_set__", set(data))
        _set(message, "__pydantic_extra__", extra)
        _set(message, "__pydantic_private__", None)
        return message


_set = object.__setattr__
_IMMUTABLE = (type(None), str, int, float, bool, bytes)


def _builds_exactly(cls: type[BaseMessage]) -> bool:
    """Whether `_Shape.build` gives what validation gives for `cls`: nothing of pydantic's
    construction beyond fields, defaults, extras and validators is in play."""
    fields = cls.model_fields.values()
    return (
        cls.model_config.get("extra") == "allow"
        and cls.__pydantic_post_init__ is None
        and not cls.__private_attributes__
        and not cls.__pydantic_root_model__
        and all(field.alias is None and field.validation_alias is None for field in fields)
        and all(
            field.default_factory in (dict, list)
            if field.default_factory is not None
            else isinstance(field.default, _IMMUTABLE)
            for field in fields
            if not field.is_required()
        )
    )


_SHAPES = {cls: _Shape(cls) for cls in _TYPES}


def _from_role(row: Message) -> BaseMessage:
    role, text, uid = str(row.role), row.content, row.uid
    if role == "user":
        return HumanMessage(content=text, id=uid)
    if role == "system":
        return SystemMessage(content=text, id=uid)
    if role == "tool":
        return ToolMessage(content=text, tool_call_id=uid or "", id=uid)
    return AIMessage(content=text, id=uid)


def _decode(value: Any) -> Any:
    if type(value) is list:
        return [_decode(item) for item in value]
    if type(value) is not dict:
        return value
    tag = value.get(TAG)
    if tag is None:
        return {key: _decode(item) for key, item in value.items()}
    return _DECODERS[tag](value)


def _decode_clock(parse: Callable[[str], Any]) -> Callable[[dict[str, Any]], Any]:
    def decode(tagged: dict[str, Any]) -> Any:
        value = parse(tagged["v"])
        zone = tagged.get("tz")
        if zone is not None:
            value = value.replace(tzinfo=ZoneInfo(zone))
        return value.replace(fold=tagged.get("fold", 0))

    return decode


def _decode_document(tagged: dict[str, Any]) -> Document:
    value = tagged["v"]
    return Document(
        id=value["id"], page_content=value["page_content"], metadata=_decode(value["meta"])
    )


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "str": lambda tagged: base64.b64decode(tagged["v"]).decode("utf-8", "surrogatepass"),
    "float": lambda tagged: float(tagged["v"]),
    "dict": lambda tagged: {_decode(key): _decode(item) for key, item in tagged["v"]},
    "datetime": _decode_clock(datetime.fromisoformat),
    "date": lambda tagged: date.fromisoformat(tagged["v"]),
    "time": _decode_clock(time.fromisoformat),
    "timedelta": lambda tagged: timedelta(*tagged["v"]),
    "bytes": lambda tagged: base64.b64decode(tagged["v"]),
    "bytearray": lambda tagged: bytearray(base64.b64decode(tagged["v"])),
    "uuid": lambda tagged: uuid.UUID(tagged["v"]),
    "decimal": lambda tagged: Decimal(tagged["v"]),
    "tuple": lambda tagged: tuple(_decode(tagged["v"])),
    "set": lambda tagged: set(_decode(tagged["v"])),
    "frozenset": lambda tagged: frozenset(_decode(tagged["v"])),
    "document": _decode_document,
    "message": lambda tagged: _rebuild(tagged["v"]["payload"], tagged["v"]["content"]),
}
