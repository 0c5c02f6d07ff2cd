"""`LitChatMessageHistory`: a LangChain chat message history over the lit-memory store.

It is what `RunnableWithMessageHistory` expects (a `BaseChatMessageHistory`), with native
async methods and working sync ones, and a token-budgeted window of recent history for
prompts. LangChain deprecates `BaseChatMessageHistory` (removal in 2.0); without it this
class still works, as a plain object with the same methods.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage, ToolMessage

from lit_memory import AsyncConversationDB, Message

from ._store import Operation, StoreLike, StoreRef
from .codec import decode_message, encode_message
from .window import (
    TokenCounter,
    approximate_token_count,
    format_sources,
    group_turn_units,
    is_complete_unit,
    select_window,
)

try:
    from langchain_core.chat_history import BaseChatMessageHistory
except ImportError:  # pragma: no cover - the class is removed in langchain-core 2.0
    BaseChatMessageHistory = object  # type: ignore[misc,assignment]

__all__ = ["LitChatMessageHistory", "WindowRead", "sources_message"]

# The window reads the conversation backwards in pages that double, so a long conversation
# costs a few queries while a short budget costs one small read.
_FIRST_PAGE = 32
_MAX_PAGE = 1024


class LitChatMessageHistory(BaseChatMessageHistory):
    """The messages of one conversation, stored losslessly in a lit-memory store.

    `db` is an `AsyncConversationDB`, a `ConversationDB`, a path or URL, or None for the
    embedded default; paths and URLs share one store per process. Building one does no I/O;
    the conversation is created by the first write. With `owner`, the history sees only that
    owner's conversation (another owner's reads as empty and refuses writes) and creates it
    for `owner`.
    """

    def __init__(
        self, conversation_id: str, db: StoreLike = None, *, owner: str | None = None
    ) -> None:
        super().__init__()
        self.conversation_id = conversation_id
        self.owner = owner
        self._store = StoreRef(db, owner=owner)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conversation_id!r})"

    # -- reading -------------------------------------------------------------------------------

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """Every message of the conversation, in order (empty if it does not exist)."""
        rows = self._store.run(self._read_all, async_name="history.aget_messages")
        return [decode_message(row) for row in rows]

    async def aget_messages(self) -> list[BaseMessage]:
        """Every message of the conversation, in order (empty if it does not exist)."""
        return [decode_message(row) for row in await self._store.arun(self._read_all)]

    def _read_all(self, db: AsyncConversationDB) -> Coroutine[Any, Any, list[Message]]:
        return db.get_messages(self.conversation_id)

    # -- writing -------------------------------------------------------------------------------

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Store a turn in one transaction; a message whose id is already stored is skipped."""
        write = self._writer(messages)
        if write is not None:
            self._store.run(write, async_name="history.aadd_messages")

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Store a turn in one transaction; a message whose id is already stored is skipped."""
        write = self._writer(messages)
        if write is not None:
            await self._store.arun(write)

    def _writer(self, messages: Sequence[BaseMessage]) -> Operation[int] | None:
        # Encoding first: a value the codec refuses raises before anything is written.
        rows = [encode_message(message) for message in messages]
        if not rows:
            return None
        return lambda db: db.add_messages(self.conversation_id, rows, create=True)

    def clear(self) -> None:
        """Delete the conversation's messages; its tool calls, sources, mashups and phase
        history stay (delete the conversation through the store to remove those)."""
        self._store.run(self._delete, async_name="history.aclear")

    async def aclear(self) -> None:
        """Delete the conversation's messages; its tool calls, sources, mashups and phase
        history stay (delete the conversation through the store to remove those)."""
        await self._store.arun(self._delete)

    def _delete(self, db: AsyncConversationDB) -> Coroutine[Any, Any, bool]:
        return db.clear_messages(self.conversation_id)

    # -- the window for prompts ----------------------------------------------------------------

    def get_window(
        self,
        max_tokens: int,
        *,
        token_counter: TokenCounter = approximate_token_count,
        include_sources: bool = False,
        keep_system: bool = True,
    ) -> list[BaseMessage]:
        """The most recent history that fits `max_tokens`, ready to send to a model.

        See `aget_window`.
        """
        read = WindowRead(
            self.conversation_id, max_tokens, token_counter, keep_system, include_sources
        )
        return self._store.run(read.run, async_name="history.aget_window")

    async def aget_window(
        self,
        max_tokens: int,
        *,
        token_counter: TokenCounter = approximate_token_count,
        include_sources: bool = False,
        keep_system: bool = True,
    ) -> list[BaseMessage]:
        """The most recent history that fits `max_tokens`, ready to send to a model.

        Tool calls stay with their results and the conversation's opening system message is
        kept (`keep_system`); with `include_sources`, a system message listing the cited web
        sources follows it. Reads only the recent rows the budget needs, not the whole history.
        """
        read = WindowRead(
            self.conversation_id, max_tokens, token_counter, keep_system, include_sources
        )
        return await self._store.arun(read.run)


class WindowRead:
    """One window computation: recent rows, read backwards until they cover the budget."""

    def __init__(
        self,
        conversation_id: str,
        max_tokens: int,
        counter: TokenCounter,
        keep_system: bool,
        include_sources: bool,
    ) -> None:
        if max_tokens < 0:
            raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")
        self.conversation_id = conversation_id
        self.max_tokens = max_tokens
        self.counter = counter
        self.keep_system = keep_system
        self.include_sources = include_sources

    async def run(self, db: AsyncConversationDB) -> list[BaseMessage]:
        """The window of the conversation in `db` (see `LitChatMessageHistory.aget_window`)."""
        history, complete = await self.recent(db)
        if self.keep_system and not complete:
            history = await self.with_opening_system(db, history)
        sources = None
        if self.include_sources:
            sources = await sources_message(db, self.conversation_id)
        return select_window(
            history,
            self.max_tokens,
            token_counter=self.counter,
            keep_system=self.keep_system,
            sources_message=sources,
        )

    async def recent(self, db: AsyncConversationDB) -> tuple[list[BaseMessage], bool]:
        """The last messages, in order, covering the budget; and whether they are all of them."""
        messages: list[BaseMessage] = []
        page, before = _FIRST_PAGE, None
        while True:
            rows = await db.get_last_messages(self.conversation_id, page, before_seq=before)
            messages[:0] = [decode_message(row) for row in rows]
            if len(rows) < page or rows[0].seq == 1:
                return messages, True
            if self.covers(messages):
                return messages, False
            page, before = min(page * 2, _MAX_PAGE), rows[0].seq

    def covers(self, messages: list[BaseMessage]) -> bool:
        """Whether the complete turn units among `messages` already exceed the budget."""
        # Leading tool results answer a call in an older page: they are not a unit yet.
        start = 0
        while start < len(messages) and isinstance(messages[start], ToolMessage):
            start += 1
        cost = 0
        for unit in group_turn_units(messages[start:]):
            if is_complete_unit(unit) and not isinstance(unit[0], SystemMessage):
                cost += sum(self.counter(message) for message in unit)
        return cost > self.max_tokens

    async def with_opening_system(
        self, db: AsyncConversationDB, history: list[BaseMessage]
    ) -> list[BaseMessage]:
        """`history` (a recent part) preceded by the conversation's opening system message."""
        # A system message inside the history is never sent; drop a leading one so that
        # select_window does not take it for the opening one.
        while history and isinstance(history[0], SystemMessage):
            history = history[1:]
        first = await db.get_messages(self.conversation_id, limit=1)
        opening = decode_message(first[0]) if first else None
        return [opening, *history] if isinstance(opening, SystemMessage) else history


async def sources_message(db: AsyncConversationDB, conversation_id: str) -> SystemMessage | None:
    """A system message listing the conversation's cited web sources, numbered; None if none."""
    titles: dict[str, str | None] = {}
    for source in await db.get_web_sources(conversation_id):
        # A page found by several searches is listed once, with the first title it got.
        titles[source.url] = titles.get(source.url) or source.title
    text = format_sources(list(titles.items()))
    return SystemMessage(content=text) if text else None
