"""lit-memory for LangChain: chat history, agent middleware, callbacks and history windows.

Names are imported on first use, so importing the package is cheap and works without the
optional ``langchain`` extra (needed by `LitMemoryMiddleware` only) and without LangChain's
deprecated ``BaseChatMessageHistory``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it; loaded by __getattr__ on first access.
_EXPORTS = {
    "LitChatMessageHistory": "history",
    "LitMemoryMiddleware": "middleware",
    "close_shared_stores": "_store",
    "decode_message": "codec",
    "encode_message": "codec",
    "approximate_token_count": "window",
    "format_sources": "window",
    "select_window": "window",
    "validate_window": "window",
    # Callback handlers (callbacks.py, phases.py) and source extraction (sources.py).
    "LitCallbackHandler": "callbacks",
    "MissingConversationWarning": "callbacks",
    "PhaseTracker": "phases",
    "PhaseRule": "phases",
    "DEFAULT_PHASE_RULES": "phases",
    "ExtractedSource": "sources",
    "SourceExtractors": "sources",
    "extract_sources": "sources",
}

__all__ = [
    "DEFAULT_PHASE_RULES",
    "ExtractedSource",
    "LitCallbackHandler",
    "LitChatMessageHistory",
    "LitMemoryMiddleware",
    "MissingConversationWarning",
    "PhaseRule",
    "PhaseTracker",
    "SourceExtractors",
    "__version__",
    "approximate_token_count",
    "close_shared_stores",
    "decode_message",
    "encode_message",
    "extract_sources",
    "format_sources",
    "select_window",
    "validate_window",
]

if TYPE_CHECKING:
    from ._store import close_shared_stores
    from .callbacks import LitCallbackHandler, MissingConversationWarning
    from .codec import decode_message, encode_message
    from .history import LitChatMessageHistory
    from .middleware import LitMemoryMiddleware
    from .phases import DEFAULT_PHASE_RULES, PhaseRule, PhaseTracker
    from .sources import ExtractedSource, SourceExtractors, extract_sources
    from .window import approximate_token_count, format_sources, select_window, validate_window


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
