"""The writes behind `LitCallbackHandler`: run on the writer thread, never in a callback.

Callbacks only capture what happened (a `ToolRun` and the raw output); turning payloads into
stored text, redacting them, extracting sources and building mashup rows all happen here,
so a callback costs a queue put whatever the tool returned.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from langchain_core.messages import ToolMessage

from lit_memory import (
    AsyncConversationDB,
    ConversationNotFound,
    ToolCallStatus,
    ToolCallType,
)
from lit_memory.redact import Redactor

from ._payload import to_data, to_text, truncate
from ._writer import Job
from .sources import ExtractedSource, SourceExtractors, extract_sources, tool_error_message

__all__ = ["Outcome", "Recorder", "ToolRun", "outcome_of_error", "outcome_of_output"]

HANDLED_ERROR = "ToolError"
"""`error_type` of an error the tool reported as its result instead of raising it."""

# GeneratorExit: the consumer closed a stream; GraphBubbleUp: a LangGraph interrupt.
_CANCELLED_TYPES = frozenset(
    {"CancelledError", "KeyboardInterrupt", "GeneratorExit", "GraphBubbleUp"}
)
_TITLE_KEYS = ("title", "name")
_DESCRIPTION_KEYS = ("description", "summary")
_AUDIO_KEYS = ("audio_file_path", "audio_path", "file_path", "audio_url", "path")


@dataclass
class ToolRun:
    """What the callbacks know about one tool call; `row_id` is filled in by the writer."""

    conversation_id: str
    name: str
    tool_type: ToolCallType
    run_id: str
    parent_run_id: str | None
    call_id: str | None
    inputs: Any
    started_at: datetime
    started: float
    """`time.perf_counter()` at the start, for a duration immune to clock changes."""
    row_id: int | None = None
    ending: _Ending | None = None
    """How the call ended, once its end is prepared: a start not yet written by then is
    written whole, with its sources, in one insert (the end then has nothing left to do)."""


@dataclass
class _Ending:
    fields: dict[str, Any]
    sources: list[dict[str, Any]]
    mashup: dict[str, Any] | None
    written: bool = False


@dataclass(frozen=True)
class Outcome:
    """How a tool call ended: its status, and the error's message and type if it failed."""

    status: ToolCallStatus
    error_message: str | None = None
    error_type: str | None = None


def outcome_of_output(output: Any) -> Outcome:
    """Completed, or an error the tool returned (a ``status="error"`` ToolMessage, or a
    Tavily ``{"error": ...}`` result reported as a success)."""
    message = tool_error_message(output)
    if message is None:
        return Outcome(ToolCallStatus.COMPLETED)
    return Outcome(ToolCallStatus.ERROR, message, HANDLED_ERROR)


def outcome_of_error(error: BaseException) -> Outcome:
    """Error, or cancelled when the run was cancelled, interrupted or its stream closed."""
    names = {cls.__name__ for cls in type(error).__mro__}
    status = ToolCallStatus.CANCELLED if names & _CANCELLED_TYPES else ToolCallStatus.ERROR
    return Outcome(status, str(error) or type(error).__name__, type(error).__name__)


class Recorder:
    """Stores tool calls, their sources and generated mashups, given the handler's policy."""

    def __init__(
        self,
        *,
        redact: Redactor | None,
        max_field_bytes: int | None,
        extractors: SourceExtractors | None,
        is_generator: Callable[[str], bool],
    ) -> None:
        self._redact = redact
        self._max_bytes = max_field_bytes
        self._extract = extractors if extractors is not None else _builtin_extractor
        self._is_generator = is_generator

    # -- jobs: each method runs on the writer thread and returns the store writes -----------

    def start(self, run: ToolRun) -> Job:
        """Record the call as running, or whole if its end is already known."""
        input_text = self.text(run.inputs) or ""

        async def write(db: AsyncConversationDB) -> None:
            ending = run.ending
            if ending is None:
                run.row_id = await _insert(
                    db, run, input_text, status=ToolCallStatus.RUNNING, started_at=run.started_at
                )
                return
            # The tool finished before its start reached the store: one insert, not three.
            ending.written = True
            run.row_id = await _insert(
                db, run, input_text, started_at=run.started_at, sources=ending.sources,
                **ending.fields,
            )  # fmt: skip
            await _store_mashup(db, run, ending.mashup)

        return write

    def end(self, run: ToolRun, output: Any, ended_at: datetime, duration_ms: float) -> Job:
        """Record the output and how the call ended, with its sources; store its mashup."""
        outcome = outcome_of_output(output)
        if isinstance(output, ToolMessage) and run.call_id is None:
            run.call_id = output.tool_call_id or None
        fields: dict[str, Any] = dict(
            output_data=self.text(_payload_of(output)), status=outcome.status,
            error_message=self._message(outcome), error_type=outcome.error_type,
            completed_at=ended_at, duration_ms=duration_ms,
        )  # fmt: skip
        sources, mashup = self._results(run, output, outcome)
        ending = run.ending = _Ending(fields, sources, mashup)

        async def write(db: AsyncConversationDB) -> None:
            # Nothing to do when the start wrote the whole call, or was not stored (and that
            # failure was reported).
            if ending.written or run.row_id is None:
                return
            await db.update_tool_call(
                run.row_id, call_id=run.call_id, sources=sources, skip_known_urls=True, **fields
            )
            await _store_mashup(db, run, mashup)

        return write

    def fail(self, run: ToolRun, error: BaseException, ended_at: datetime, ms: float) -> Job:
        """Record an exception (or a cancellation) that ended the call."""
        outcome = outcome_of_error(error)
        message = self._message(outcome)

        async def write(db: AsyncConversationDB) -> None:
            if run.row_id is not None:
                await db.update_tool_call(
                    run.row_id, None, outcome.status, message, error_type=outcome.error_type,
                    completed_at=ended_at, duration_ms=ms,
                )  # fmt: skip

        return write

    def whole(
        self, run: ToolRun, result: ToolMessage | BaseException, ended_at: datetime, ms: float
    ) -> Job:
        """Record a call that fired no tool callback, from its start and its result at once."""
        if isinstance(result, BaseException):
            outcome, output = outcome_of_error(result), None
        else:
            outcome, output = outcome_of_output(result), result
        input_text = self.text(run.inputs) or ""
        fields: dict[str, Any] = dict(
            output_data=self.text(_payload_of(output)), status=outcome.status,
            error_message=self._message(outcome), error_type=outcome.error_type,
            started_at=run.started_at, completed_at=ended_at, duration_ms=ms,
        )  # fmt: skip
        sources, mashup = self._results(run, output, outcome)

        async def write(db: AsyncConversationDB) -> None:
            run.row_id = await _insert(db, run, input_text, sources=sources, **fields)
            await _store_mashup(db, run, mashup)

        return write

    def citations(
        self, run: ToolRun, sources: list[ExtractedSource], ended_at: datetime, ms: float
    ) -> Job:
        """Record a model's provider-side web search as a completed call with its sources."""
        rows = [self._source_row(source) for source in sources]
        input_text = self.text(run.inputs) or ""

        async def write(db: AsyncConversationDB) -> None:
            run.row_id = await _insert(
                db, run, input_text, status=ToolCallStatus.COMPLETED, sources=rows,
                started_at=run.started_at, completed_at=ended_at, duration_ms=ms,
            )  # fmt: skip

        return write

    def cancel_abandoned(self, run: ToolRun, age: float) -> Job:
        """Mark a call that never ended (its run was dropped after `age` seconds) cancelled."""

        async def write(db: AsyncConversationDB) -> None:
            if run.row_id is not None:
                await db.update_tool_call(
                    run.row_id,
                    status=ToolCallStatus.CANCELLED,
                    error_message=f"the run never ended; dropped after {age:.0f} s",
                    error_type="Abandoned",
                )

        return write

    def _results(
        self, run: ToolRun, output: Any, outcome: Outcome
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """A successful call's source rows and mashup row (nothing for a failure)."""
        ok = outcome.status is ToolCallStatus.COMPLETED
        sources = [self._source_row(s) for s in self._extract(output)] if ok else []
        mashup = self._mashup(run, output) if ok and self._is_generator(run.name) else None
        return sources, mashup

    # -- payloads ----------------------------------------------------------------------------

    def scrub(self, value: Any) -> Any:
        """`value` as plain data, passed through the redaction hook."""
        data = to_data(value)
        return data if self._redact is None else self._redact(data)

    def text(self, value: Any) -> str | None:
        """`value` as the capped text to store (redacted first)."""
        if value is None:
            return None
        return truncate(to_text(self.scrub(value)), self._max_bytes)

    def _message(self, outcome: Outcome) -> str | None:
        return None if outcome.error_message is None else self.text(outcome.error_message)

    # -- rows --------------------------------------------------------------------------------

    def _source_row(self, source: ExtractedSource) -> dict[str, Any]:
        fields = self.scrub({"url": source.url, "title": source.title, "snippet": source.snippet})
        return {
            "url": str(fields["url"]),
            "title": fields.get("title"),
            "snippet": fields.get("snippet"),
            "relevance_score": source.score,
            "rank": source.rank,
        }

    def _mashup(self, run: ToolRun, output: Any) -> dict[str, Any]:
        """The mashup row a generator's result describes (title, description, audio, rest)."""
        data = _structured(output)
        if not isinstance(data, Mapping):
            data = {"description": self.text(data)}
        fields = {k: v for k, v in self.scrub(data).items() if v is not None}
        title = _pop_first(fields, _TITLE_KEYS) or f"{run.name} result"
        description = _pop_first(fields, _DESCRIPTION_KEYS)
        audio = _pop_first(fields, _AUDIO_KEYS)
        return {
            "title": self._capped(title) or f"{run.name} result",
            "description": self._capped(description),
            "audio_file_path": self._capped(audio),
            "metadata": self._capped_metadata(fields),
        }

    def _capped(self, value: Any) -> str | None:
        return None if value is None else truncate(str(value), self._max_bytes)

    def _capped_metadata(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        if not fields:
            return None
        text = to_text(fields) or ""
        capped = truncate(text, self._max_bytes)
        return fields if capped == text else {"truncated": capped}


async def _insert(
    db: AsyncConversationDB,
    run: ToolRun,
    input_text: str,
    *,
    sources: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> int | None:
    """Insert the call (with its sources), creating its conversation if missing; the row id.

    A URL already cited in the conversation is kept once, with the call that found it first
    (checked in the database, from an index).
    """
    cid = run.conversation_id
    keys = dict(
        tool_name=run.name, run_id=run.run_id, parent_run_id=run.parent_run_id,
        call_id=run.call_id, **fields,
    )  # fmt: skip
    # Creating a missing conversation happens in the same transaction, so the handler and the
    # tracker racing to create it cannot fail each other.
    row = await db.add_tool_call(
        cid, run.tool_type, input_text, create=True, sources=sources, skip_known_urls=True,
        **keys,
    )  # fmt: skip
    if row is not None:
        return row
    existing = await db.get_tool_call_by_run(cid, run.run_id)
    if existing is None:
        raise ConversationNotFound(f"conversation {cid!r} is not visible to this store")
    # The same run seen twice (e.g. the handler attached twice): its sources join the row.
    if sources:
        await db.add_web_sources(existing.tool_call_id, sources, skip_known_urls=True)
    return existing.tool_call_id


async def _store_mashup(
    db: AsyncConversationDB, run: ToolRun, mashup: dict[str, Any] | None
) -> None:
    if mashup is not None and run.row_id is not None:
        await db.create_mashup(run.conversation_id, **mashup, tool_call_id=run.row_id)


def _builtin_extractor(output: Any) -> list[ExtractedSource]:
    return extract_sources(output)


def _payload_of(output: Any) -> Any:
    # A ToolMessage's content is what the model saw; its artifact only feeds extraction.
    return output.content if isinstance(output, ToolMessage) else output


def _structured(output: Any) -> Any:
    """A generator's result as data: a ToolMessage's artifact or JSON content, parsed text."""
    if isinstance(output, ToolMessage):
        if isinstance(output.artifact, Mapping):
            return output.artifact
        output = output.content
    if isinstance(output, str):
        try:
            return json.loads(output)
        except ValueError:
            return output
    return to_data(output)


def _pop_first(fields: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in fields:
            return fields.pop(key)
    return None
