"""S6: an agent run with and without lit-memory's callback handler and phase tracker.

The agent is LangChain's `create_agent` with a scripted chat model (no network): each turn
the model asks for N web searches at once, the tools answer with search-engine results, and
the model answers. With lit-memory attached, every tool call, its timing and its cited
sources are stored and the phase tracker moves the conversation through its flow; the run
ends only when the handlers have flushed everything to the store.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool

from .context import Context
from .places import SqlitePlace
from .results import Scenario

WITH, WITHOUT = "agent + lit-memory handlers", "agent alone"
NO_OP = "agent + 2 no-op handlers"
"""LangChain's own cost of dispatching every event to two handlers that do nothing (run
inline, as lit-memory's are): the floor under any callback handler's overhead."""


class ScriptedModel(BaseChatModel):
    """A deterministic chat model: N tool calls after a human message, an answer after the
    tool results."""

    tool_calls: int = 3

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:
        """Tools change nothing: the script decides."""
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        return self._generate(messages)

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, HumanMessage):
            turn = str(last.content).split("]", 1)[0].lstrip("[")
            calls = [
                {"name": "web_search", "args": {"query": f"mashup roots {turn} {i}"},
                 "id": f"call-{turn}-{i}", "type": "tool_call"}
                for i in range(self.tool_calls)
            ]  # fmt: skip
            return AIMessage(content="", tool_calls=calls)
        return AIMessage(content="Here is what the sources say about these two genres. [1][2]")


@tool
def web_search(query: str) -> list[dict[str, Any]]:
    """Search the web (scripted: returns three results like a search API)."""
    key = "-".join(query.split())
    return [
        {"url": f"https://music.example.org/{key}/{rank}", "title": f"Result {rank} for {query}",
         "content": f"About {query}: origins, artists and records. " * 4, "score": 0.9 - rank / 10}
        for rank in range(3)
    ]  # fmt: skip


def handlers_available() -> str | None:
    """None when LitCallbackHandler and PhaseTracker import, else why not."""
    try:
        from langchain.agents import create_agent  # noqa: F401

        from lit_memory_langchain.callbacks import LitCallbackHandler  # noqa: F401
        from lit_memory_langchain.phases import PhaseTracker  # noqa: F401
    except ImportError as exc:
        return f"not available ({exc})"
    return None


async def s6_agent(ctx: Context) -> Scenario:
    """The same scripted agent run, with and without the handlers; ms per turn."""
    cfg = ctx.config
    scenario = Scenario(
        "s6", f"agent run: {cfg.s6_turns} turns, {cfg.s6_tools} tool calls each, with and "
        "without LitCallbackHandler + PhaseTracker", "ms/turn", False,
    )  # fmt: skip
    scenario.skipped = handlers_available()
    if scenario.skipped:
        return scenario
    from langchain.agents import create_agent

    agent = create_agent(ScriptedModel(tool_calls=cfg.s6_tools), tools=[web_search])
    place = SqlitePlace(ctx)
    await _run(agent, cfg.s6_turns, None)  # warm-up: imports, graph compilation
    for repeat in range(cfg.repeats):
        order = (WITHOUT, NO_OP, WITH)
        for name in order if repeat % 2 == 0 else order[::-1]:
            ctx.log(f"  s6 repeat {repeat + 1}: {name}")
            elapsed, check = await _measured_run(agent, cfg, place, name)
            scenario.add(name, elapsed / cfg.s6_turns * 1e3, ops=cfg.s6_turns, check=check)
    return scenario


class _NoOpHandler(BaseCallbackHandler):
    run_inline = True


async def _measured_run(agent: Any, cfg: Any, place: SqlitePlace, name: str) -> Any:
    if name != WITH:
        handlers = [_NoOpHandler(), _NoOpHandler()] if name == NO_OP else None
        started = time.perf_counter()
        await _run(agent, cfg.s6_turns, handlers)
        return time.perf_counter() - started, "ok"
    from lit_memory import AsyncConversationDB
    from lit_memory_langchain.callbacks import LitCallbackHandler
    from lit_memory_langchain.phases import PhaseTracker

    target = await place.fresh("s6")
    conversation = "agent-run"
    async with AsyncConversationDB(target) as db:
        await db.init_db()
        handlers = [LitCallbackHandler(db, conversation), PhaseTracker(db, conversation)]
        started = time.perf_counter()
        await _run(agent, cfg.s6_turns, handlers)
        for handler in handlers:
            await handler.aflush()
        elapsed = time.perf_counter() - started
        for handler in handlers:
            await handler.aclose()
        check = await _check_stored(db, conversation, cfg.s6_turns * cfg.s6_tools)
    await place.release(target)
    return elapsed, check


async def _run(agent: Any, turns: int, handlers: list[Any] | None) -> None:
    config: dict[str, Any] = {"callbacks": handlers} if handlers else {}
    for turn in range(turns):
        message = HumanMessage(content=f"[{turn}] How do these two genres fit together?")
        await agent.ainvoke({"messages": [message]}, config=config)


async def _check_stored(db: Any, conversation: str, calls: int) -> str:
    """Every tool call stored, completed, with its three sources."""
    stored = await db.get_tool_calls(conversation)
    if len(stored) != calls:
        return f"{len(stored)} tool calls stored, {calls} made"
    unfinished = [c for c in stored if str(c.status.value) != "completed"]
    if unfinished:
        return f"{len(unfinished)} tool calls not completed"
    if sum(len(c.sources) for c in stored) != 3 * calls:
        return "sources missing"
    return "ok"
