"""Scrubbing secrets from what the store keeps: tool inputs and outputs, errors and metadata.

`default_redactor` is on by default in `AsyncConversationDB(redact=...)`. It replaces common
credentials with ``[REDACTED]``: provider API keys (``sk-...``, ``tvly-...``, ``AIza...``,
``AKIA...``, GitHub and Slack tokens), bearer tokens, ``password=...``-style pairs, passwords
in URLs (``scheme://user:pass@host``), and the values of dict keys that name a secret
(``password``, ``api_key``, ``token``, ``authorization``, ...). Message content and lossless
payloads are not touched: they are the conversation itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["MASK", "Redactor", "default_redactor", "redact_text"]

MASK = "[REDACTED]"

Redactor = Callable[[Any], Any]
"""Takes a value about to be stored (text, or JSON-like data) and returns what to store."""

_TOKENS = re.compile(
    r"\b(?:sk-[A-Za-z0-9_\-]{16,}"
    r"|tvly-[A-Za-z0-9_\-]{16,}"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r"|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,})"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}")
_URL_PASSWORD = re.compile(r"\b([a-z][a-z0-9+.\-]*://[^/\s:@]+):[^/\s@]+@", re.IGNORECASE)
_PAIR = re.compile(
    r"(?i)\b(password|passwd|pwd|api[_\-]?key|secret|client[_\-]?secret|access[_\-]?token"
    r"|refresh[_\-]?token|auth[_\-]?token|token)(\s*[=:]\s*)(\"?)([^\s&\"',;]+)"
)
_SECRET_KEYS = frozenset(
    {
        "password", "passwd", "pwd", "apikey", "secret", "clientsecret", "token", "accesstoken",
        "refreshtoken", "authtoken", "authorization", "privatekey", "sessiontoken", "cookie",
    }
)  # fmt: skip


def redact_text(text: str) -> str:
    """`text` with every recognised credential replaced by ``[REDACTED]``."""
    text = _TOKENS.sub(MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    return _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", text)


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("_", "").replace("-", "") in _SECRET_KEYS


def default_redactor(value: Any) -> Any:
    """Scrub secrets from text or JSON-like data (dicts, lists, tuples of them), recursively."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: (MASK if _is_secret_key(k) and v is not None else default_redactor(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(default_redactor(v) for v in value)
    return value
