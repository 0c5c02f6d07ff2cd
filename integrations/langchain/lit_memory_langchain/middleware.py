"""`LitMemoryMiddleware`: conversation memory for agents built with `create_agent`.

Before the agent runs, the conversation's recent history (a token-budgeted window, see
`LitChatMessageHistory.aget_window`) is put in front of the new input; every new message of
the turn (the input, AI messages with tool calls, tool results, the answer) is stored as the
turn happens: the input first, then after each model call what came since. Needs the
``langchain`` extra: ``pip install 'lit-memory-langchain[agents]'``.

How it avoids duplicates. Every message in the agent's state has an id (LangGraph gives one
to each message without), and the store keeps one message per id. The middleware keeps, in
a private state key, the ids of the state's messages that are already stored (or were
loaded from the store); at each store it adds the others and records them all.

* Without a checkpointer, each run starts with only the new input and no such key: the
  window is loaded from the store and put before the input.
* With a checkpointer, the key comes back with the restored state, which already holds the
  history: nothing is loaded, so nothing is doubled. The first run on a thread has no key
  yet and loads the store's history (e.g. a conversation begun without the agent), leaving
  out messages whose id the state already holds.

Messages another middleware adds to the state (a summary, say) are new messages and are
stored too; messages it removes stay in the store.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final

from langchain_core.messages import BaseMessage, RemoveMessage
from langgraph.config import get_config
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import Runtime
from typing_extensions import NotRequired

from lit_memory import ConfigurationError

from ._store import StoreLike
from .history import LitChatMessageHistory
from .window import TokenCounter, approximate_token_count

try:
    from langchain.agents.middleware.types import AgentMiddleware, AgentState, PrivateStateAttr
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "LitMemoryMiddleware needs langchain>=1.5: pip install 'lit-memory-langchain[agents]'"
    ) from exc

__all__ = ["CONVERSATION_KEYS", "LitMemoryMiddleware", "LitMemoryState", "conversation_from_config"]

STORED_KEY: Final = "lit_memory_stored_ids"

CONVERSATION_KEYS = ("conversation_id", "session_id", "thread_id")
"""The config keys that name a run's conversation, in order of preference; each is looked
up in the run's metadata, then in ``configurable``."""


class LitMemoryState(AgentState[Any]):
    """The agent state with the middleware's private record of stored message ids."""

    lit_memory_stored_ids: NotRequired[Annotated[list[str], PrivateStateAttr]]


def conversation_from_config(config: Mapping[str, Any]) -> str | None:
    """The conversation a run config names (see `CONVERSATION_KEYS`), or None."""
    sources = (config.get("metadata") or {}, config.get("configurable") or {})
    for key in CONVERSATION_KEYS:
        for source in sources:
            value = source.get(key)
            if value is not None and str(value).strip():
                return str(value)
    return None


class LitMemoryMiddleware(AgentMiddleware[LitMemoryState, Any, Any]):
    """Loads the conversation's history before the agent runs and stores the turn after.

    The conversation is `conversation_id`, or else the run's: ``conversation_id``,
    ``session_id`` or ``thread_id`` in its metadata or ``configurable`` (`CONVERSATION_KEYS`).
    `db` and `owner` are as for `LitChatMessageHistory`; an `AsyncConversationDB` serves
    ``ainvoke``/``astream`` only. The loaded window holds at most `max_tokens` (by
    `token_counter`), opening system message included when `keep_system`.
    """

    state_schema = LitMemoryState

    def __init__(
        self,
        db: StoreLike = None,
        *,
        conversation_id: str | None = None,
        owner: str | None = None,
        max_tokens: int = 4000,
        token_counter: TokenCounter = approximate_token_count,
        keep_system: bool = True,
    ) -> None:
        super().__init__()
        if max_tokens < 0:
            raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")
        self.db = db
        self.conversation_id = conversation_id
        self.owner = owner
        self.max_tokens = max_tokens
        self.token_counter = token_counter
        self.keep_system = keep_system

    # -- hooks ---------------------------------------------------------------------------------
    # The turn is stored as it happens: the input before the agent runs, then after each model
    # call the tool results that preceded it and the model's message, then whatever remains.
    # Stored rows then follow the order of events (tool calls and phase changes recorded by
    # the callback handlers interleave with the messages), and a crash mid-turn keeps the
    # part of the turn that happened. Message ids make every store idempotent.

    def before_agent(self, state: LitMemoryState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Put the stored history before the new input (unless the state already holds it),
        then store the input."""
        history = self._history(runtime)
        update: dict[str, Any] = {}
        if STORED_KEY not in state:
            window = history.get_window(
                self.max_tokens, token_counter=self.token_counter, keep_system=self.keep_system
            )
            update = _prepend(window, state["messages"])
        new, update = _pending(state, update)
        history.add_messages(new)
        return update

    async def abefore_agent(
        self, state: LitMemoryState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Put the stored history before the new input (unless the state already holds it),
        then store the input."""
        history = self._history(runtime)
        update: dict[str, Any] = {}
        if STORED_KEY not in state:
            window = await history.aget_window(
                self.max_tokens, token_counter=self.token_counter, keep_system=self.keep_system
            )
            update = _prepend(window, state["messages"])
        new, update = _pending(state, update)
        await history.aadd_messages(new)
        return update

    def after_model(self, state: LitMemoryState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Store the tool results and the model message since the last store."""
        return self.after_agent(state, runtime)

    async def aafter_model(
        self, state: LitMemoryState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Store the tool results and the model message since the last store."""
        return await self.aafter_agent(state, runtime)

    def after_agent(self, state: LitMemoryState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Store the turn's messages not stored yet (one transaction) and record them."""
        new, update = _pending(state, {})
        if new:
            self._history(runtime).add_messages(new)
        return update

    async def aafter_agent(
        self, state: LitMemoryState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Store the turn's messages not stored yet (one transaction) and record them."""
        new, update = _pending(state, {})
        if new:
            await self._history(runtime).aadd_messages(new)
        return update

    # -- helpers -------------------------------------------------------------------------------

    def _history(self, runtime: Runtime[Any]) -> LitChatMessageHistory:
        conversation = self.conversation_id or _run_conversation(runtime)
        if conversation is None:
            raise ConfigurationError(
                "LitMemoryMiddleware has no conversation: give conversation_id=... or run the "
                "agent with config={'configurable': {'thread_id': ...}} (or conversation_id "
                "in the config's metadata)"
            )
        return LitChatMessageHistory(conversation, self.db, owner=self.owner)


def _run_conversation(runtime: Runtime[Any]) -> str | None:
    try:
        config = get_config()
    except RuntimeError:  # Python 3.10 in async code: no config context, use the runtime's
        config = {}
    found = conversation_from_config(config)
    info = runtime.execution_info
    if found is None and info is not None and info.thread_id:
        found = info.thread_id
    return found


def _prepend(window: list[BaseMessage], messages: Sequence[BaseMessage]) -> dict[str, Any]:
    present = {message.id for message in messages}
    # The store's messages may have no id; LangGraph would give them random ones after this
    # hook, unknown to it, so they get theirs here to be recorded as stored.
    loaded = [
        message if message.id else message.model_copy(update={"id": str(uuid.uuid4())})
        for message in window
        if message.id is None or message.id not in present
    ]
    update: dict[str, Any] = {STORED_KEY: _ids(loaded)}
    if loaded:
        update["messages"] = [RemoveMessage(id=REMOVE_ALL_MESSAGES), *loaded, *messages]
    return update


def _pending(
    state: LitMemoryState, update: dict[str, Any]
) -> tuple[list[BaseMessage], dict[str, Any]]:
    """The messages (after `update`) not stored yet, and `update` recording all as stored."""
    messages = [m for m in update.get("messages", state["messages"]) if not _is_removal(m)]
    stored = set(update.get(STORED_KEY, state.get(STORED_KEY) or ()))
    new = [message for message in messages if message.id not in stored]
    return new, {**update, STORED_KEY: _ids(messages)}


def _is_removal(message: BaseMessage) -> bool:
    return isinstance(message, RemoveMessage)


def _ids(messages: Sequence[BaseMessage]) -> list[str]:
    return [message.id for message in messages if message.id]
