"""What `LitCallbackHandler` and `PhaseTracker` share: the store binding, the background
writer, the conversation a run belongs to, and the age-based sweep of runs that never end."""

from __future__ import annotations

import re
import threading
import time
import warnings
from collections.abc import Callable, Collection, Hashable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from langchain_core.callbacks import BaseCallbackHandler

from lit_memory import AsyncConversationDB, InvalidInputError, PhaseFlow, ToolCallType

from ._store import StoreLike
from ._writer import Job, Prepare, StoreWriter, in_running_loop

__all__ = [
    "CONVERSATION_KEYS",
    "MissingConversationWarning",
    "NameMatcher",
    "StoreHandler",
    "ToolTypes",
    "match_name",
    "tool_type_of",
]

H = TypeVar("H", bound="StoreHandler")

CONVERSATION_KEYS = ("conversation_id", "session_id", "thread_id")
"""Run metadata keys naming the conversation, in the order they are tried."""

NameMatcher = str | Collection[str] | Callable[[str], bool] | None
"""Selects tools by name: a regular expression (searched, case-insensitive), a collection
of exact names, a predicate, or None for none."""

ToolTypes = Mapping[str, ToolCallType | str] | Callable[[str], ToolCallType | str | None]
"""Maps a tool's name to its `ToolCallType`: a mapping of exact names, or a function
returning a type (or None to fall back to the default rule)."""

_SEARCH_NAME = re.compile(
    r"search|tavily|duckduckgo|\bddg\b|\bbrave\b|serper|serp ?api|\bexa\b|\bbing\b|\bgoogle\b"
)

# The seed's tool types, recognised by name; the first match wins.
_NAME_TYPES = (
    (re.compile(r"\b(cultur\w*|histor\w*) ?(research|context)"), ToolCallType.CULTURAL_RESEARCH),
    (_SEARCH_NAME, ToolCallType.WEB_SEARCH),
    (re.compile(r"\b(theory|explain\w*|clarif\w*)\b"), ToolCallType.THEORY_EXPLANATION),
    (re.compile(r"\b(analy[sz]\w*|bpm|tempo|key detect\w*)\b"), ToolCallType.MUSIC_ANALYSIS),
)


def _words(name: str) -> str:
    # \b does not split snake_case: make underscores and dashes word boundaries.
    return re.sub(r"[_\-.]+", " ", name.lower())


def tool_type_of(name: str, tool_types: ToolTypes | None = None) -> ToolCallType:
    """The `ToolCallType` of a tool: from `tool_types` first, else by name: web_search for a
    search-like name (search, tavily, duckduckgo, brave, serper, exa, bing...),
    cultural_research, theory_explanation (explain, theory, clarify) or music_analysis
    (analyze, bpm, tempo); else OTHER."""
    chosen: ToolCallType | str | None = None
    if callable(tool_types):
        chosen = tool_types(name)
    elif tool_types is not None:
        chosen = tool_types.get(name)
    if chosen is not None:
        return ToolCallType.parse(chosen)
    words = _words(name)
    for pattern, kind in _NAME_TYPES:
        if pattern.search(words):
            return kind
    return ToolCallType.OTHER


def match_name(matcher: NameMatcher, name: str) -> bool:
    """Whether `name` is selected by `matcher` (see `NameMatcher`)."""
    if matcher is None:
        return False
    if isinstance(matcher, str):
        return re.search(matcher, name, re.IGNORECASE) is not None
    if callable(matcher):
        return bool(matcher(name))
    return name in matcher


class MissingConversationWarning(UserWarning):
    """A run reached a lit-memory handler with no conversation to store it under."""


class StoreHandler(BaseCallbackHandler):
    """A callback handler whose writes go through one background `StoreWriter`."""

    _kind = "handler"

    def __init__(
        self,
        db: StoreLike,
        conversation_id: str | None,
        *,
        raise_error: bool,
        run_ttl: float,
        flow: PhaseFlow | None = None,
    ) -> None:
        if run_ttl <= 0:
            raise InvalidInputError(f"run_ttl must be > 0 seconds, not {run_ttl!r}")
        self._writer = StoreWriter(db, name=self._kind, flow=flow)
        self.conversation_id = conversation_id
        self.raise_error = raise_error
        # Callbacks only enqueue, so running them inline on the loop is cheap; with
        # raise_error they wait for their write, so LangChain must run them in a thread.
        self.run_inline = not raise_error
        self.run_ttl = run_ttl
        self._lock = threading.RLock()
        self._warned = False
        self._next_sweep = time.monotonic() + run_ttl / 10

    @property
    def db(self) -> AsyncConversationDB:
        """The store the handler writes to."""
        return self._writer.db

    # -- flushing and closing --------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every event seen so far is stored; raise a storage failure met since."""
        self._writer.flush(timeout)

    async def aflush(self) -> None:
        """`flush` without blocking the event loop."""
        await self._writer.aflush()

    def close(self, timeout: float | None = None) -> None:
        """Flush and stop the writer thread (the handler stays usable). A path or URL uses the
        process's shared store, closed by `close_shared_stores()` or at exit."""
        self._writer.close(timeout)

    async def aclose(self) -> None:
        """`close` without blocking the event loop."""
        await self._writer.aclose()

    def __enter__(self: H) -> H:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self: H) -> H:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- for subclasses ----------------------------------------------------------------------

    def _conversation(self, metadata: Mapping[str, Any] | None) -> str | None:
        """The bound conversation, else the first of `CONVERSATION_KEYS` in the metadata."""
        if self.conversation_id is not None:
            return self.conversation_id
        for key in CONVERSATION_KEYS:
            value = (metadata or {}).get(key)
            if value is not None and str(value).strip():
                return str(value)
        return None

    def _warn_missing(self, what: str) -> None:
        """Say once per handler that runs are skipped for lack of a conversation."""
        with self._lock:
            if self._warned:
                return
            self._warned = True
        keys = ", ".join(CONVERSATION_KEYS)
        warnings.warn(
            f"lit-memory {self._kind} skipped {what}: no conversation. Bind one "
            f"({type(self).__name__}(conversation_id=...)) or pass it in the run's metadata "
            f"(config={{'metadata': {{'conversation_id': ...}}}}; keys tried: {keys}; "
            "LangGraph's thread_id counts). This is reported once; later runs without a "
            "conversation are skipped silently.",
            MissingConversationWarning,
            stacklevel=2,
        )

    def _submit(self, prepare: Prepare, key: Hashable | None = None) -> None:
        """Queue a write (`key`: see `StoreWriter.submit`); with raise_error, wait for it
        when the thread may block."""
        if not self.raise_error:
            self._writer.submit_prepared(prepare, key=key)
            return
        if in_running_loop():
            # Waiting here would block the loop: report an earlier failure instead.
            self._writer.submit_prepared(prepare, key=key)
            self._writer.raise_failures()
            return
        future = self._writer.submit_prepared(prepare, wait=True, key=key)
        assert future is not None
        future.result()

    def _submit_job(self, job: Job, key: Hashable | None = None) -> None:
        self._submit(lambda: job, key)

    def _due_for_sweep(self) -> bool:
        """Whether it is time to drop runs older than `run_ttl` (checked cheaply per event)."""
        now = time.monotonic()
        if now < self._next_sweep:
            return False
        self._next_sweep = now + self.run_ttl / 10
        return True
