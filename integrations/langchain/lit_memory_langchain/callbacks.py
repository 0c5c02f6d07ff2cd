"""`LitCallbackHandler`: attach it to a chain or agent and every tool call is stored.

Each call is stored once, with its tool name and type, input, output, status, timing, the
LangChain run ids and the model's tool_call_id; the web sources it cites and the mashups it
generates are stored beside it. The handler is a plain (sync) callback handler whose
methods only record a few fields and queue the event, so it costs the same on every thread
and event loop LangChain runs it on; one background writer stores the events in order (see
`_writer`). Call `flush()`/`aflush()` to wait for the store, `close()`/`aclose()` at the end.

What an unflushed crash can lose: events still queued when the process dies without a normal
exit (SIGKILL, os._exit, a segfault, power loss), i.e. the last moments of tool activity. A
normal exit, including an unhandled exception, drains the queue first. A call whose start was
stored but whose end was lost stays ``running``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.outputs import LLMResult

from lit_memory import InvalidInputError, ToolCallType
from lit_memory.redact import Redactor, default_redactor

from ._base import (
    MissingConversationWarning,
    NameMatcher,
    StoreHandler,
    ToolTypes,
    match_name,
    tool_type_of,
)
from ._record import Recorder, ToolRun
from ._store import StoreLike
from .sources import ExtractedSource, SourceExtractors, citations_from_message

__all__ = [
    "DEFAULT_GENERATORS",
    "LitCallbackHandler",
    "MODEL_SEARCH_TOOL",
    "MissingConversationWarning",
    "tool_type_of",
]

DEFAULT_GENERATORS = r"(generate|create|make)_?mashup"
"""Tools whose result is stored as a mashup row, by default (a regular expression)."""

MODEL_SEARCH_TOOL = "model_web_search"
"""The tool name under which a model's provider-side web search (its citations) is stored."""

_MIN_FIELD_BYTES = 256
_DEPTH = 4


@dataclass
class _ToolChain:
    """A chain run that holds tool calls (create_agent's per-call ``tools`` run, a ToolNode):
    the calls no tool callback has claimed are recorded from its output when it ends."""

    conversation_id: str
    run_id: str
    parent_run_id: str | None
    calls: dict[str, Mapping[str, Any]]
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    started: float = field(default_factory=time.perf_counter)


@dataclass
class _ModelRun:
    """A chat model run, kept until its end to store the citations it returns."""

    conversation_id: str | None
    run_id: str
    parent_run_id: str | None
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    started: float = field(default_factory=time.perf_counter)


class LitCallbackHandler(StoreHandler):
    """Stores the tool calls of the runs it sees, with their sources and generated mashups.

    Give ``db`` as a path or URL (the process's shared store for it, as the histories use;
    None is the embedded default), a `ConversationDB`, or an `AsyncConversationDB` (written
    on the event loop running when the handler is created: create the handler in async code
    and ``await handler.aclose()`` before that loop ends). The conversation is
    ``conversation_id``, else the run metadata's ``conversation_id``, ``session_id`` or
    ``thread_id``; it is created if missing. A run with none is skipped, with one
    `MissingConversationWarning`.
    """

    _kind = "callback handler"

    def __init__(
        self,
        db: StoreLike = None,
        conversation_id: str | None = None,
        *,
        tool_types: ToolTypes | None = None,
        generators: NameMatcher = DEFAULT_GENERATORS,
        extractors: SourceExtractors | None = None,
        redact: Redactor | None = default_redactor,
        max_field_bytes: int | None = 64 * 1024,
        citations: bool = True,
        run_ttl: float = 3600.0,
        raise_error: bool = False,
    ) -> None:
        """See the class docstring. `tool_types` maps tool names to types; `generators`
        selects the tools whose result is a mashup; `extractors` adds source parsers;
        `redact` scrubs inputs, outputs, errors and sources before they are capped to
        `max_field_bytes` each (the store's own redaction applies as well); `run_ttl`
        (seconds) drops runs that never end; `raise_error` raises storage failures from
        the callbacks."""
        if max_field_bytes is not None and max_field_bytes < _MIN_FIELD_BYTES:
            raise InvalidInputError(f"max_field_bytes must be >= {_MIN_FIELD_BYTES} (or None)")
        super().__init__(db, conversation_id, raise_error=raise_error, run_ttl=run_ttl)
        self.tool_types = tool_types
        self.generators = generators
        self.citations = citations
        self._recorder = Recorder(
            redact=redact,
            max_field_bytes=max_field_bytes,
            extractors=extractors,
            is_generator=lambda name: match_name(self.generators, name),
        )
        self._tools: dict[UUID, ToolRun] = {}
        self._chains: dict[UUID, _ToolChain] = {}
        self._models: dict[UUID, _ModelRun] = {}
        self._claims: dict[str, set[UUID]] = {}

    @property
    def ignore_llm(self) -> bool:
        """Model runs matter only for their citations."""
        return not self.citations

    @property
    def ignore_chat_model(self) -> bool:
        """Model runs matter only for their citations."""
        return not self.citations

    @property
    def open_runs(self) -> int:
        """How many started runs the handler is still tracking (0 when all have ended)."""
        with self._lock:
            return len(self._tools) + len(self._chains) + len(self._models) + len(self._claims)

    # -- tools -----------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Queue the call's start (input, ids, start time)."""
        self._sweep()
        name = str(kwargs.get("name") or (serialized or {}).get("name") or "tool")
        call_id = kwargs.get("tool_call_id")
        if call_id:
            self._claim(str(call_id))
        cid = self._conversation(metadata)
        if cid is None:
            self._warn_missing(f"the tool call {name!r}")
            return
        run = self._tool_run(cid, name, run_id, parent_run_id, call_id)
        run.inputs = input_str if inputs is None else inputs
        with self._lock:
            self._tools[run_id] = run
        self._submit(lambda: self._recorder.start(run), run.run_id)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Queue the call's output, status, sources and mashup."""
        with self._lock:
            run = self._tools.pop(run_id, None)
        if run is not None:
            ended_at, ms = _ended(run.started)
            self._submit(lambda: self._recorder.end(run, output, ended_at, ms), run.run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Queue the error (or the cancellation) that ended the call."""
        with self._lock:
            run = self._tools.pop(run_id, None)
        if run is not None:
            ended_at, ms = _ended(run.started)
            self._submit(lambda: self._recorder.fail(run, error, ended_at, ms), run.run_id)

    # -- tool calls that fire no tool callback ---------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember a chain run that holds tool calls, to record the unclaimed ones."""
        calls = held_tool_calls(inputs, kwargs.get("name"), metadata)
        if not calls:
            return
        self._sweep()
        cid = self._conversation(metadata)
        if cid is None:
            names = ", ".join(repr(call.get("name")) for call in calls.values())
            self._warn_missing(f"the tool calls {names}")
            return
        parent = None if parent_run_id is None else str(parent_run_id)
        chain = _ToolChain(cid, str(run_id), parent, calls)
        with self._lock:
            self._chains[run_id] = chain
            for call_id in calls:
                self._claims.setdefault(call_id, set()).add(run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Record the held calls answered without a tool callback (unknown tool, middleware)."""
        chain = self._end_chain(run_id)
        if chain is None or not chain.calls:
            return
        for message in tool_messages(outputs):
            call = chain.calls.get(message.tool_call_id)
            if call is not None:
                self._claim(message.tool_call_id)
                self._record_whole(chain, call, message)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Record a lone held call whose chain failed before any tool ran."""
        chain = self._end_chain(run_id)
        if chain is not None and len(chain.calls) == 1:
            call = next(iter(chain.calls.values()))
            self._claim(str(call["id"]))
            self._record_whole(chain, call, error)

    # -- model citations -------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember the model run, to store the citations it may return."""
        self._start_model(run_id, parent_run_id, metadata)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember the model run, to store the citations it may return."""
        self._start_model(run_id, parent_run_id, metadata)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Store the model's own web-search citations as a ``model_web_search`` call."""
        with self._lock:
            model = self._models.pop(run_id, None)
        sources = _citations(response) if model is not None else []
        if model is None or not sources:
            return
        if model.conversation_id is None:
            self._warn_missing("the citations of a model run")
            return
        run = ToolRun(
            model.conversation_id, MODEL_SEARCH_TOOL, ToolCallType.WEB_SEARCH, model.run_id,
            model.parent_run_id, None, None, model.started_at, model.started,
        )  # fmt: skip
        ended_at, ms = _ended(model.started)
        self._submit(lambda: self._recorder.citations(run, sources, ended_at, ms), run.run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Forget the model run."""
        with self._lock:
            self._models.pop(run_id, None)

    # -- helpers -----------------------------------------------------------------------------

    def _tool_run(
        self, cid: str, name: str, run_id: Any, parent_run_id: Any, call_id: Any
    ) -> ToolRun:
        return ToolRun(
            conversation_id=cid,
            name=name,
            tool_type=tool_type_of(name, self.tool_types),
            run_id=str(run_id),
            parent_run_id=None if parent_run_id is None else str(parent_run_id),
            call_id=None if not call_id else str(call_id),
            inputs=None,
            started_at=datetime.now(timezone.utc),
            started=time.perf_counter(),
        )

    def _claim(self, call_id: str) -> None:
        """A tool call is being recorded: no chain holding it records it again."""
        with self._lock:
            for chain_id in self._claims.pop(call_id, ()):
                chain = self._chains.get(chain_id)
                if chain is not None:
                    chain.calls.pop(call_id, None)

    def _end_chain(self, run_id: UUID) -> _ToolChain | None:
        with self._lock:
            chain = self._chains.pop(run_id, None)
            if chain is not None:
                self._unclaim(run_id, chain)
        return chain

    def _unclaim(self, run_id: UUID, chain: _ToolChain) -> None:
        for call_id in chain.calls:
            holders = self._claims.get(call_id)
            if holders is not None:
                holders.discard(run_id)
                if not holders:
                    del self._claims[call_id]

    def _record_whole(
        self, chain: _ToolChain, call: Mapping[str, Any], result: ToolMessage | BaseException
    ) -> None:
        name = str(call.get("name") or "tool")
        # One chain may hold several calls (a ToolNode): each needs a run id of its own.
        run_id = chain.run_id if len(chain.calls) <= 1 else f"{chain.run_id}:{call['id']}"
        run = self._tool_run(chain.conversation_id, name, run_id, chain.parent_run_id, call["id"])
        run.inputs, run.started_at, run.started = call.get("args"), chain.started_at, chain.started
        ended_at, ms = _ended(chain.started)
        self._submit(lambda: self._recorder.whole(run, result, ended_at, ms), run.run_id)

    def _start_model(
        self, run_id: UUID, parent_run_id: UUID | None, metadata: dict[str, Any] | None
    ) -> None:
        self._sweep()
        parent = None if parent_run_id is None else str(parent_run_id)
        model = _ModelRun(self._conversation(metadata), str(run_id), parent)
        with self._lock:
            self._models[run_id] = model

    def _sweep(self) -> None:
        """Drop runs older than `run_ttl` (a cancelled stream never ends its runs)."""
        if not self._due_for_sweep():
            return
        cutoff = time.perf_counter() - self.run_ttl
        with self._lock:
            tools = _pop_older(self._tools, cutoff)
            for run_id, chain in _pop_older(self._chains, cutoff):
                self._unclaim(run_id, chain)
            _pop_older(self._models, cutoff)
        for _, run in tools:
            self._submit_job(self._recorder.cancel_abandoned(run, self.run_ttl), run.run_id)


def held_tool_calls(
    inputs: Any, name: str | None, metadata: Mapping[str, Any] | None
) -> dict[str, Mapping[str, Any]]:
    """The tool calls (by id) a chain run is about to execute, judged from its inputs:
    create_agent's per-call ``tools`` run, or a graph node fed an AIMessage with tool calls."""
    calls: Sequence[Any] = ()
    if _is_tool_call(inputs):
        calls = [inputs]
    elif isinstance(inputs, Mapping) and _is_tool_call(inputs.get("tool_call")):
        calls = [inputs["tool_call"]]
    elif isinstance(inputs, list) and inputs and all(map(_is_tool_call, inputs)):
        calls = inputs
    elif name is not None and (metadata or {}).get("langgraph_node") == name:
        messages = inputs.get("messages") if isinstance(inputs, Mapping) else None
        if isinstance(messages, list) and messages and isinstance(messages[-1], AIMessage):
            calls = messages[-1].tool_calls
    return {str(call["id"]): call for call in calls if call.get("id")}


def _is_tool_call(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and value.get("type", "tool_call") == "tool_call"
        and {"name", "args", "id"} <= value.keys()
    )


def tool_messages(value: Any, depth: int = 0) -> list[ToolMessage]:
    """The ToolMessages in a chain's output: alone, in lists, under ``messages``, or in a
    LangGraph ``Command``'s update."""
    if isinstance(value, ToolMessage):
        return [value]
    if depth > _DEPTH:
        return []
    if isinstance(value, Mapping):
        return tool_messages(value.get("messages"), depth + 1)
    if isinstance(value, (list, tuple)):
        return [m for item in value for m in tool_messages(item, depth + 1)]
    update = getattr(value, "update", None)  # langgraph.types.Command, duck-typed
    return tool_messages(update, depth + 1) if isinstance(update, (Mapping, list)) else []


def _citations(response: LLMResult) -> list[ExtractedSource]:
    found: list[ExtractedSource] = []
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            if message is not None:
                found.extend(citations_from_message(message))
    return found


def _ended(started: float) -> tuple[datetime, float]:
    return datetime.now(timezone.utc), max((time.perf_counter() - started) * 1000.0, 0.0)


def _pop_older(runs: dict[UUID, Any], cutoff: float) -> list[tuple[UUID, Any]]:
    stale = [(key, run) for key, run in runs.items() if run.started < cutoff]
    for key, _ in stale:
        del runs[key]
    return stale
