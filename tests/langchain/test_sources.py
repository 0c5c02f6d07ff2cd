"""Tests for lit_memory_langchain.sources: web sources extracted from tool outputs."""

from __future__ import annotations

import json
import math
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from lit_memory_langchain.sources import (
    ExtractedSource,
    SourceExtractors,
    citations_from_message,
    extract_sources,
    normalize_url,
    tool_error_message,
)


def urls(sources: list[ExtractedSource]) -> list[str]:
    return [source.url for source in sources]


# Example outputs, written by hand to follow each tool's documented shape.

TAVILY_RESPONSE: dict[str, Any] = {
    "query": "rust borrow checker explained",
    "follow_up_questions": None,
    "answer": None,
    "images": [],
    "results": [
        {
            "url": "https://doc.rust-lang.org/book/ch04-02-references-and-borrowing.html",
            "title": "References and Borrowing - The Rust Programming Language",
            "content": "A reference is like a pointer in that it's an address we can follow.",
            "score": 0.91,
            "raw_content": None,
        },
        {
            "url": "https://blog.example.org/borrowck?utm_source=tavily#intro",
            "title": "Understanding the borrow checker",
            "content": "The borrow checker enforces aliasing XOR mutability.",
            "score": 0.77,
            "raw_content": "Full page text ...",
        },
    ],
    "response_time": 1.42,
    "request_id": "5f1c9a4e-0000-4000-8000-000000000000",
}

DDG_RAW = [
    {
        "snippet": "SQLite is a C-language library that implements a small, fast SQL engine.",
        "title": "SQLite Home Page",
        "link": "https://www.sqlite.org/index.html",
    },
    {
        "snippet": "WAL mode allows readers and a writer to proceed concurrently.",
        "title": "Write-Ahead Logging",
        "link": "https://www.sqlite.org/wal.html",
    },
]

DDG_TEXT = (
    "snippet: SQLite is a C-language library that implements a small, fast SQL engine., "
    "title: SQLite Home Page, link: https://www.sqlite.org/index.html, "
    "snippet: WAL mode allows readers and a writer to proceed concurrently., "
    "title: Write-Ahead Logging, link: https://www.sqlite.org/wal.html, "
    "snippet: Compare journal modes, with examples, title: Journal modes, "
    "link: https://Example.COM:443/sqlite/journal?mode=wal"
)

BRAVE_JSON = json.dumps(
    [
        {
            "title": "Python 3.11 release notes",
            "link": "https://docs.python.org/3/whatsnew/3.11.html",
            "snippet": "<strong>Python</strong> 3.11 is between 10-60% faster &amp; has "
            "better error messages.",
        },
        {
            "title": "PEP 654 &#x27;Exception Groups&#x27;",
            "link": "https://peps.python.org/pep-0654/",
            "snippet": "This PEP proposes <strong>ExceptionGroup</strong> and except*.",
        },
    ]
)

SERPER_RESULT: dict[str, Any] = {
    "searchParameters": {"q": "postgres vacuum", "gl": "us", "type": "search", "num": 10},
    "knowledgeGraph": {"title": "PostgreSQL", "descriptionLink": "https://en.wikipedia.org/"},
    "organic": [
        {
            "title": "Routine Vacuuming - PostgreSQL Documentation",
            "link": "https://www.postgresql.org/docs/current/routine-vacuuming.html",
            "snippet": "PostgreSQL databases require periodic maintenance known as vacuuming.",
            "sitelinks": [
                {"title": "Autovacuum", "link": "https://www.postgresql.org/docs/autovacuum"}
            ],
            "position": 1,
        },
        {
            "title": "VACUUM explained",
            "link": "https://wiki.example.net/vacuum",
            "snippet": "VACUUM reclaims storage occupied by dead tuples.",
            "attributes": {"Missing": "full"},
            "position": 3,
        },
    ],
    "peopleAlsoAsk": [{"question": "What does VACUUM do?", "link": "https://qa.example.com/1"}],
    "credits": 1,
    "cached": True,
    "date": None,
}


@dataclass
class FakeExaResult:
    url: str
    id: str
    title: str | None = None
    score: float | None = None
    text: str | None = None
    highlights: list[str] | None = None
    summary: str | None = None

    def __str__(self) -> str:
        return (
            f"Title: {self.title}\n"
            f"URL: {self.url}\n"
            f"ID: {self.id}\n"
            f"Score: {self.score}\n"
            f"Published Date: 2024-03-01T00:00:00.000Z\n"
            f"Author: None\n"
            f"Text: {self.text}\n"
            f"Highlights: {self.highlights}\n"
            f"Summary: {self.summary}\n"
        )


@dataclass
class FakeExaResponse:
    results: list[FakeExaResult] = field(default_factory=list)
    autoprompt_string: str | None = None

    def __str__(self) -> str:
        text = "\n\n".join(str(result) for result in self.results)
        return text + f"\n\nAutoprompt String: {self.autoprompt_string}"


EXA_RESPONSE = FakeExaResponse(
    results=[
        FakeExaResult(
            url="https://arxiv.org/abs/2310.08560",
            id="https://arxiv.org/abs/2310.08560",
            title="MemGPT: Towards LLMs as Operating Systems",
            score=0.2134,
            text="Large language models (LLMs) have revolutionized AI,\nbut are constrained.",
            highlights=["we propose virtual context management", "inspired by OS paging"],
        ),
        FakeExaResult(
            url="https://www.example.edu/papers/long-context",
            id="abc",
            title="Long context survey",
            score=None,
            text="Line one of the page.\nLine two of the page.",
        ),
    ],
    autoprompt_string="Here is a paper about LLM memory:",
)


# normalize_url


def test_normalize_url_lowercases_scheme_and_host_and_drops_default_port() -> None:
    assert normalize_url("HTTPS://Example.COM:443/Path/Case") == "https://example.com/Path/Case"
    assert normalize_url("http://example.com:80/a") == "http://example.com/a"
    assert normalize_url("http://example.com:8080/a") == "http://example.com:8080/a"


def test_normalize_url_drops_fragment_and_tracking_params_only() -> None:
    url = "https://example.com/a?id=7&utm_source=x&UTM_Medium=y&gclid=1&fbclid=2&q=a%20b#top"
    assert normalize_url(url) == "https://example.com/a?id=7&q=a%20b"
    assert normalize_url("https://example.com/?utm_campaign=z") == "https://example.com/"


def test_normalize_url_keeps_path_and_adds_root_for_empty_path() -> None:
    assert normalize_url("https://example.com") == "https://example.com/"
    assert normalize_url("  https://example.com/a/b/  ") == "https://example.com/a/b/"


def test_normalize_url_drops_credentials_and_handles_ipv6() -> None:
    assert normalize_url("https://user:pw@example.com/x") == "https://example.com/x"
    assert normalize_url("http://[2001:DB8::1]:8080/") == "http://[2001:db8::1]:8080/"


@pytest.mark.parametrize(
    "bad",
    [
        "javascript:alert(1)",
        "mailto:someone@example.com",
        "ftp://example.com/file",
        "data:text/html,hi",
        "",
        "not a url",
        "example.com/no-scheme",
        "http://",
        "https:///path-only",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "https://example.com/" + "a" * 5000,
    ],
)
def test_normalize_url_rejects_non_http_urls(bad: str) -> None:
    assert normalize_url(bad) is None


def test_normalize_url_rejects_non_strings() -> None:
    assert normalize_url(None) is None  # type: ignore[arg-type]
    assert normalize_url(42) is None  # type: ignore[arg-type]


def test_extracted_source_is_frozen() -> None:
    source = ExtractedSource(url="https://example.com/")
    with pytest.raises(FrozenInstanceError):
        source.url = "https://other.example/"  # type: ignore[misc]


# Tavily (langchain-tavily TavilySearch)


def test_tavily_search_dict_and_json_give_same_sources() -> None:
    expected = [
        ExtractedSource(
            url="https://doc.rust-lang.org/book/ch04-02-references-and-borrowing.html",
            title="References and Borrowing - The Rust Programming Language",
            snippet="A reference is like a pointer in that it's an address we can follow.",
            score=0.91,
            rank=1,
        ),
        ExtractedSource(
            url="https://blog.example.org/borrowck",
            title="Understanding the borrow checker",
            snippet="The borrow checker enforces aliasing XOR mutability.",
            score=0.77,
            rank=2,
        ),
    ]
    assert extract_sources(TAVILY_RESPONSE) == expected
    assert extract_sources(json.dumps(TAVILY_RESPONSE)) == expected


def test_tavily_snippet_falls_back_to_raw_content_for_extract_results() -> None:
    extract = {"results": [{"url": "https://example.com/p", "raw_content": "Page body"}]}
    assert extract_sources(extract)[0].snippet == "Page body"


# TavilySearchResults (langchain_community) and DuckDuckGoSearchResults


def test_tavily_search_results_prefers_artifact_over_content() -> None:
    content = [{"url": r["url"], "content": r["content"]} for r in TAVILY_RESPONSE["results"]]
    message = ToolMessage(
        content=json.dumps(content),
        artifact=TAVILY_RESPONSE,
        tool_call_id="call_9",
        name="tavily_search_results_json",
    )
    sources = extract_sources(message)
    assert [s.title for s in sources] == [
        "References and Borrowing - The Rust Programming Language",
        "Understanding the borrow checker",
    ]
    assert [s.score for s in sources] == [0.91, 0.77]


def test_tavily_search_results_uses_json_content_without_artifact() -> None:
    content = json.dumps([{"url": "https://a.example/x", "content": "alpha"}])
    assert extract_sources(content) == [
        ExtractedSource(url="https://a.example/x", snippet="alpha", rank=1)
    ]


def test_duckduckgo_artifact_raw_results() -> None:
    message = ToolMessage(
        content="unparseable summary", artifact=DDG_RAW, tool_call_id="c", name="ddg"
    )
    sources = extract_sources(message)
    assert urls(sources) == ["https://www.sqlite.org/index.html", "https://www.sqlite.org/wal.html"]
    assert sources[1].title == "Write-Ahead Logging"
    assert sources[1].snippet == "WAL mode allows readers and a writer to proceed concurrently."
    assert [s.rank for s in sources] == [1, 2]
    assert all(s.score is None for s in sources)


def test_duckduckgo_explicit_artifact_argument_is_used() -> None:
    assert urls(extract_sources("no links here", artifact=DDG_RAW))[0].endswith("index.html")


def test_duckduckgo_default_string_format() -> None:
    sources = extract_sources(DDG_TEXT)
    assert urls(sources) == [
        "https://www.sqlite.org/index.html",
        "https://www.sqlite.org/wal.html",
        "https://example.com/sqlite/journal?mode=wal",
    ]
    assert sources[0].snippet == (
        "SQLite is a C-language library that implements a small, fast SQL engine."
    )
    assert sources[2].title == "Journal modes"
    assert sources[2].snippet == "Compare journal modes, with examples"
    assert [s.rank for s in sources] == [1, 2, 3]


def test_duckduckgo_news_string_format_with_date_and_source() -> None:
    text = (
        "snippet: Rates held steady., title: Fed decision, link: https://news.example/fed, "
        "date: 2024-06-12T18:00:00+00:00, source: Example News, "
        "snippet: Markets rallied., title: Stocks up, link: https://news.example/stocks, "
        "date: 2024-06-12T20:00:00+00:00, source: Example Wire"
    )
    sources = extract_sources(text)
    assert urls(sources) == ["https://news.example/fed", "https://news.example/stocks"]
    assert sources[1].title == "Stocks up"


# Brave


def test_brave_json_list_with_html_snippets() -> None:
    sources = extract_sources(BRAVE_JSON)
    assert urls(sources) == [
        "https://docs.python.org/3/whatsnew/3.11.html",
        "https://peps.python.org/pep-0654/",
    ]
    assert sources[0].snippet == "Python 3.11 is between 10-60% faster & has better error messages."
    assert sources[1].title == "PEP 654 'Exception Groups'"
    assert sources[1].snippet == "This PEP proposes ExceptionGroup and except*."


# Google Serper


def test_serper_python_literal_uses_position_as_rank() -> None:
    text = str(SERPER_RESULT)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)  # the tool output is a Python repr, not JSON
    sources = extract_sources(text)
    assert urls(sources) == [
        "https://www.postgresql.org/docs/current/routine-vacuuming.html",
        "https://wiki.example.net/vacuum",
    ]
    assert [s.rank for s in sources] == [1, 3]
    assert sources[1].snippet == "VACUUM reclaims storage occupied by dead tuples."


def test_serper_news_results() -> None:
    news = {"news": [{"title": "T", "link": "https://n.example/a", "snippet": "S", "position": 2}]}
    assert extract_sources(str(news)) == [
        ExtractedSource(url="https://n.example/a", title="T", snippet="S", rank=2)
    ]


def test_python_literal_is_never_evaluated_as_code() -> None:
    assert extract_sources("{'organic': [__import__('os').system('echo hacked')]}") == []


# Exa


def test_exa_response_object_is_duck_typed() -> None:
    sources = extract_sources(EXA_RESPONSE)
    assert urls(sources) == [
        "https://arxiv.org/abs/2310.08560",
        "https://www.example.edu/papers/long-context",
    ]
    first, second = sources
    assert first.title == "MemGPT: Towards LLMs as Operating Systems"
    assert first.score == pytest.approx(0.2134)
    assert first.snippet == "we propose virtual context management … inspired by OS paging"
    assert second.score is None
    assert second.snippet == "Line one of the page. Line two of the page."
    assert [s.rank for s in sources] == [1, 2]


def test_exa_text_form() -> None:
    sources = extract_sources(str(EXA_RESPONSE))
    assert sources == extract_sources(EXA_RESPONSE)


def test_exa_text_form_minimal_blocks() -> None:
    text = (
        "Title: First\nURL: https://one.example/\nScore: 0.5\n\n"
        "Title: None\nURL: https://two.example/page\nScore: None\nText: hello\nworld\n"
    )
    assert extract_sources(text) == [
        ExtractedSource(url="https://one.example/", title="First", score=0.5, rank=1),
        ExtractedSource(url="https://two.example/page", snippet="hello world", rank=2),
    ]


# MCP


def test_mcp_text_blocks_holding_json() -> None:
    blocks: list[str | dict[Any, Any]] = [
        {"type": "text", "text": json.dumps(TAVILY_RESPONSE)},
        {"type": "text", "text": json.dumps([{"link": "https://c.example/", "title": "C"}])},
    ]
    message = ToolMessage(content=blocks, tool_call_id="call_mcp", name="web_search")
    assert urls(extract_sources(message)) == [
        "https://doc.rust-lang.org/book/ch04-02-references-and-borrowing.html",
        "https://blog.example.org/borrowck",
        "https://c.example/",
    ]


def test_mcp_structured_content_artifact() -> None:
    structured = {"hits": [{"href": "https://docs.example.com/guide", "name": "Guide"}]}
    message = ToolMessage(
        content=[{"type": "text", "text": "Found 1 result"}],
        artifact={"structured_content": structured},
        tool_call_id="call_mcp",
    )
    assert extract_sources(message) == [
        ExtractedSource(url="https://docs.example.com/guide", title="Guide", rank=1)
    ]


# Generic shapes


def test_generic_nested_dicts_with_href_and_aliases() -> None:
    payload = {
        "data": {
            "web": {
                "items": [
                    {
                        "href": "https://x.example/1",
                        "name": "One",
                        "description": "first hit",
                        "relevance_score": 0.4,
                    },
                    {"meta": {"count": 3}},
                    {"url": "https://x.example/2", "text": "second hit"},
                ]
            }
        }
    }
    assert extract_sources(payload) == [
        ExtractedSource("https://x.example/1", "One", "first hit", 0.4, 1),
        ExtractedSource("https://x.example/2", None, "second hit", None, 2),
    ]


def test_generic_walk_is_depth_limited() -> None:
    deep: Any = {"url": "https://deep.example/"}
    for _ in range(12):
        deep = {"next": deep}
    assert extract_sources(deep) == []


def test_documents_with_source_or_url_metadata() -> None:
    docs = [
        Document(
            page_content="word " * 400,
            metadata={"source": "https://wiki.example.org/Page", "title": "Page", "score": 0.3},
        ),
        Document(page_content="local file", metadata={"source": "/tmp/notes.txt"}),
        Document(
            page_content="has url key",
            metadata={"source": "report.pdf", "url": "https://r.example/report"},
        ),
    ]
    sources = extract_sources(docs)
    assert urls(sources) == ["https://wiki.example.org/Page", "https://r.example/report"]
    assert sources[0].title == "Page"
    assert sources[0].score == 0.3
    assert sources[0].snippet is not None and len(sources[0].snippet) <= 500
    assert [s.rank for s in sources] == [1, 3]
    assert urls(extract_sources(docs[0])) == ["https://wiki.example.org/Page"]


def test_pydantic_and_dataclass_objects() -> None:
    class Hit(BaseModel):
        url: str
        title: str

    class Response(BaseModel):
        query: str
        results: list[Hit]

    response = Response(query="q", results=[Hit(url="https://p.example/", title="P")])
    assert extract_sources(response) == [
        ExtractedSource(url="https://p.example/", title="P", rank=1)
    ]

    @dataclass
    class Link:
        link: str

    assert urls(extract_sources([Link("https://d.example/")])) == ["https://d.example/"]


# Merging, caps


def test_duplicates_merge_keeping_first_rank_and_filling_fields() -> None:
    results = [
        {"url": "https://Example.com/a?utm_medium=email#x", "title": "A"},
        {"url": "https://b.example/"},
        {"url": "https://example.com:443/a", "content": "snippet A", "score": 0.6},
        {"url": "https://example.com/a", "title": "ignored", "content": "ignored"},
    ]
    assert extract_sources({"results": results}) == [
        ExtractedSource("https://example.com/a", "A", "snippet A", 0.6, 1),
        ExtractedSource("https://b.example/", rank=2),
    ]


def test_output_is_capped_at_100_sources() -> None:
    results = [{"url": f"https://e.example/{i}"} for i in range(500)]
    assert len(extract_sources({"results": results})) == 100
    ddg = ", ".join(f"snippet: s{i}, title: t{i}, link: https://d.example/{i}" for i in range(300))
    assert len(extract_sources(ddg)) == 100


def test_huge_text_is_handled_quickly() -> None:
    text = "snippet: x, title: y, link: https://big.example/, " + "z" * 3_000_000
    assert urls(extract_sources(text)) == ["https://big.example/"]


# Tavily error result


class HTTPError(Exception):
    pass


def test_tool_error_message_from_dict_and_its_str_form() -> None:
    error = HTTPError("401 Client Error: Unauthorized for url: https://api.tavily.com/search")
    output = {"error": error}
    assert tool_error_message(output) == str(error)
    assert tool_error_message(str(output)) == str(error)
    assert str(output).startswith("{'error': HTTPError(")


def test_tool_error_message_from_plain_dict_json_and_tool_message() -> None:
    assert tool_error_message({"error": "rate limited"}) == "rate limited"
    assert tool_error_message('{"error": "rate limited"}') == "rate limited"
    message = ToolMessage(content=str({"error": ValueError("bad key")}), tool_call_id="c1")
    assert tool_error_message(message) == "bad key"
    failed = ToolMessage(content="Error: no results", tool_call_id="c2", status="error")
    assert tool_error_message(failed) == "Error: no results"


@pytest.mark.parametrize(
    "output",
    [TAVILY_RESPONSE, json.dumps(TAVILY_RESPONSE), {"error": None}, {"error": "x", "results": []}]
    + ["plain text", None, 3, ["error"], "{'error'"],
)
def test_tool_error_message_is_none_for_normal_output(output: Any) -> None:
    assert tool_error_message(output) is None


def test_extract_sources_returns_nothing_for_tool_errors() -> None:
    error_text = str({"error": HTTPError("429 Too Many Requests for url: https://api.tavily.com")})
    assert extract_sources(error_text) == []
    assert extract_sources({"error": {"url": "https://api.tavily.com/search"}}) == []


# Odd input


class Unprintable:
    @property
    def results(self) -> list[Any]:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    "odd",
    [
        None,
        0,
        42,
        3.5,
        True,
        b"https://bytes.example/",
        "",
        "   ",
        "{broken json",
        "[1, 2",
        '{"results": 5}',
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[" * 1000,
        object(),
        Unprintable(),
        {"results": [{"url": "javascript:alert(1)", "title": "xss"}]},
        [{"link": "mailto:a@b.c"}, {"href": None}, {"url": 12}],
        [None, 1, "x", {"type": "image", "data": "..."}],
        ToolMessage(content="", tool_call_id="c"),
    ],
)
def test_odd_input_returns_empty_without_raising(odd: Any) -> None:
    assert extract_sources(odd) == []


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf, 7.5, -0.2, "high", True, [1]])
def test_invalid_scores_are_dropped(score: Any) -> None:
    sources = extract_sources([{"url": "https://s.example/", "score": score}])
    assert sources == [ExtractedSource(url="https://s.example/", rank=1)]


def test_scores_in_range_are_kept_and_nan_json_is_tolerated() -> None:
    assert extract_sources([{"url": "https://s.example/", "score": "0.25"}])[0].score == 0.25
    assert extract_sources([{"url": "https://s.example/", "score": 1.0000000001}])[0].score == 1.0
    text = '[{"url": "https://s.example/", "score": NaN}]'
    assert extract_sources(text) == [ExtractedSource(url="https://s.example/", rank=1)]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=True)
    | st.integers()
    | st.text(max_size=30)
    | st.sampled_from(["https://h.example/", "javascript:x", "http://", "url", "link"]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(["url", "link", "results", "score", "title"]), children)
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_extract_sources_never_raises_on_arbitrary_data(value: Any) -> None:
    for candidate in (value, str(value), json.dumps(value)):
        for source in extract_sources(candidate):
            assert normalize_url(source.url) == source.url
            assert source.score is None or 0.0 <= source.score <= 1.0


# Custom extractor hook


def test_custom_extractor_runs_first_and_none_falls_through() -> None:
    calls: list[str] = []

    def passes(output: Any, artifact: Any) -> list[ExtractedSource] | None:
        calls.append("passes")
        return None

    def handles(output: Any, artifact: Any) -> list[ExtractedSource] | None:
        calls.append("handles")
        if isinstance(output, str) and output.startswith("CUSTOM "):
            url = output.removeprefix("CUSTOM ")
            return [ExtractedSource(url=url + "#frag"), ExtractedSource(url="javascript:x")]
        return None

    extractors = SourceExtractors()
    extractors.register(handles)
    extractors.register(passes, first=False)
    assert extractors.extractors == (handles, passes)
    assert extractors("CUSTOM https://Custom.example/x") == [
        ExtractedSource(url="https://custom.example/x")
    ]
    assert calls == ["handles"]
    assert urls(extractors(TAVILY_RESPONSE))[1] == "https://blog.example.org/borrowck"
    assert calls == ["handles", "handles", "passes"]


def test_custom_extractor_empty_list_wins_and_failures_are_skipped() -> None:
    def broken(output: Any, artifact: Any) -> list[ExtractedSource] | None:
        raise RuntimeError("bug in plug-in")

    extractors = SourceExtractors([broken])
    assert len(extractors(TAVILY_RESPONSE)) == 2
    extractors.register(lambda output, artifact: [])
    assert extractors(TAVILY_RESPONSE) == []


def test_custom_extractor_receives_tool_message_and_its_artifact() -> None:
    seen: list[tuple[Any, Any]] = []
    extractors = SourceExtractors()

    @extractors.register
    def record(output: Any, artifact: Any) -> list[ExtractedSource] | None:
        seen.append((output, artifact))
        return None

    message = ToolMessage(content="[]", artifact=DDG_RAW, tool_call_id="c", name="ddg")
    assert len(extractors(message)) == 2
    assert seen == [(message, DDG_RAW)]


# Provider-side citations


def test_citations_from_v1_annotations_and_top_level_blocks() -> None:
    message = AIMessage(
        content=[
            {
                "type": "text",
                "text": "SQLite supports WAL mode [1].",
                "annotations": [
                    {
                        "type": "citation",
                        "url": "https://www.sqlite.org/wal.html",
                        "title": "Write-Ahead Logging",
                        "cited_text": "WAL mode allows concurrent readers.",
                        "start_index": 0,
                        "end_index": 28,
                    },
                    {"type": "citation", "title": "no url"},
                ],
            },
            {"type": "citation", "url": "https://www.sqlite.org/about.html", "title": "About"},
        ]
    )
    assert citations_from_message(message) == [
        ExtractedSource(
            url="https://www.sqlite.org/wal.html",
            title="Write-Ahead Logging",
            snippet="WAL mode allows concurrent readers.",
            rank=1,
        ),
        ExtractedSource(url="https://www.sqlite.org/about.html", title="About", rank=2),
    ]


def test_citations_from_anthropic_text_block_citations() -> None:
    message = AIMessage(
        content=[
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            {"type": "text", "text": "Here is what I found. "},
            {
                "type": "text",
                "text": "The release was in October.",
                "citations": [
                    {
                        "type": "web_search_result_location",
                        "url": "https://blog.example.com/release?utm_source=claude",
                        "title": "Release notes",
                        "cited_text": "Released on October 3rd.",
                        "encrypted_index": "EqQBCkYIARgC",
                    },
                    {"type": "char_location", "cited_text": "doc text", "document_index": 0},
                ],
            },
        ]
    )
    assert citations_from_message(message) == [
        ExtractedSource(
            url="https://blog.example.com/release",
            title="Release notes",
            snippet="Released on October 3rd.",
            rank=1,
        )
    ]


def test_citations_from_openai_url_citations_flat_and_nested() -> None:
    message = AIMessage(
        content=[
            {
                "type": "text",
                "text": "Two facts.",
                "annotations": [
                    {
                        "type": "url_citation",
                        "url": "https://news.example.com/a?utm_source=openai",
                        "title": "A",
                        "start_index": 0,
                        "end_index": 4,
                    },
                    {
                        "type": "url_citation",
                        "url_citation": {"url": "https://news.example.com/b", "title": "B"},
                    },
                    {"type": "url_citation", "url": "https://news.example.com/a", "title": "A2"},
                ],
            }
        ]
    )
    assert citations_from_message(message) == [
        ExtractedSource(url="https://news.example.com/a", title="A", rank=1),
        ExtractedSource(url="https://news.example.com/b", title="B", rank=2),
    ]


@pytest.mark.parametrize(
    "message",
    [
        AIMessage(content="plain text answer"),
        AIMessage(content=[{"type": "text", "text": "no citations"}]),
        None,
        42,
        [{"type": "text", "annotations": "not a list"}],
    ],
)
def test_citations_from_message_without_citations(message: Any) -> None:
    assert citations_from_message(message) == []


# Real LangChain tool round trip


def test_tool_message_with_json_content_and_artifact() -> None:
    message = ToolMessage(
        content=json.dumps([{"url": "https://content.example/", "content": "from content"}]),
        artifact={"results": [{"url": "https://artifact.example/", "title": "Raw"}]},
        tool_call_id="call_1",
    )
    assert urls(extract_sources(message)) == ["https://artifact.example/"]
    empty_artifact = message.model_copy(update={"artifact": {"images": []}})
    assert urls(extract_sources(empty_artifact)) == ["https://content.example/"]


def test_real_tool_returning_tavily_shape() -> None:
    @tool
    def web_search(query: str) -> dict[str, Any]:
        """Search the web (offline stand-in with Tavily's response shape)."""
        return {**TAVILY_RESPONSE, "query": query}

    call = {
        "name": "web_search",
        "args": {"query": "rust borrow checker explained"},
        "id": "call_1",
        "type": "tool_call",
    }
    message = web_search.invoke(call)
    assert isinstance(message, ToolMessage)
    assert message.tool_call_id == "call_1"
    sources = extract_sources(message)
    assert urls(sources) == [
        "https://doc.rust-lang.org/book/ch04-02-references-and-borrowing.html",
        "https://blog.example.org/borrowck",
    ]
    assert [s.rank for s in sources] == [1, 2]
    assert sources[0].score == 0.91
