"""Checks every value before anything is written: a refused value raises InvalidInputError."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

from .errors import InvalidInputError

MAX_ID_LENGTH = 512
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
    """`identifier`, or None; UUIDs and other objects are taken by their string form."""
    if value is None:
        return None
    return identifier(name, value if isinstance(value, str) else str(value))


def row_id(name: str, value: Any, *, maximum: int = MAX_INT) -> int:
    """A positive integer row id (at most `maximum`)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInputError(f"{name} must be an integer from 1 to {maximum}, not {value!r}")
    return value


def json_text(name: str, value: Any, *, require_object: bool = False) -> str | None:
    """Encode JSON-able data (NaN and infinity refused); None stays None."""
    if value is None:
        return None
    if require_object and not isinstance(value, dict):
        raise InvalidInputError(f"{name} must be a dict, not {type(value).__name__}")
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


def score(value: Any) -> float | None:
    """A finite relevance score (or None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(f"relevance_score must be a finite number, not {value!r}")
    return float(value)


def duration(value: Any) -> float | None:
    """A non-negative, finite duration in milliseconds (or None)."""
    if value is None:
        return None
    number = score(value)
    if number is None or number < 0:
        raise InvalidInputError(f"duration_ms must be >= 0, not {value!r}")
    return number


def timestamp(name: str, value: Any) -> datetime | None:
    """An aware datetime in UTC (a naive one is taken as UTC), or None."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{name} must be a datetime, not {type(value).__name__}")
    moment: datetime = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def limit(name: str, value: Any, *, allow_none: bool = True) -> int | None:
    """A non-negative integer bound (or None when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise InvalidInputError(f"{name} must be an integer from 0 to {MAX_INT}, not {value!r}")
    return value
