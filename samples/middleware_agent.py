"""An agent that remembers: `create_agent` with `LitMemoryMiddleware`.

A scripted chat model (no network, no API key) drives a music-mashup agent through two
turns; in each it calls a web-search tool, then answers. The middleware stores every
message of each turn (question, tool call, tool result, answer) and, on the second turn,
loads the first one back into the agent without any checkpointer. Then the stored rows are
printed.

Run it with ``python samples/middleware_agent.py [path-or-url]``: it writes to the given
database, or to the embedded default (``$LIT_MEMORY_URL``, else ``./lit_memory.db``).
"""

from __future__ import annotations

import sys
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from lit_memory_langchain import LitChatMessageHistory, LitMemoryMiddleware, close_shared_stores

CONVERSATION = "middleware-agent-sample"


class ScriptedModel(GenericFakeChatModel):
    """A chat model that replays a script; tools are "bound" by ignoring them."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self


@tool
def web_search(query: str) -> str:
    """Search the web (canned results: this sample needs no network)."""
    return (
        f"Results for {query!r}:\n"
        "1. Daft Punk - Wikipedia (https://en.wikipedia.org/wiki/Daft_Punk)\n"
        "2. The Well-Tempered Clavier (https://en.wikipedia.org/wiki/The_Well-Tempered_Clavier)"
    )


def search(query: str, call_id: str) -> AIMessage:
    """The scripted model's tool call."""
    return AIMessage(
        "", tool_calls=[{"name": "web_search", "args": {"query": query}, "id": call_id}]
    )


SCRIPT = [
    search("Daft Punk tempo", "call-1"),
    AIMessage("Daft Punk's 'Around the World' runs at about 121 BPM [1]."),
    search("Bach prelude in C major tempo", "call-2"),
    AIMessage("Play Bach's C major prelude at 121 BPM over the Daft Punk groove [2]."),
]
QUESTIONS = ["How fast is Daft Punk's music?", "Which Bach piece fits that tempo?"]


def main(db: str | None) -> None:
    """Run two agent turns, then print the rows the middleware stored."""
    history = LitChatMessageHistory(CONVERSATION, db)
    history.clear()  # rerunnable: start from a clean slate
    agent = create_agent(
        ScriptedModel(messages=iter(SCRIPT)),
        tools=[web_search],
        system_prompt="You are a music-mashup tutor. Cite your sources.",
        middleware=[LitMemoryMiddleware(db, conversation_id=CONVERSATION)],
    )
    for question in QUESTIONS:
        # Only the new question goes in: the middleware brings the earlier turns.
        result = agent.invoke({"messages": [HumanMessage(question)]})
        print(f"user:      {question}\nassistant: {result['messages'][-1].text}")
        print(f"           (the agent saw {len(result['messages'])} messages this turn)")
    print(f"\nstored in conversation {CONVERSATION!r}:")
    for message in history.messages:
        calls = getattr(message, "tool_calls", None)
        text = f"calls {calls[0]['name']}({calls[0]['args']})" if calls else message.text
        print(f"  {message.type:>5}  {text.splitlines()[0]}")


if __name__ == "__main__":
    try:
        main(sys.argv[1] if len(sys.argv) > 1 else None)
    finally:
        close_shared_stores()
