"""The seed's usage example on the embedded default: a conversation, a phase change, a web
search tool call with its cited source, and the summary. No network, no API key.

Run it with ``make demo`` (or ``python samples/quickstart.py``); it writes ``lit_memory.db``
in the working directory (or wherever ``$LIT_MEMORY_URL`` points).
"""

from __future__ import annotations

import asyncio

from lit_memory import AsyncConversationDB, ConversationPhase, MessageRole, ToolCallType


async def main() -> None:
    """Store one short tutoring exchange and print what was stored."""
    async with AsyncConversationDB() as db:
        await db.init_db()
        conversation_id = "quickstart"
        await db.delete_conversation(conversation_id)  # rerunnable: start from a clean slate
        await db.create_conversation(conversation_id, {"topic": "jazz fusion"})
        await db.add_message(conversation_id, MessageRole.USER, "Hello! Teach me jazz fusion.")
        await db.add_message(conversation_id, MessageRole.ASSISTANT, "Let's look at its history.")
        await db.update_conversation_phase(
            conversation_id, ConversationPhase.GENRE_EXPLORATION, reason="user named a genre"
        )
        tool_call_id = await db.add_tool_call(
            conversation_id, ToolCallType.WEB_SEARCH, "jazz fusion history", status="pending"
        )
        assert tool_call_id is not None
        await db.update_tool_call(
            tool_call_id, output_data="Found information about jazz fusion", status="completed"
        )
        await db.add_web_source(
            tool_call_id,
            "https://example.com/jazz-fusion",
            "Jazz Fusion History",
            "Jazz fusion emerged in the late 1960s...",
            0.95,
        )
        summary = await db.get_conversation_summary(conversation_id)
        assert summary is not None
        print(f"conversation {summary.conversation_id}: phase {summary.phase.value}")
        print(f"Messages: {summary['message_count']}, tool calls: {summary.tool_call_count}")
        for message in await db.get_messages(conversation_id):
            print(f"  [{message.seq}] {message.role.value}: {message.content}")
        for call in await db.get_tool_calls(conversation_id):
            print(f"  tool {call.tool_type.value} ({call.status.value}): {call.input_data}")
            for source in call.sources:
                print(f"    source: {source.title} <{source.url}> score={source.relevance_score}")


if __name__ == "__main__":
    asyncio.run(main())
