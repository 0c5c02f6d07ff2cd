"""A small, deterministic body of stored data, and a way to tell whether any of it was lost."""

from __future__ import annotations

from typing import Any

from lit_memory import AsyncConversationDB


async def populate(db: AsyncConversationDB, conversations: int = 3, turns: int = 5) -> None:
    """Conversations with turns, a tool call with sources, a mashup and a phase change each."""
    for c in range(conversations):
        cid = f"kept-{c}"
        await db.create_conversation(cid, {"topic": "bebop", "n": c}, owner=f"owner-{c % 2}")
        for t in range(turns):
            await db.add_messages(
                cid,
                [
                    {"role": "user", "content": f"{cid} question {t} about bebop", "uid": f"q{t}"},
                    {"role": "assistant", "content": f"{cid} answer {t}: Charlie Parker",
                     "uid": f"a{t}", "metadata": {"t": t}},
                ],
            )  # fmt: skip
        tid = await db.add_tool_call(
            cid, "web_search", {"query": f"{cid} bebop"}, status="running", run_id=f"{cid}-run"
        )
        assert tid is not None
        await db.add_web_sources(
            tid, [{"url": f"https://jazz.example/{cid}/{r}", "rank": r} for r in (1, 2)]
        )
        await db.update_tool_call(tid, output_data={"hits": 2}, status="completed")
        await db.create_mashup(cid, f"{cid} mix", "tempo study", "out/mix.wav", {"bpm": 140})
        await db.update_conversation_phase(cid, "genre_exploration", reason="genre named")


async def snapshot(db: AsyncConversationDB) -> dict[str, Any]:
    """Every conversation, exported: what a loss would show up in."""
    conversations = await db.list_conversations(limit=10_000)
    return {c.conversation_id: await db.export_conversation(c.conversation_id)
            for c in conversations}  # fmt: skip


def lost(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What `before` held that `after` lacks or holds differently (rows added since are fine)."""
    missing = []
    for cid, document in before.items():
        now = after.get(cid)
        if now is None:
            missing.append(f"conversation {cid}")
            continue
        for part in ("messages", "tool_calls", "mashups", "phase_transitions"):
            kept = now[part][: len(document[part])]
            if kept != document[part]:
                missing.append(f"{cid}: {part}")
        if now["conversation"]["metadata"] != document["conversation"]["metadata"]:
            missing.append(f"{cid}: metadata")
    return missing
