"""Owner isolation: a backend wrapper that shows one owner's conversations and nothing else.

`AsyncConversationDB.for_owner(owner)` puts this wrapper between the store and its backend,
so every method of the store is limited by the same few checks. Another owner's
conversation looks exactly like a missing one: reads return None or empty lists, writes
return False/None. Conversation ids are global, though: creating a conversation whose id
another owner already uses returns False, so give conversations unguessable ids (UUIDs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .backends.base import (
    Backend,
    MashupRow,
    MessageRow,
    PhaseChange,
    SourceRow,
    ToolCallRow,
    ToolCallUpdate,
)
from .errors import InvalidInputError
from .flow import PhaseFlow
from .models import (
    Conversation,
    ConversationSummary,
    Mashup,
    Message,
    PhaseTransition,
    SearchHit,
    StoreStats,
    ToolCall,
    WebSource,
)
from .transfer import ConversationDocument

__all__ = ["OwnerScopedBackend"]


class OwnerScopedBackend(Backend):
    """The backend as one owner sees it. It shares (and never closes) the wrapped backend."""

    def __init__(self, inner: Backend, owner: str) -> None:
        self.inner = inner
        self.owner = owner
        self.dialect = inner.dialect

    # -- ownership checks ----------------------------------------------------------------------

    async def _owns(self, conversation_id: str) -> bool:
        conversation = await self.inner.get_conversation(conversation_id)
        return conversation is not None and conversation.owner == self.owner

    async def _owned_call(self, tool_call_id: int) -> ToolCall | None:
        call = await self.inner.get_tool_call(tool_call_id)
        return call if call is not None and await self._owns(call.conversation_id) else None

    def _other_owner(self, owner: str | None) -> bool:
        return owner is not None and owner != self.owner

    # -- lifecycle: the store this view came from owns the connections ------------------------

    async def open(self) -> None:
        """Open the shared backend."""
        await self.inner.open()

    async def close(self) -> None:
        """Nothing: close the store this view came from."""

    async def migrate(self, target: int | None = None) -> tuple[int, int]:
        """Migrate the shared database."""
        return await self.inner.migrate(target)

    async def schema_version(self) -> int:
        """The shared database's schema version."""
        return await self.inner.schema_version()

    @property
    def latest_version(self) -> int:
        """The schema version this code migrates to."""
        return self.inner.latest_version

    # -- conversations -------------------------------------------------------------------------

    async def create_conversation(
        self,
        conversation_id: str,
        owner: str | None,
        phase: str,
        metadata: str | None,
        now: datetime,
    ) -> bool:
        """Create a conversation owned by this view's owner."""
        if self._other_owner(owner):
            raise InvalidInputError(f"a store scoped to {self.owner!r} cannot create for {owner!r}")
        return await self.inner.create_conversation(
            conversation_id, self.owner, phase, metadata, now
        )

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation if this owner's."""
        found = await self.inner.get_conversation(conversation_id)
        return found if found is not None and found.owner == self.owner else None

    async def get_summary(self, conversation_id: str) -> ConversationSummary | None:
        """The summary if this owner's."""
        found = await self.inner.get_summary(conversation_id)
        return found if found is not None and found.owner == self.owner else None

    async def list_conversations(
        self,
        *,
        phase: str | None,
        owner: str | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[ConversationSummary]:
        """This owner's conversations only."""
        if self._other_owner(owner):
            return []
        return await self.inner.list_conversations(
            phase=phase, owner=self.owner, before=before, limit=limit
        )

    async def change_phase(
        self,
        conversation_id: str,
        to_phase: str,
        *,
        reason: str | None,
        run_id: str | None,
        flow: PhaseFlow | None,
        now: datetime,
        only_from: frozenset[str] | None = None,
    ) -> PhaseChange:
        """Change the phase of this owner's conversation."""
        if not await self._owns(conversation_id):
            return PhaseChange(found=False)
        return await self.inner.change_phase(
            conversation_id, to_phase, reason=reason, run_id=run_id, flow=flow, now=now,
            only_from=only_from,
        )  # fmt: skip

    async def delete_conversation(self, conversation_id: str) -> bool:
        """Delete this owner's conversation."""
        return await self._owns(conversation_id) and await self.inner.delete_conversation(
            conversation_id
        )

    async def clear_messages(self, conversation_id: str) -> bool:
        """Clear the messages of this owner's conversation."""
        return await self._owns(conversation_id) and await self.inner.clear_messages(
            conversation_id
        )

    async def get_phase_history(self, conversation_id: str) -> list[PhaseTransition]:
        """Phase history of this owner's conversation."""
        if not await self._owns(conversation_id):
            return []
        return await self.inner.get_phase_history(conversation_id)

    # -- messages ------------------------------------------------------------------------------

    async def add_messages(
        self,
        conversation_id: str,
        rows: Sequence[MessageRow],
        now: datetime,
        *,
        create_owner: tuple[str | None] | None = None,
    ) -> int | None:
        """Append to this owner's conversation (creating it for this owner when asked)."""
        found = await self.inner.get_conversation(conversation_id)
        if found is None and create_owner is not None and not self._other_owner(create_owner[0]):
            return await self.inner.add_messages(
                conversation_id, rows, now, create_owner=(self.owner,)
            )
        if found is None or found.owner != self.owner:
            return None
        return await self.inner.add_messages(conversation_id, rows, now)

    async def get_messages(
        self, conversation_id: str, *, after_seq: int, limit: int | None, offset: int
    ) -> list[Message]:
        """Messages of this owner's conversation."""
        if not await self._owns(conversation_id):
            return []
        return await self.inner.get_messages(
            conversation_id, after_seq=after_seq, limit=limit, offset=offset
        )

    async def get_last_messages(
        self, conversation_id: str, n: int, *, before_seq: int | None
    ) -> list[Message]:
        """The last messages of this owner's conversation."""
        if not await self._owns(conversation_id):
            return []
        return await self.inner.get_last_messages(conversation_id, n, before_seq=before_seq)

    async def count_messages(self, conversation_id: str) -> int:
        """Message count of this owner's conversation."""
        if not await self._owns(conversation_id):
            return 0
        return await self.inner.count_messages(conversation_id)

    # -- tool calls, sources, mashups ----------------------------------------------------------

    async def add_tool_call(
        self,
        row: ToolCallRow,
        *,
        create_owner: tuple[str | None] | None = None,
        sources: Sequence[SourceRow] = (),
        skip_known_urls: bool = False,
    ) -> int | None:
        """Record a tool call in this owner's conversation (creating it for this owner when
        asked)."""
        found = await self.inner.get_conversation(row.conversation_id)
        if found is None and create_owner is not None and not self._other_owner(create_owner[0]):
            return await self.inner.add_tool_call(
                row, create_owner=(self.owner,), sources=sources, skip_known_urls=skip_known_urls
            )
        if found is None or found.owner != self.owner:
            return None
        return await self.inner.add_tool_call(row, sources=sources, skip_known_urls=skip_known_urls)

    async def update_tool_call(
        self,
        tool_call_id: int,
        update: ToolCallUpdate,
        *,
        sources: Sequence[SourceRow] = (),
        skip_known_urls: bool = False,
    ) -> bool:
        """Update a tool call of this owner's."""
        if await self._owned_call(tool_call_id) is None:
            return False
        return await self.inner.update_tool_call(
            tool_call_id, update, sources=sources, skip_known_urls=skip_known_urls
        )

    async def get_tool_call(self, tool_call_id: int) -> ToolCall | None:
        """A tool call of this owner's."""
        return await self._owned_call(tool_call_id)

    async def get_tool_call_by_run(self, conversation_id: str, run_id: str) -> ToolCall | None:
        """A tool call of this owner's conversation, by run id."""
        if not await self._owns(conversation_id):
            return None
        return await self.inner.get_tool_call_by_run(conversation_id, run_id)

    async def get_tool_calls(self, conversation_id: str, *, with_sources: bool) -> list[ToolCall]:
        """Tool calls of this owner's conversation."""
        if not await self._owns(conversation_id):
            return []
        return await self.inner.get_tool_calls(conversation_id, with_sources=with_sources)

    async def add_web_sources(
        self,
        tool_call_id: int,
        rows: Sequence[SourceRow],
        now: datetime,
        *,
        skip_known_urls: bool = False,
    ) -> int | None:
        """Record sources of a tool call of this owner's."""
        if await self._owned_call(tool_call_id) is None:
            return None
        return await self.inner.add_web_sources(
            tool_call_id, rows, now, skip_known_urls=skip_known_urls
        )

    async def get_web_sources(self, conversation_id: str) -> list[WebSource]:
        """Sources of this owner's conversation."""
        if not await self._owns(conversation_id):
            return []
        return await self.inner.get_web_sources(conversation_id)

    async def create_mashup(self, row: MashupRow) -> int | None:
        """Record a mashup in this owner's conversation (linked only to its own tool calls)."""
        if not await self._owns(row.conversation_id):
            return None
        if row.tool_call_id is not None:
            call = await self.inner.get_tool_call(row.tool_call_id)
            if call is None or call.conversation_id != row.conversation_id:
                return None
        return await self.inner.create_mashup(row)

    async def get_mashups(self, conversation_id: str) -> list[Mashup]:
        """Mashups of this owner's conversation."""
        if not await self._owns(conversation_id):
            return []
        return await self.inner.get_mashups(conversation_id)

    # -- search, retention, statistics, import --------------------------------------------------

    async def search_messages(
        self,
        query: str,
        *,
        raw: bool,
        conversation_id: str | None,
        owner: str | None,
        limit: int,
    ) -> list[SearchHit]:
        """Search this owner's conversations only."""
        if self._other_owner(owner):
            return []
        return await self.inner.search_messages(
            query, raw=raw, conversation_id=conversation_id, owner=self.owner, limit=limit
        )

    async def delete_conversations(
        self,
        *,
        owner: str | None,
        idle_before: datetime | None,
        phase: str | None,
        dry_run: bool,
    ) -> list[ConversationSummary]:
        """Purge or erase among this owner's conversations only."""
        if self._other_owner(owner):
            return []
        return await self.inner.delete_conversations(
            owner=self.owner, idle_before=idle_before, phase=phase, dry_run=dry_run
        )

    async def stats(self, *, busiest: int) -> StoreStats:
        """Refused: statistics are store-wide."""
        raise InvalidInputError("stats() covers the whole store; call it on the unscoped store")

    async def import_conversation(self, document: ConversationDocument, *, replace: bool) -> bool:
        """Import as this owner's conversation; never over another owner's."""
        head = document.conversation
        if self._other_owner(head.owner):
            raise InvalidInputError(
                f"the document belongs to {head.owner!r}, not to {self.owner!r}"
            )
        existing = await self.inner.get_conversation(head.conversation_id)
        if existing is not None and existing.owner != self.owner:
            return False
        owned = document.model_copy(
            update={"conversation": head.model_copy(update={"owner": self.owner})}
        )
        return await self.inner.import_conversation(owned, replace=replace)
