"""What a tool's input and output become before they are stored: plain data, then capped text.

Tool payloads are arbitrary objects (messages, Documents, pydantic models, bytes). They are
turned into JSON-compatible data first, so a redaction hook sees one simple shape; after the
hook has scrubbed them, the text is capped so one huge page cannot bloat the database (after,
not before: a cut could split a secret so that no pattern recognises it).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage

__all__ = ["to_data", "to_text", "truncate"]

_MAX_DEPTH = 20


def to_data(value: Any, depth: int = 0) -> Any:
    """`value` as JSON-compatible data; messages become their content, Documents a dict,
    models and dataclasses their fields, anything else its string form."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if depth > _MAX_DEPTH:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_data(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_data(item, depth + 1) for item in value]
    return _object_data(value, depth)


def _object_data(value: Any, depth: int) -> Any:
    if isinstance(value, BaseMessage):
        return to_data(value.content, depth + 1)
    if isinstance(value, Document):
        return {"page_content": value.page_content, "metadata": to_data(value.metadata, depth + 1)}
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_data(dataclasses.asdict(value), depth + 1)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return to_data(dump(), depth + 1)
        except Exception:  # a model that cannot dump itself is stored by its str form
            pass
    return str(value)


def to_text(data: Any) -> str | None:
    """Data as the text to store: a string as it is, anything else as JSON."""
    if data is None or isinstance(data, str):
        return data
    return json.dumps(data, ensure_ascii=False, default=str)


def truncate(text: str | None, max_bytes: int | None) -> str | None:
    """`text` cut to at most `max_bytes` UTF-8 bytes, ending with a marker when it was cut."""
    if text is None or max_bytes is None:
        return text
    size = len(text.encode("utf-8"))
    if size <= max_bytes:
        return text
    marker = f"…[truncated by lit-memory: {size} bytes cut to {max_bytes}]"
    room = max(max_bytes - len(marker.encode("utf-8")), 0)
    # Cutting the bytes may split a character: drop the partial one.
    kept = text.encode("utf-8")[:room].decode("utf-8", "ignore")
    return kept + marker
