"""The mashup tutor: an agent taken through every phase, everything captured by lit-memory.

A scripted chat model (deterministic: no network, no API key) plays a music-mashup tutor in
four turns. It explains a theory point, searches the web (a search tool returning results in
the shape Tavily returns them), cites what it found, plans a mashup and generates it. Nothing
here writes to the store by hand:

- `LitMemoryMiddleware` stores every message of every turn and loads earlier turns back;
- `LitCallbackHandler` stores every tool call, the web sources in its output and the mashup
  the generator tool returns;
- `PhaseTracker` moves the conversation through the default phase flow from the tool events.

Run it with ``make demo`` or ``python samples/mashup_agent.py [path-or-url]``; then look at
the conversation with ``lit-memory show mashup-demo``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from lit_memory import ConversationDB
from lit_memory_langchain import (
    LitCallbackHandler,
    LitMemoryMiddleware,
    PhaseTracker,
    close_shared_stores,
)

CONVERSATION = "mashup-demo"


class ScriptedTutor(GenericFakeChatModel):
    """A chat model that replays its script; binding tools changes nothing."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedTutor:
        return self


@tool
def explain_theory(topic: str) -> str:
    """Explain a music-theory point to the learner."""
    return (
        "Bebop swings eighth notes at 200-300 BPM over ii-V-I changes; UK drill sits at about "
        "140 BPM in half-time with sliding 808 bass and triplet hi-hats. Half-time drill at 140 "
        "lines up with bebop at 280: one drill bar holds two bebop bars."
    )


@tool
def web_search(query: str) -> str:
    """Search the web (canned results in Tavily's shape: this sample needs no network)."""
    results = [
        {
            "url": "https://en.wikipedia.org/wiki/Bebop",
            "title": "Bebop - Wikipedia",
            "content": "Bebop developed in the early 1940s in New York: fast tempos, complex "
            "chord progressions and virtuosic improvisation (Parker, Gillespie, Monk).",
            "score": 0.91,
            "raw_content": None,
        },
        {
            "url": "https://en.wikipedia.org/wiki/UK_drill?utm_source=search",
            "title": "UK drill - Wikipedia",
            "content": "UK drill emerged in South London around 2012, adapting Chicago drill "
            "with sliding 808s and dark melodies at roughly 140 BPM.",
            "score": 0.87,
            "raw_content": None,
        },
        {
            "url": "https://www.britannica.com/art/bebop",
            "title": "Bebop | Definition, Musicians, & Facts | Britannica",
            "content": "Bebop marked jazz's shift from dance music to a musician's art form.",
            "score": 0.64,
            "raw_content": None,
        },
    ]
    return json.dumps({"query": query, "results": results, "response_time": 1.24})


@tool
def plan_mashup(source_a: str, source_b: str, bpm: int) -> str:
    """Plan a mashup of two styles at a shared tempo."""
    return f"Plan: {source_a} head over {source_b} half-time groove at {bpm} BPM, 32 bars."


@tool
def generate_mashup(title: str, bpm: int) -> dict[str, Any]:
    """Render the planned mashup (canned: this sample makes no audio)."""
    return {
        "title": title,
        "description": "A Parker-style bebop head over a half-time UK drill groove.",
        "audio_file_path": "mashups/bebop-x-drill.wav",
        "metadata": {"bpm": bpm, "key": "F major", "bars": 32},
    }


def call(name: str, call_id: str, **args: Any) -> AIMessage:
    """A scripted tool call."""
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


SCRIPT = [
    call("explain_theory", "call-theory", topic="bebop and drill rhythm"),
    AIMessage("Drill's half-time 140 BPM equals bebop's 280: the two can share a grid."),
    call("web_search", "call-search", query="history of bebop and UK drill"),
    AIMessage("Bebop grew out of 1940s New York [1]; UK drill out of 2010s South London [2]."),
    call("plan_mashup", "call-plan", source_a="bebop", source_b="UK drill", bpm=140),
    AIMessage("The plan: a bebop head over a drill groove at 140 BPM, 32 bars."),
    call("generate_mashup", "call-generate", title="Bebop x Drill", bpm=140),
    AIMessage("Done: 'Bebop x Drill' is ready at mashups/bebop-x-drill.wav."),
]
TURNS = [
    "I want to mash up bebop and UK drill. How can their rhythms fit?",
    "Where do the two styles come from?",
    "Great, let's plan it.",
    "Generate it!",
]


def run_agent(db: str | None) -> None:
    """Play the four turns; the middleware, handler and tracker store everything."""
    handler = LitCallbackHandler(db, conversation_id=CONVERSATION)
    tracker = PhaseTracker(db, conversation_id=CONVERSATION)
    agent = create_agent(
        ScriptedTutor(messages=iter(SCRIPT)),
        tools=[explain_theory, web_search, plan_mashup, generate_mashup],
        system_prompt="You are a music-mashup tutor. Explain, research, cite, then create.",
        middleware=[LitMemoryMiddleware(db, conversation_id=CONVERSATION)],
    )
    for question in TURNS:
        result = agent.invoke(
            {"messages": [HumanMessage(question)]}, {"callbacks": [handler, tracker]}
        )
        print(f"user:      {question}\nassistant: {result['messages'][-1].text}")
    handler.close()
    tracker.close()


def print_stored(db: str | None) -> None:
    """Print what lit-memory stored for the conversation."""
    with ConversationDB(db) as store:
        summary = store.get_conversation_summary(CONVERSATION)
        print(f"\nstored conversation {CONVERSATION!r}: phase {summary.phase.value}, "
              f"{summary.message_count} messages, {summary.tool_call_count} tool calls, "
              f"{summary.web_source_count} sources, {summary.mashup_count} mashup")  # fmt: skip
        print("phase history:")
        for step in store.get_phase_history(CONVERSATION):
            print(f"  {step.from_phase.value} -> {step.to_phase.value}  ({step.reason})")
        print("tool calls:")
        for tool_call in store.get_tool_calls(CONVERSATION):
            print(f"  {tool_call.tool_name} [{tool_call.tool_type.value}] "
                  f"{tool_call.status.value} in {tool_call.duration_ms:.1f} ms")  # fmt: skip
            for source in tool_call.sources:
                print(f"    [{source.rank}] {source.title} <{source.url}>")
        for mashup in store.get_mashups(CONVERSATION):
            print(f"mashup: {mashup.title} -> {mashup.audio_file_path}")
    print(f"\nsee it all with: lit-memory show {CONVERSATION}")


def main(db: str | None) -> None:
    """Start from a clean slate, run the agent, print the stored rows."""
    with ConversationDB(db) as store:
        store.delete_conversation(CONVERSATION)  # rerunnable
    try:
        run_agent(db)
    finally:
        close_shared_stores()
    print_stored(db)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
