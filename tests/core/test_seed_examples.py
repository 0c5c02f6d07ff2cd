"""The seed document's two usage examples, verbatim but for the import line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lit_memory import AsyncConversationDB, ConversationPhase, MessageRole, ToolCallType


async def test_seed_examples_run_verbatim_on_the_embedded_default(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("LIT_MEMORY_URL")
    monkeypatch.chdir(tmp_path)

    # --- the seed's "Basic Database Operations", verbatim ---
    # Initialize database
    async with AsyncConversationDB() as db:
        await db.init_db()

        # Create conversation
        conversation_id = "conv_123"
        await db.create_conversation(conversation_id)

        # Add messages
        await db.add_message(conversation_id, MessageRole.USER, "Hello!")
        await db.add_message(conversation_id, MessageRole.ASSISTANT, "Hi there!")

        # Update phase
        await db.update_conversation_phase(conversation_id, ConversationPhase.GENRE_EXPLORATION)

        # Get summary
        summary = await db.get_conversation_summary(conversation_id)
        print(f"Messages: {summary['message_count']}")

        # --- the seed's "Tool Call Tracking", verbatim ---
        # Add tool call
        tool_call_id = await db.add_tool_call(
            conversation_id, ToolCallType.WEB_SEARCH, "jazz fusion history", status="pending"
        )

        # Update with results
        await db.update_tool_call(
            tool_call_id, output_data="Found information about jazz fusion", status="completed"
        )

        # Add web source
        await db.add_web_source(
            tool_call_id,
            "https://example.com/jazz-fusion",
            "Jazz Fusion History",
            "Jazz fusion emerged in the late 1960s...",
            0.95,
        )

    assert capsys.readouterr().out == "Messages: 2\n"
    # Everything landed in the embedded default file, in the working directory.
    with sqlite3.connect(tmp_path / "lit_memory.db") as raw:
        assert raw.execute("SELECT role, content FROM messages ORDER BY seq").fetchall() == [
            ("user", "Hello!"),
            ("assistant", "Hi there!"),
        ]
        assert raw.execute("SELECT phase FROM conversations").fetchall() == [("genre_exploration",)]
        call = raw.execute(
            "SELECT tool_type, input_data, output_data, status, completed_at FROM tool_calls"
        ).fetchone()
        assert call[:4] == (
            "web_search",
            "jazz fusion history",
            "Found information about jazz fusion",
            "completed",
        )
        assert call[4] is not None
        assert raw.execute(
            "SELECT conversation_id, url, title, snippet, relevance_score FROM web_sources"
        ).fetchall() == [
            (
                "conv_123",
                "https://example.com/jazz-fusion",
                "Jazz Fusion History",
                "Jazz fusion emerged in the late 1960s...",
                0.95,
            )
        ]
