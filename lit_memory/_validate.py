"""Checks every value before anything is written: a refused value raises InvalidInputError."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .errors import InvalidInputError

MAX_ID_LENGTH = 512
MAX_JSON_DEPTH = 100
MAX_INT = 2**63 - 1  # what every backend's integer columns hold


def text(name: str, value: Any) -> str:
    """A string that every backend stores exactly (no NUL byte, valid Unicode)."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidInputError(f"{name} contains a NUL byte, which databases cannot store as text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{name} is not valid Unicode (a lone surrogate?): {exc}") from None
    return value


def optional_text(name: str, value: Any) -> str | None:
    """`text`, or None."""
    return None if value is None else text(name, value)


def identifier(name: str, value: Any) -> str:
    """A non-empty id string of at most 512 characters."""
    checked = text(name, value)
    if not checked.strip():
        raise InvalidInputError(f"{name} must not be empty")
    if len(checked) > MAX_ID_LENGTH:
        raise InvalidInputError(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return checked


def optional_identifier(name: str, value: Any) -> str | None:
    """`identifier`, or None; a UUID is taken by its string form."""
    if value is None:
        return None
    return identifier(name, str(value) if isinstance(value, uuid.UUID) else value)


def row_id(name: str, value: Any, *, maximum: int = MAX_INT) -> int:
    """A positive integer row id (at most `maximum`)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInputError(f"{name} must be an integer from 1 to {maximum}, not {value!r}")
    return value


def check_json(name: str, value: Any) -> None:
    """Refuse anything JSON would not give back exactly: only dicts with string keys, lists,
    strings, ints, finite floats, bools and None, nested at most MAX_JSON_DEPTH deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidInputError(f"{name} is nested deeper than {MAX_JSON_DEPTH} levels")
        if item is None or isinstance(item, (str, bool, int)):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInputError(f"{name} holds {item!r}, which JSON cannot hold")
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise InvalidInputError(f"{name} has a non-string key {key!r}")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        else:
            raise InvalidInputError(
                f"{name} holds a {type(item).__name__}, which JSON would not give back as "
                "it was; use dicts, lists, strings, numbers, booleans and None"
            )


def json_text(name: str, value: Any, *, require_object: bool = False) -> str | None:
    """Encode JSON-able data exactly (see `check_json`); None stays None."""
    if value is None:
        return None
    if require_object and not isinstance(value, dict):
        raise InvalidInputError(f"{name} must be a dict, not {type(value).__name__}")
    check_json(name, value)
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInputError(f"{name} cannot be stored as JSON: {exc}") from None
    return text(name, encoded)


def data_text(name: str, value: Any) -> str | None:
    """Tool input/output: a string as given, anything else as JSON."""
    if value is None or isinstance(value, str):
        return optional_text(name, value)
    return json_text(name, value)


def score(value: Any, name: str = "relevance_score") -> float | None:
    """A finite number (or None), as a float."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"{name} must be a finite number, not {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int past the float range
        number = math.inf
    if not math.isfinite(number):
        raise InvalidInputError(f"{name} must be a finite number, not {value!r}")
    return number


def duration(value: Any) -> float | None:
    """A non-negative, finite duration in milliseconds (or None)."""
    number = score(value, "duration_ms")
    if number is not None and number < 0:
        raise InvalidInputError(f"duration_ms must be >= 0, not {value!r}")
    return number


def timestamp(name: str, value: Any) -> datetime | None:
    """An aware datetime in UTC (a naive one is taken as UTC), or None."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{name} must be a datetime, not {type(value).__name__}")
    moment: datetime = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:
        raise InvalidInputError(f"{name} {value!r} is outside the range of UTC dates") from None
    # Drivers store the calendar's ends as -infinity/+infinity, which do not read back.
    if moment.replace(tzinfo=None) in (datetime.min, datetime.max):
        raise InvalidInputError(f"{name} must lie strictly inside the calendar's range")
    return moment


def limit(name: str, value: Any, *, allow_none: bool = True) -> int | None:
    """A non-negative integer bound (or None when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise InvalidInputError(f"{name} must be an integer from 0 to {MAX_INT}, not {value!r}")
    return value


def items(name: str, value: Any) -> list[Any]:
    """A batch given as an iterable of items (not a string or a single mapping)."""
    if value is None or isinstance(value, (str, bytes, Mapping)):
        raise InvalidInputError(f"{name} must be a list of items, not {type(value).__name__}")
    try:
        return list(value)
    except TypeError:
        raise InvalidInputError(f"{name} must be a list of items, not {value!r}") from None
