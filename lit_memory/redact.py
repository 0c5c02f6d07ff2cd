"""Scrubbing secrets from what the store keeps: tool inputs and outputs, errors and metadata.

`default_redactor` is on by default in `AsyncConversationDB(redact=...)`. It replaces common
credentials with ``[REDACTED]``: provider API keys (``sk-...``, ``tvly-...``, ``AIza...``,
``AKIA...``, Stripe, GitHub and Slack tokens), PEM private keys, bearer tokens,
``password=...``-style pairs, passwords in URLs (``scheme://user:pass@host``), and the values
of dict keys that name a secret (``password``, ``x-api-key``, ``db_password``, ``token``,
``authorization``, ...). Message content and lossless
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
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,})"
)
_PEM_KEY = re.compile(
    r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[\s\S]{0,16384}?-----END [A-Z ]{0,40}PRIVATE KEY-----"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}")
# Every repeat is bounded: the patterns run over whatever tools return (scraped pages
# included), and unbounded ones backtrack quadratically on long crafted input.
_URL_PASSWORD = re.compile(
    r"\b([a-z][a-z0-9+.\-]{0,31}://[^/\s:@]{0,256}):[^/\s@]{1,256}@", re.IGNORECASE
)
_PAIR = re.compile(
    r"(?i)(?<![a-z0-9])((?:[a-z0-9]{1,32}[_\-]){0,4}(?:password|passwd|pwd|api[_\-]?key"
    r"|client[_\-]?secret|access[_\-]?token|refresh[_\-]?token|auth[_\-]?token|token"
    r"|secret(?:[_\-]?(?:access[_\-]?)?key)?))"
    r"([\"']?\s*[=:]\s*)([\"']?)([^\s&\"',;}]{1,4096})"
)
# A dict key naming a secret, by its ending once "-" and "_" are dropped: x-api-key,
# db_password, aws_secret_access_key, session_token; not total_tokens or max_tokens.
_SECRET_KEY_ENDINGS = (
    "password", "passwd", "pwd", "apikey", "secret", "secretkey", "token", "accesskey",
    "authorization", "privatekey", "cookie",
)  # fmt: skip
_MAX_DEPTH = 100


# What each pattern cannot match without: looking for a few literals (spelled out, no loop:
# this runs over every stored field) costs far less than running the patterns, and most text
# (search results, tool output) holds none of them. The case-insensitive ones are looked for
# in the casefolded text and hold no "i": under IGNORECASE "ſ" matches "s" and "K" (Kelvin)
# matches "k", and casefolding maps them there, but "ı" and "İ" match "i" and do not
# casefold to a plain "i".


def _may_hold_token(t: str) -> bool:
    return (
        "sk-" in t or "tvly-" in t or "AIza" in t or "AKIA" in t or "xox" in t
        or "k_live_" in t or "k_test_" in t or "github_pat_" in t
        or "ghp_" in t or "gho_" in t or "ghu_" in t or "ghs_" in t or "ghr_" in t
    )  # fmt: skip


def _may_hold_pair(folded: str) -> bool:
    return (
        "pass" in folded or "pwd" in folded or "key" in folded or "secret" in folded
        or "token" in folded
    )  # fmt: skip


def redact_text(text: str) -> str:
    """`text` with every recognised credential replaced by ``[REDACTED]``."""
    if "-----BEGIN " in text:
        text = _PEM_KEY.sub(MASK, text)
    if _may_hold_token(text):
        text = _TOKENS.sub(MASK, text)
    folded = text.casefold()
    if "bearer" in folded or "bas" in folded:
        text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    if "@" in text and "://" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    if _may_hold_pair(folded):
        text = _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", text)
    return text


def _is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    return key.lower().replace("_", "").replace("-", "").endswith(_SECRET_KEY_ENDINGS)


def default_redactor(value: Any) -> Any:
    """Scrub secrets from text or JSON-like data (dicts, lists, tuples of them), recursively."""
    return _scrub(value, 0)


def _scrub(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if depth >= _MAX_DEPTH:
        return value  # deeper than the store accepts: it refuses such data anyway
    if isinstance(value, dict):
        return {
            k: (MASK if _is_secret_key(k) and v is not None else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_scrub(v, depth + 1) for v in value)
    return value
