"""Tests of the token-budget window over a conversation's messages."""

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call

from lit_memory_langchain.window import (
    approximate_token_count,
    format_sources,
    group_turn_units,
    is_complete_unit,
    select_window,
    validate_window,
)


def one_per_message(message: BaseMessage) -> int:
    return 1


def ai_calling(*call_ids: str | None, args: dict[str, Any] | None = None) -> AIMessage:
    calls = [tool_call(name="search", args=args or {"q": "x"}, id=i) for i in call_ids]
    return AIMessage(content="", tool_calls=calls)


def result(call_id: str, content: str = "found") -> ToolMessage:
    return ToolMessage(content=content, tool_call_id=call_id)


def tokens(messages: Sequence[BaseMessage]) -> int:
    return sum(approximate_token_count(m) for m in messages)


def same(left: Sequence[BaseMessage], right: Sequence[BaseMessage]) -> bool:
    return [id(m) for m in left] == [id(m) for m in right]


# approximate_token_count


def test_count_is_a_quarter_of_the_characters_rounded_up_plus_overhead() -> None:
    assert approximate_token_count(HumanMessage("")) == 4
    assert approximate_token_count(HumanMessage("a" * 40)) == 14
    assert approximate_token_count(HumanMessage("a" * 41)) == 15


def test_count_reads_text_blocks_and_other_blocks_as_json() -> None:
    text_only = HumanMessage(content=[{"type": "text", "text": "a" * 40}, "b" * 4])
    assert approximate_token_count(text_only) == 4 + 11
    image = {"type": "image", "url": "https://example.org/" + "p" * 400}
    assert approximate_token_count(HumanMessage(content=[image])) > 100


def test_count_includes_tool_call_names_and_arguments() -> None:
    small = approximate_token_count(ai_calling("c1", args={"q": "x"}))
    large = approximate_token_count(ai_calling("c1", args={"q": "x" * 4000}))
    assert large - small >= 999
    invalid = AIMessage(
        content="", invalid_tool_calls=[invalid_tool_call(name="f", args="{" * 400, id="c")]
    )
    assert approximate_token_count(invalid) >= 100


def test_count_ignores_tool_artifacts() -> None:
    plain = result("c1", "short")
    with_artifact = ToolMessage(content="short", tool_call_id="c1", artifact={"x": "y" * 10_000})
    assert approximate_token_count(with_artifact) == approximate_token_count(plain)


# group_turn_units


def test_units_group_an_ai_call_with_its_results_in_any_order() -> None:
    human, ai = HumanMessage("hi"), ai_calling("a", "b")
    tool_b, tool_a, answer = result("b"), result("a"), AIMessage("done")
    units = group_turn_units([human, ai, tool_b, tool_a, answer])
    assert units == [[human], [ai, tool_b, tool_a], [answer]]
    assert all(is_complete_unit(unit) for unit in units)


def test_units_flag_orphans_and_unanswered_calls() -> None:
    orphan, ai, answer = result("zz"), ai_calling("a", "b"), result("a")
    units = group_turn_units([orphan, ai, answer, HumanMessage("next")])
    assert units == [[orphan], [ai, answer], [units[2][0]]]
    assert [is_complete_unit(unit) for unit in units] == [False, False, True]


def test_units_do_not_take_results_separated_from_their_call() -> None:
    ai, human, late = ai_calling("a"), HumanMessage("interrupt"), result("a")
    units = group_turn_units([ai, human, late])
    assert units == [[ai], [human], [late]]
    assert not is_complete_unit(units[0]) and not is_complete_unit(units[2])


def test_a_call_without_id_can_never_be_complete() -> None:
    assert not is_complete_unit([ai_calling(None)])


# select_window


def test_system_message_is_kept_first_and_counted() -> None:
    system, old, new = SystemMessage("rules"), HumanMessage("old"), HumanMessage("new")
    window = select_window([system, old, new], 2, token_counter=one_per_message)
    assert window == [system, new]


def test_oversized_system_message_is_returned_alone() -> None:
    system = SystemMessage("s" * 4000)
    window = select_window([system, HumanMessage("hi")], 50)
    assert window == [system]


def test_budget_zero() -> None:
    history = [HumanMessage("hi"), AIMessage("hello")]
    assert select_window(history, 0) == []
    system = SystemMessage("rules")
    assert select_window([system, *history], 0) == [system]


def test_negative_budget_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        select_window([HumanMessage("hi")], -1)


def test_budget_is_respected_and_window_is_the_newest_messages() -> None:
    history = [HumanMessage(f"message {i}" * 5) for i in range(20)]
    window = select_window(history, 100)
    assert tokens(window) <= 100
    assert window == history[-len(window) :]
    assert tokens(history[-len(window) - 1 :]) > 100


def test_window_stops_at_the_first_unit_that_does_not_fit() -> None:
    small_old, huge, small_new = HumanMessage("a"), AIMessage("b" * 4000), HumanMessage("c")
    assert select_window([small_old, huge, small_new], 100) == [small_new]


def test_orphan_tool_results_are_dropped() -> None:
    human, answer = HumanMessage("hi"), AIMessage("hello")
    window = select_window([result("gone"), human, answer], 1000)
    assert window == [human, answer]


def test_unanswered_tool_calls_are_dropped_even_at_the_end() -> None:
    human, middle, answer = HumanMessage("hi"), ai_calling("a", "b"), result("a")
    ending = ai_calling("c")
    window = select_window([human, middle, answer, HumanMessage("more"), ending], 1000)
    assert [m.content for m in window] == ["hi", "more"]


def test_ai_call_and_its_results_are_never_split() -> None:
    ai, tool_a, tool_b = ai_calling("a", "b"), result("a"), result("b")
    history = [HumanMessage("q"), ai, tool_a, tool_b, AIMessage("answer")]
    for budget in range(6):
        window = select_window(history, budget, token_counter=one_per_message)
        assert validate_window(window) == []
        assert (ai in window) == (tool_a in window) == (tool_b in window)
    assert len(select_window(history, 3, token_counter=one_per_message)) == 1
    assert len(select_window(history, 4, token_counter=one_per_message)) == 4


def test_huge_tool_call_argument_shrinks_the_window() -> None:
    def history(argument: str) -> list[BaseMessage]:
        return [
            HumanMessage("question " * 10),
            ai_calling("a", args={"query": argument}),
            result("a", "result " * 10),
            AIMessage("answer " * 10),
        ]

    small = select_window(history("cats"), 200)
    huge = select_window(history("cats " * 1000), 200)
    assert len(small) == 4
    assert len(huge) < len(small)


def test_sources_message_follows_the_system_message_and_is_counted() -> None:
    system, sources = SystemMessage("rules"), SystemMessage("Sources:\n[1] https://a.example")
    old, new = HumanMessage("old"), HumanMessage("new")
    window = select_window(
        [system, old, new], 3, token_counter=one_per_message, sources_message=sources
    )
    assert window == [system, sources, new]
    assert validate_window(window) == []
    alone = select_window([old, new], 1, token_counter=one_per_message, sources_message=sources)
    assert alone == [sources]


def test_system_messages_are_dropped_when_not_kept_or_not_leading() -> None:
    system, human, note, answer = (
        SystemMessage("rules"),
        HumanMessage("hi"),
        SystemMessage("mid-conversation note"),
        AIMessage("hello"),
    )
    assert select_window([system, human, note, answer], 1000) == [system, human, answer]
    assert select_window([system, human, answer], 1000, keep_system=False) == [human, answer]


def test_any_iterable_is_accepted() -> None:
    messages = (HumanMessage(str(i)) for i in range(3))
    assert [m.content for m in select_window(messages, 1000)] == ["0", "1", "2"]


def test_trim_messages_can_start_with_an_orphan_tool_result() -> None:
    """trim_messages(strategy="last") cuts between a tool call and its result."""

    def count_messages(messages: list[BaseMessage]) -> int:
        return len(messages)

    history = [HumanMessage("q"), ai_calling("a"), result("a"), AIMessage("answer")]
    trimmed = trim_messages(history, strategy="last", token_counter=count_messages, max_tokens=2)
    assert isinstance(trimmed[0], ToolMessage)
    assert validate_window(trimmed) != []
    window = select_window(history, 2, token_counter=one_per_message)
    assert window == [history[-1]]
    assert validate_window(window) == []


# format_sources


def test_format_sources() -> None:
    text = format_sources([("https://a.example", "Paper A"), ("https://b.example", None)])
    assert text == "Sources:\n[1] Paper A — https://a.example\n[2] https://b.example"
    assert format_sources([("https://c.example", "  ")]) == "Sources:\n[1] https://c.example"
    assert format_sources([]) == ""


# validate_window


def test_validate_accepts_a_valid_window() -> None:
    window = [
        SystemMessage("rules"),
        SystemMessage("Sources: ..."),
        HumanMessage("q"),
        ai_calling("a", "b"),
        result("b"),
        result("a"),
        AIMessage("answer"),
    ]
    assert validate_window(window) == []


@pytest.mark.parametrize(
    ("window", "fragment"),
    [
        ([result("a")], "answers no preceding tool call"),
        ([HumanMessage("q"), SystemMessage("late")], "system message after the start"),
        ([ai_calling("a", "b"), result("a")], "'b' has no result"),
        ([ai_calling("a"), HumanMessage("q"), result("a")], "'a' has no result"),
        ([ai_calling("a"), result("a"), result("a")], "second result"),
        ([ai_calling(None)], "without an id"),
        ([ai_calling("a"), result("a"), AIMessage("x"), result("a")], "answers no preceding"),
    ],
)
def test_validate_reports_each_violation(window: list[BaseMessage], fragment: str) -> None:
    problems = validate_window(window)
    assert any(fragment in problem for problem in problems), problems


# Property: every window of every (possibly corrupted) history is valid, fits, and is maximal.

VALID_KINDS = ["human", "human", "ai", "tools", "tools"]
CORRUPT_KINDS = ["orphan", "unanswered", "duplicate", "no_id", "system"]


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[BaseMessage], list[list[BaseMessage]], bool]:
    """Draw a history, its sendable units (after the leading system) and if it is corrupt."""
    ids = (f"call-{n}" for n in itertools.count())
    corrupt_allowed = draw(st.integers(0, 3)) == 0
    kinds = VALID_KINDS + (CORRUPT_KINDS if corrupt_allowed else [])
    history: list[BaseMessage] = []
    if draw(st.booleans()):
        history.append(SystemMessage("s" * draw(st.integers(0, 200))))
    expected: list[list[BaseMessage]] = []
    answered: list[str] = []
    corrupt = False
    for kind in draw(st.lists(st.sampled_from(kinds), max_size=12)):
        if kind == "system" and all(isinstance(m, SystemMessage) for m in history):
            kind = "human"  # a system message there would still open the history: valid
        unit = draw_unit(draw, kind, ids, answered)
        history.extend(unit)
        if kind in VALID_KINDS:
            expected.append(unit)
        corrupt = corrupt or kind in CORRUPT_KINDS
    return history, expected, corrupt


def draw_unit(
    draw: st.DrawFn, kind: str, ids: Iterator[str], answered: list[str]
) -> list[BaseMessage]:
    """Draw the messages of one unit of the given kind; tool units record their answered ids."""
    text = "w" * draw(st.integers(0, 120))
    if kind == "human":
        return [HumanMessage(text)]
    if kind == "ai":
        return [AIMessage(text)]
    if kind == "system":
        return [SystemMessage(text)]
    if kind == "orphan":
        return [result(f"orphan-{next(ids)}", text)]
    if kind == "duplicate":
        return [result(draw(st.sampled_from(answered)) if answered else "never", text)]
    call_ids: list[str | None] = [next(ids) for _ in range(draw(st.integers(1, 3)))]
    if kind == "no_id":
        call_ids.append(None)
    args = {"query": "a" * draw(st.integers(0, 80))}
    order = [i for i in draw(st.permutations(call_ids)) if i is not None]
    if kind == "unanswered":
        order = order[: draw(st.integers(0, len(order) - 1))]
    if kind == "tools":
        answered.extend(order)
    return [ai_calling(*call_ids, args=args), *(result(i, text) for i in order)]


def flatten(units: Sequence[Sequence[BaseMessage]]) -> list[BaseMessage]:
    return [message for unit in units for message in unit]


@settings(max_examples=200, deadline=None)
@given(histories(), st.data())
def test_every_window_is_valid_fitting_contiguous_and_maximal(
    drawn: tuple[list[BaseMessage], list[list[BaseMessage]], bool], data: st.DataObject
) -> None:
    history, expected, corrupt = drawn
    assert (validate_window(history) != []) == corrupt
    keep_system = data.draw(st.booleans())
    sources = data.draw(st.sampled_from([None, SystemMessage(format_sources([("u", "t")]))]))
    has_system = bool(history) and isinstance(history[0], SystemMessage)
    pinned = [history[0]] if has_system and keep_system else []
    pinned += [sources] if sources is not None else []
    # Around the pinned cost, so that most budgets leave room for some of the history.
    spare = data.draw(st.integers(-10, tokens(history) + 10))
    max_tokens = max(0, tokens(pinned) + spare)

    window = select_window(
        iter(history), max_tokens, keep_system=keep_system, sources_message=sources
    )

    assert same(window[: len(pinned)], pinned)
    assert validate_window(window) == []
    rest = window[len(pinned) :]
    starts = [k for k in range(len(expected) + 1) if same(flatten(expected[k:]), rest)]
    assert starts, "the window is not a suffix of whole sendable units"
    start = starts[0]
    assert tokens(window) <= max_tokens or same(window, pinned)
    if start > 0:
        assert tokens(window) + tokens(expected[start - 1]) > max_tokens
