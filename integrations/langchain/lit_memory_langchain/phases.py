"""`PhaseTracker`: move a conversation through its `PhaseFlow` from chain and tool events.

Rules are data: a `PhaseRule` names an event, what the run must match (run name, tag, tool
name or type, LangGraph node, root or nested) and the phase to move to. Every move is stored
with its reason and run id; a move the flow forbids is refused and the refusal is stored too
(the store's strict phase update). A failing root run moves the conversation to ERROR, and a
custom event named ``"phase"`` moves it where the event says::

    from langchain_core.callbacks import adispatch_custom_event
    await adispatch_custom_event("phase", {"phase": "cultural_research", "reason": "asked"})

Moves are written in order by the same kind of background writer as `LitCallbackHandler`
(callbacks never block); `phase()` and `aphase()` wait for the moves queued so far, so a
prompt that reads the phase sees every event before it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from lit_memory import (
    AsyncConversationDB,
    ConfigurationError,
    ConversationPhase,
    InvalidInputError,
    PhaseFlow,
    PhaseTransitionError,
    ToolCallStatus,
    ToolCallType,
)

from ._base import StoreHandler, ToolTypes, tool_type_of
from ._record import outcome_of_error
from ._store import StoreLike
from ._writer import Job
from .callbacks import DEFAULT_GENERATORS
from .sources import tool_error_message

__all__ = ["DEFAULT_PHASE_RULES", "EVENTS", "PHASE_EVENT", "PhaseRule", "PhaseTracker", "RunInfo"]

logger = logging.getLogger("lit_memory_langchain")

EVENTS = frozenset(
    {"chain_start", "chain_end", "chain_error", "tool_start", "tool_end", "tool_error", "custom"}
)
"""The events a `PhaseRule` can react to."""

PHASE_EVENT = "phase"
"""A custom event of this name sets the phase: ``{"phase": ..., "reason": ...}``."""

Move = tuple[ConversationPhase | str, str, frozenset[ConversationPhase] | None]
"""A phase change to attempt: target, reason, and the phases it may start from (None: any)."""


@dataclass(frozen=True)
class PhaseRule:
    """On `event`, move to `target` when every given match holds.

    `name` and `tool` are regular expressions searched (case-insensitive) in the run's name
    (a custom event's name for ``custom``) and the tool's name; `tag` must be one of the
    run's tags; `node` is the ``langgraph_node`` of the run's metadata; `root` selects the
    root run (True) or nested runs (False); `only_from` limits the rule to those phases.
    """

    event: str
    target: ConversationPhase | str
    """Parsed to a `ConversationPhase` (so are `tool_type` and `only_from`, to a frozenset)."""
    name: str | None = None
    tag: str | None = None
    tool: str | None = None
    tool_type: ToolCallType | str | None = None
    node: str | None = None
    root: bool | None = None
    only_from: Collection[ConversationPhase | str] | None = None
    label: str | None = None
    """Said in the stored reason instead of the rule's description."""

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise InvalidInputError(f"unknown event {self.event!r}; use one of {sorted(EVENTS)}")
        set_ = object.__setattr__  # a frozen dataclass normalises its own fields this way
        set_(self, "target", ConversationPhase.parse(self.target))
        if self.tool_type is not None:
            set_(self, "tool_type", ToolCallType.parse(self.tool_type))
        if self.only_from is not None:
            set_(self, "only_from", frozenset(map(ConversationPhase.parse, self.only_from)))

    @property
    def phases_from(self) -> frozenset[ConversationPhase] | None:
        """`only_from`, parsed: the phases the rule applies in (None: any)."""
        return (
            None
            if self.only_from is None
            else frozenset(map(ConversationPhase.parse, self.only_from))
        )

    def matches(self, run: RunInfo) -> bool:
        """Whether this rule applies to an event of `run` (the event kind is checked apart)."""
        return (
            _search(self.name, run.name)
            and (self.tag is None or self.tag in run.tags)
            and (self.node is None or self.node == run.node)
            and (self.root is None or self.root == run.root)
            and (self.tool is None or (run.tool is not None and _search(self.tool, run.tool)))
            and (self.tool_type is None or self.tool_type == run.tool_type)
        )

    def describe(self) -> str:
        """The rule in a few words, as stored in a transition's reason."""
        if self.label:
            return self.label
        fields = ("name", "tag", "tool", "tool_type", "node", "root")
        matches = [
            f"{key}={getattr(self, key)!s}" for key in fields if getattr(self, key) is not None
        ]
        return f"{self.event}[{', '.join(matches)}] -> {self.target}"


def _search(pattern: str | None, text: str | None) -> bool:
    if pattern is None:
        return True
    return text is not None and re.search(pattern, text, re.IGNORECASE) is not None


@dataclass
class RunInfo:
    """What a rule can match about a run, remembered from its start until its end."""

    conversation_id: str
    run_id: str
    name: str | None
    tags: frozenset[str]
    node: str | None
    root: bool
    tool: str | None = None
    tool_type: ToolCallType | None = None
    started: float = field(default_factory=time.perf_counter)


def _before(target: ConversationPhase) -> frozenset[ConversationPhase]:
    """The phases before `target` in the linear flow: a rule does not move backwards."""
    order: list[ConversationPhase] = [
        p for p in ConversationPhase if p is not ConversationPhase.ERROR
    ]
    return frozenset(order[: order.index(target)])


_P = ConversationPhase
DEFAULT_PHASE_RULES: tuple[PhaseRule, ...] = (
    PhaseRule("chain_start", _P.INITIAL, root=True, only_from=frozenset({_P.ERROR}),
              label="a new turn after an error restarts the flow"),
    PhaseRule("chain_start", _P.GENRE_EXPLORATION, root=True, only_from=frozenset({_P.INITIAL}),
              label="first turn"),
    PhaseRule("tool_start", _P.EDUCATIONAL_CLARIFICATION, tool=r"explain|clarif|theory",
              only_from=_before(_P.EDUCATIONAL_CLARIFICATION), label="explanation tool"),
    PhaseRule("tool_start", _P.CULTURAL_RESEARCH, tool_type=ToolCallType.WEB_SEARCH,
              only_from=_before(_P.CULTURAL_RESEARCH), label="web search"),
    PhaseRule("tool_start", _P.READY_FOR_GENERATION, tool=r"(plan|prepare)_?mashup|mashup_?plan",
              only_from=_before(_P.READY_FOR_GENERATION), label="mashup planned"),
    PhaseRule("tool_end", _P.GENERATION_COMPLETE, tool=DEFAULT_GENERATORS,
              only_from=_before(_P.GENERATION_COMPLETE), label="mashup generated"),
)  # fmt: skip
"""The mashup tutor's flow. A root run's start moves INITIAL to GENRE_EXPLORATION (and a new
turn after an ERROR back to INITIAL first); a tool named like explain/clarify/theory starts
EDUCATIONAL_CLARIFICATION; a web search tool starts CULTURAL_RESEARCH; a tool named like
plan_mashup makes it READY_FOR_GENERATION; a generate_mashup tool that ends without error
makes it GENERATION_COMPLETE. No rule moves backwards (searching again later is normal); a
forward skip the flow forbids (searching during genre exploration) is refused and stored."""


class PhaseTracker(StoreHandler):
    """A callback handler that moves conversations through their phase flow, by rules.

    ``db`` and the conversation are resolved as for `LitCallbackHandler`. ``flow`` defaults
    to the store's, which is the one enforced; with a path or URL, another flow gets a store
    of its own (closed with the tracker); a given store with another flow is refused.
    """

    _kind = "phase tracker"

    def __init__(
        self,
        db: StoreLike = None,
        conversation_id: str | None = None,
        *,
        flow: PhaseFlow | None = None,
        rules: Iterable[PhaseRule] = DEFAULT_PHASE_RULES,
        tool_types: ToolTypes | None = None,
        error_on_failure: bool = True,
        run_ttl: float = 3600.0,
        raise_error: bool = False,
    ) -> None:
        """See the class docstring; `error_on_failure` moves to ERROR when a root run fails."""
        super().__init__(db, conversation_id, raise_error=raise_error, run_ttl=run_ttl, flow=flow)
        if flow is not None and flow != self.db.flow:
            raise ConfigurationError(
                "the store was created with another phase flow; the store enforces its own, "
                "so create it with AsyncConversationDB(..., flow=flow) or omit flow="
            )
        self.flow = self.db.flow
        self.rules = tuple(rules)
        self.tool_types = tool_types
        self.error_on_failure = error_on_failure
        self._runs: dict[UUID, RunInfo] = {}

    # LangChain skips these callbacks entirely: the tracker reacts to chains and tools.
    ignore_llm = True
    ignore_chat_model = True
    ignore_retriever = True
    ignore_retry = True

    @property
    def open_runs(self) -> int:
        """How many started runs the tracker is still tracking (0 when all have ended)."""
        with self._lock:
            return len(self._runs)

    # -- reading the phase -----------------------------------------------------------------

    def phase(self, conversation_id: str | None = None) -> ConversationPhase | None:
        """The conversation's phase once the moves queued so far are stored (None if the
        conversation does not exist); from async code use `aphase`."""
        cid = self._bound(conversation_id)
        self.flush()
        conversation = self._writer.call(lambda db: db.get_conversation(cid))
        return None if conversation is None else conversation.phase

    async def aphase(self, conversation_id: str | None = None) -> ConversationPhase | None:
        """`phase` without blocking the event loop."""
        cid = self._bound(conversation_id)
        await self.aflush()
        conversation = await self._writer.acall(lambda db: db.get_conversation(cid))
        return None if conversation is None else conversation.phase

    @property
    def current_phase(self) -> ConversationPhase | None:
        """The bound conversation's phase (see `phase`)."""
        return self.phase()

    def _bound(self, conversation_id: str | None) -> str:
        cid = conversation_id or self.conversation_id
        if cid is None:
            raise InvalidInputError("give a conversation_id: this tracker is not bound to one")
        return cid

    # -- callbacks ---------------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Apply the chain_start rules."""
        name = kwargs.get("name") or (serialized or {}).get("name")
        run = self._start(run_id, parent_run_id, name, tags, metadata)
        if run is not None:
            self._fire("chain_start", run)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Apply the chain_end rules."""
        run = self._end(run_id)
        if run is not None:
            self._fire("chain_end", run)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Apply the chain_error rules; a failed root run moves to ERROR."""
        run = self._end(run_id)
        if run is None:
            return
        self._fire("chain_error", run)
        failed = outcome_of_error(error).status is ToolCallStatus.ERROR  # not a cancellation
        if run.root and self.error_on_failure and failed:
            reason = f"the run {run.name!r} failed: {type(error).__name__}: {error}"
            self._move(run, [(ConversationPhase.ERROR, reason[:500], None)])

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Apply the tool_start rules."""
        name = str(kwargs.get("name") or (serialized or {}).get("name") or "tool")
        run = self._start(run_id, parent_run_id, name, tags, metadata)
        if run is not None:
            run.tool, run.tool_type = name, tool_type_of(name, self.tool_types)
            self._fire("tool_start", run)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Apply the tool_end rules, or the tool_error ones when the tool returned an error."""
        run = self._end(run_id)
        if run is not None:
            self._fire("tool_error" if tool_error_message(output) else "tool_end", run)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Apply the tool_error rules."""
        run = self._end(run_id)
        if run is not None:
            self._fire("tool_error", run)

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Apply the custom rules; a ``"phase"`` event moves to the phase it names."""
        cid = self._conversation(metadata)
        if cid is None:
            self._warn_missing(f"the custom event {name!r}")
            return
        run = RunInfo(cid, str(run_id), name, frozenset(tags or ()), _node(metadata), False)
        self._fire("custom", run)
        if name == PHASE_EVENT:
            target, reason = _phase_event(data)
            self._move(run, [(target, reason or f"custom event {name!r}", None)])

    # -- helpers -----------------------------------------------------------------------------

    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str | None,
        tags: Sequence[str] | None,
        metadata: Mapping[str, Any] | None,
    ) -> RunInfo | None:
        self._sweep()
        cid = self._conversation(metadata)
        if cid is None:
            if parent_run_id is None:
                self._warn_missing(f"the run {name!r}")
            return None
        run = RunInfo(
            cid, str(run_id), name, frozenset(tags or ()), _node(metadata), parent_run_id is None
        )
        with self._lock:
            self._runs[run_id] = run
        return run

    def _end(self, run_id: UUID) -> RunInfo | None:
        with self._lock:
            return self._runs.pop(run_id, None)

    def _fire(self, event: str, run: RunInfo) -> None:
        moves = [
            (rule.target, f"{event} {run.name!r}: {rule.describe()}", rule.phases_from)
            for rule in self.rules
            if rule.event == event and rule.matches(run)
        ]
        if moves:
            self._move(run, moves)

    def _move(
        self,
        run: RunInfo,
        moves: Sequence[Move],
    ) -> None:
        # One conversation's moves apply in order; different conversations' together.
        self._submit_job(_apply_moves(run.conversation_id, run.run_id, moves), run.conversation_id)

    def _sweep(self) -> None:
        if not self._due_for_sweep():
            return
        cutoff = time.perf_counter() - self.run_ttl
        with self._lock:
            for key in [k for k, run in self._runs.items() if run.started < cutoff]:
                del self._runs[key]


def _node(metadata: Mapping[str, Any] | None) -> str | None:
    node = (metadata or {}).get("langgraph_node")
    return None if node is None else str(node)


def _phase_event(data: Any) -> tuple[ConversationPhase | str, str | None]:
    if isinstance(data, (str, ConversationPhase)):
        return data, None
    if isinstance(data, Mapping) and data.get("phase") is not None:
        reason = data.get("reason")
        return data["phase"], None if reason is None else str(reason)
    raise InvalidInputError(f'a "phase" event needs {{"phase": ..., "reason": ...}}, not {data!r}')


def _apply_moves(
    cid: str,
    run_id: str,
    moves: Sequence[Move],
) -> Job:
    """The writes of one event's moves, in rule order (each sees the phase the last left)."""

    async def write(db: AsyncConversationDB) -> None:
        for target, reason, only_from in moves:
            await _move_once(db, cid, target, reason, run_id, only_from)

    return write


async def _move_once(
    db: AsyncConversationDB,
    cid: str,
    target: ConversationPhase | str,
    reason: str,
    run_id: str,
    only_from: frozenset[ConversationPhase] | None,
) -> None:
    async def move() -> bool:
        # `only_from` is checked by the store in the move's own transaction (no read first).
        return await db.update_conversation_phase(
            cid, target, reason=reason, run_id=run_id, strict=True, only_from=only_from
        )

    try:
        if not await move():
            if only_from is not None and db.flow.initial not in only_from:
                return  # a new conversation would not move: do not create one
            await db.create_conversation(cid)
            await move()
    except PhaseTransitionError as exc:
        # Refusals are the flow working as designed: the store has recorded this one.
        logger.info("lit-memory refused a phase change of %r: %s", cid, exc)
