"""Tests of lit_memory.backends._rows: stored rows read back exactly as the plain calls read
them, and a row that cannot be what we wrote is a corrupt database."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lit_memory import Message, MessageRole, StorageCorruptError
from lit_memory.backends import _rows

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
blanks = st.text(" \t\r\n", max_size=2)


def outcome(read: Any, value: Any) -> Any:
    """What `read(value)` returns, or the type and text of what it raises."""
    try:
        return "ok", json.dumps(read(value))  # NaN too: compared as text
    except ValueError as exc:
        return type(exc), str(exc)


@given(value=json_values, before=blanks, after=blanks, compact=st.booleans())
def test_loads_reads_stored_json_as_json_loads(
    value: Any, before: str, after: str, compact: bool
) -> None:
    text = json.dumps(value, separators=(",", ":") if compact else None)
    padded = before + text + after
    assert outcome(_rows.loads, padded) == outcome(json.loads, padded)


@pytest.mark.parametrize(
    "text",
    ["", " ", "{", '{"a":1} x', '{"a":1}{}', "\ufeff{}", "[1,]", "NaN", "-Infinity", "nul"],
)
def test_loads_fails_and_succeeds_where_json_loads_does(text: str) -> None:
    assert outcome(_rows.loads, text) == outcome(json.loads, text)


@pytest.mark.parametrize("value", [None, {"already": "decoded"}, [1], 3])
def test_loads_passes_decoded_values_through(value: Any) -> None:
    assert _rows.loads(value) is value


def test_loads_reads_bytes() -> None:
    assert _rows.loads(b'{"a": [1]}') == {"a": [1]}


def message_row(role: str = "assistant", payload: str | None = '{"v":1}') -> tuple[Any, ...]:
    stamp = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc).isoformat()
    return (1, "c", 1, role, "text", stamp, None, "u", payload)


@pytest.mark.parametrize("role", MessageRole.values())
def test_every_role_reads_back_as_its_member(role: str) -> None:
    message = _rows.message(message_row(role))
    assert message.role is MessageRole(role)
    assert message == Message.model_validate(message.model_dump())


@pytest.mark.parametrize(
    "row", [message_row("USER"), message_row("critic"), message_row(payload="{oops")]
)
def test_a_message_row_we_cannot_have_written_is_a_corrupt_database(row: tuple[Any, ...]) -> None:
    with pytest.raises(StorageCorruptError, match="restore it from a backup"):
        _rows.message(row)
