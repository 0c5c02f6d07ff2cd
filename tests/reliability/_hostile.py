"""Hostile values for the public API, and a strict notion of "read back exactly".

Everything the hostile-input tests throw at the store comes from here: strings that databases,
drivers and JSON encoders trip on, SQL and full-text injection attempts, wrong types, numbers
at and past the 64-bit and float limits, timestamps at the calendar's edges, and metadata that
is not quite JSON (tuples, non-string keys, sets, objects, NaN, infinities, deep nesting).
"""

from __future__ import annotations

import math
import uuid
from collections import namedtuple
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

INJECTIONS = [
    "'; DROP TABLE messages; --",
    "' OR 1=1 --",
    '" OR ""="',
    "Robert'); DROP TABLE conversations;--",
    "1; DELETE FROM conversations WHERE 1=1",
    "x' UNION SELECT sql FROM sqlite_master --",
    "'||(SELECT pg_sleep(5))||'",
    "$1",
    "?",
    ":name",
    "%s",
    "%(x)s",
    "{}",
    "{0}",
    "\\",
    "\\x00",
    "\\u0000",
    "NULL",
]
"""SQL written into values: stored as text, never run."""

AWKWARD = [
    "",
    " ",
    "\r\n\t",
    "😀🎷🎺",
    "\u202e\u200b\ufeff",
    "ß" * 3 + "İ",
    "*",
    '"',
    "NEAR(a b)",
    "a OR b",
    "-x",
    "a:b",
    "full:x",
    "locked:x",
    "readonly:x",
    "malformed:x",
    "/etc/shadow",
    "../../x",
    "file:///etc/passwd",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "x" * 513,
    "y" * 20_000,
]
"""Valid text that is awkward somewhere: empty, control and bidi characters, FTS5 syntax,
words that appear in database error messages, paths, long strings."""

INVALID_TEXT = ["\x00", "a\x00b", "\ud800", "x\udfffy", "\udc80\udc80"]
"""Text no backend can store exactly: NUL bytes, lone surrogates."""

WRONG_TYPES: list[Any] = [
    0, -1, 1.5, True, b"bytes", b"\xff\xfe invalid utf-8", bytearray(b"x"), [], {}, ("t",),
    {"set"}, object(), float("nan"), Decimal("1.5"), uuid.UUID(int=7),
]  # fmt: skip

BIG_INTS = [2**31, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**400]

Point = namedtuple("Point", "x y")


def nested(depth: int) -> Any:
    """A list/dict nesting `depth` levels deep (built without recursion)."""
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


NOT_JSON: list[Any] = [
    {1, 2}, object(), b"raw", datetime(2026, 1, 1), Decimal("1.5"), complex(1, 2),
    float("nan"), float("inf"), -float("inf"), 10**5000, nested(10_000), Point(1, 2),
]  # fmt: skip

EDGE_TIMES = [
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
    datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-5))),
    datetime(1, 1, 1),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    datetime(1970, 1, 1, tzinfo=timezone.utc),
]


def _with_surrogate(parts: tuple[str, str, str]) -> str:
    return parts[0] + parts[1] + parts[2]


def texts() -> st.SearchStrategy[str]:
    """Valid text, awkward text and text no backend can store."""
    return st.one_of(
        st.text(max_size=30),
        st.sampled_from(INJECTIONS + AWKWARD),
        st.sampled_from(INVALID_TEXT),
        st.tuples(
            st.text(max_size=5), st.sampled_from(INVALID_TEXT + INJECTIONS), st.text(max_size=5)
        ).map(_with_surrogate),  # fmt: skip
    )


def anything_for_text() -> st.SearchStrategy[Any]:
    """What a caller might pass where text is expected."""
    return st.one_of(texts(), texts(), st.sampled_from(WRONG_TYPES))


def ids() -> st.SearchStrategy[Any]:
    """Ids: short usual ones (so they repeat), hostile text and wrong types."""
    return st.one_of(st.sampled_from(["a", "b", "base"]), anything_for_text())


def numbers() -> st.SearchStrategy[Any]:
    """Scores and durations: ordinary, at the limits, and not numbers at all."""
    return st.one_of(
        st.floats(),
        st.integers(-10, 10),
        st.sampled_from(BIG_INTS + [1e308, 5e-324, -0.0, "1.0", None, True]),
    )


def counts() -> st.SearchStrategy[Any]:
    """Row ids, limits and offsets."""
    return st.one_of(
        st.integers(-3, 50),
        st.sampled_from(BIG_INTS + [None, True, 1.5, "3"]),
    )


def json_like() -> st.SearchStrategy[Any]:
    """JSON-ish data, including what JSON would silently change (tuples, non-text keys)."""
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts())
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.one_of(texts(), st.integers()), inner, max_size=3),
            st.tuples(inner, inner),
        ),
        max_leaves=8,
    )


def metadata() -> st.SearchStrategy[Any]:
    """What a caller might pass as metadata."""
    return st.one_of(
        st.none(),
        st.dictionaries(texts(), json_like(), max_size=3),
        st.dictionaries(texts(), st.sampled_from(NOT_JSON), min_size=1, max_size=2),
        json_like(),
        st.sampled_from(NOT_JSON + WRONG_TYPES),
    )


def data() -> st.SearchStrategy[Any]:
    """Tool inputs and outputs: text, or data stored as JSON."""
    return st.one_of(anything_for_text(), metadata())


def times() -> st.SearchStrategy[Any]:
    """Timestamps: aware, naive, at the calendar's edges, and not timestamps."""
    zones = st.sampled_from(
        [None, timezone.utc, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]
    )
    return st.one_of(
        st.none(),
        st.datetimes(timezones=zones),
        st.sampled_from(EDGE_TIMES + ["2026-01-01T00:00:00Z", 0, 1.5]),
    )


def enum_like(values: list[str]) -> st.SearchStrategy[Any]:
    """A valid value (in any case, padded) or anything else."""
    valid = st.sampled_from(values)
    return st.one_of(
        valid,
        valid.map(lambda v: f" {v.upper()} "),
        anything_for_text(),
    )


# -- strict comparison ----------------------------------------------------------------------


def same(given: Any, stored: Any) -> bool:
    """Whether `stored` is exactly `given`: equal, and of the same types all the way down
    (so a tuple is not a list, 1 is not 1.0 or True, -0.0 is not 0.0, {1: x} is not {"1": x}).
    Iterative, so deeply nested values compare without recursion."""
    stack = [(given, stored)]
    while stack:
        a, b = stack.pop()
        if type(a) is not type(b):
            return False
        if isinstance(a, dict):
            if list(a) != list(b) and set(a) != set(b):
                return False
            stack.extend((a[k], b[k]) for k in a)
        elif isinstance(a, (list, tuple)):
            if len(a) != len(b):
                return False
            stack.extend(zip(a, b, strict=True))
        elif isinstance(a, float):
            if not (a == b and math.copysign(1.0, a) == math.copysign(1.0, b)):
                return False
        elif a != b:
            return False
    return True


def as_id(value: Any) -> str | None:
    """What an id should read back as: text as given, a UUID as its text; anything else
    (bytes, numbers, lists, objects) should have been refused."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    raise AssertionError(f"an id of type {type(value).__name__} ({value!r:.60}) was accepted")
