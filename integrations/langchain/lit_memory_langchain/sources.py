"""Extract the web sources (cited URLs) from LangChain tool outputs and model citations.

Search tools return their results in many shapes (JSON strings, Python reprs, dataclasses,
``Document`` lists, MCP content blocks, ad-hoc text). This module picks a parser by the
*structure* of the output, never by tool name, so renamed or wrapped tools keep working.
Only the standard library and ``langchain_core`` are imported: the provider packages are
optional and their objects are duck-typed.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import html
import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, ToolMessage

__all__ = [
    "ExtractedSource",
    "SourceExtractor",
    "SourceExtractors",
    "citations_from_message",
    "extract_sources",
    "normalize_url",
    "tool_error_message",
]

logger = logging.getLogger(__name__)

_MAX_SOURCES = 100
_MAX_NODES = 10_000
_MAX_DEPTH = 6
_MAX_REGEX_CHARS = 1_000_000
# json.loads is C-fast, so a Tavily answer with raw page contents may exceed the regex cap.
_MAX_JSON_CHARS = 8_000_000
_MAX_URL_CHARS = 4096
_SNIPPET_CHARS = 500
_TITLE_CHARS = 300
# Tolerate float rounding just outside [0, 1]; anything further is another scale.
_SCORE_SLACK = 1e-6

_DEFAULT_PORTS = {"http": 80, "https": 443}
_TRACKING_PARAMS = frozenset(
    {"gclid", "dclid", "gbraid", "wbraid", "fbclid", "msclkid", "yclid", "mc_cid", "mc_eid"}
)
_BAD_HOST_CHARS = re.compile(r"[\s<>\"'{}|\\^`]")

_URL_KEYS = ("url", "link", "href")
_TITLE_KEYS = ("title", "name")
_SNIPPET_KEYS = ("snippet", "content", "description", "text", "raw_content")
_SCORE_KEYS = ("score", "relevance_score")

_INLINE_TAG = re.compile(r"</?(?:strong|b|em|i|mark|span)\b[^>]*>", re.IGNORECASE)

_ERROR_PREFIX = re.compile(r"\{\s*(['\"])error\1\s*:")
_ERROR_REPR = re.compile(r"\{\s*(['\"])error\1\s*:\s*(?P<body>.+)\}", re.DOTALL)
_EXCEPTION_REPR = re.compile(r"[\w.]+\((?P<arg>(['\"]).*\2)\s*,?\s*\)", re.DOTALL)

_EXA_DETECT = re.compile(r"^Title:.*\r?\nURL:[ \t]*\S", re.MULTILINE)
_EXA_LINE = re.compile(
    r"(Title|URL|ID|Score|Published Date|Author|Image|Favicon|Text|Highlights|"
    r"Highlight Scores|Summary|Subpages|Extras|Autoprompt String|Resolved Search Type):"
    r"[ \t]?(.*)"
)
_DDG_DETECT = re.compile(r"(?:^|, )link: https?://")
_DDG_FIELD = re.compile(r"(?:^|, )(snippet|title|link|date|source): ")

_CITATION_TYPES = frozenset({"citation", "url_citation", "web_search_result_location"})


@dataclass(frozen=True)
class ExtractedSource:
    """One web source found in a tool output or a model citation.

    ``rank`` is the 1-based position in the tool's results; ``score`` is a relevance in
    [0, 1] reported by the tool, or None when the tool gave none.
    """

    url: str
    title: str | None = None
    snippet: str | None = None
    score: float | None = None
    rank: int | None = None


SourceExtractor = Callable[[Any, Any], list[ExtractedSource] | None]


# --------------------------------------------------------------------------- URLs


def normalize_url(url: str) -> str | None:
    """Return a canonical form of an http(s) URL, or None if it is not one with a host.

    Lowercases scheme and host, drops default ports, credentials, the fragment and common
    tracking parameters, and keeps the rest of the path and query as written.
    """
    if not isinstance(url, str) or len(url) > _MAX_URL_CHARS:
        return None
    return _normalized(url)


@functools.lru_cache(maxsize=1024)
def _normalized(url: str) -> str | None:
    # Cached: each URL is normalised when read and again when deduplicated, and agents
    # cite the same pages across turns.
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or _BAD_HOST_CHARS.search(host):
        return None
    # Credentials are dropped on purpose: they must never be persisted into memory.
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", _strip_tracking(parts.query), ""))


def _strip_tracking(query: str) -> str:
    # Filter the raw pairs instead of re-encoding so the kept query stays byte-identical.
    return "&".join(pair for pair in query.split("&") if pair and not _is_tracking(pair))


def _is_tracking(pair: str) -> bool:
    key = unquote(pair.split("=", 1)[0]).lower()
    return key.startswith("utm_") or key in _TRACKING_PARAMS


# --------------------------------------------------------------------------- tool errors


def tool_error_message(output: Any) -> str | None:
    """Return the error message if ``output`` is a tool error result, else None.

    Recognises langchain-tavily's ``{"error": exc}`` result, as a dict or its ``str()``
    form, and ToolMessages with ``status="error"``.
    """
    try:
        if isinstance(output, ToolMessage):
            if output.status == "error":
                return _content_text(output.content) or "tool error"
            output = output.content
        if isinstance(output, str):
            return _error_from_text(output)
        if isinstance(output, Mapping):
            return _error_from_mapping(output)
    except Exception:  # an unprintable exception object must not break detection
        logger.debug("tool error detection failed", exc_info=True)
    return None


def _error_from_mapping(data: Mapping[Any, Any]) -> str | None:
    error = data.get("error")
    # A dict that also carries results is a partial success, not the error wrapper.
    if not error or "results" in data:
        return None
    return str(error) or type(error).__name__


def _error_from_text(text: str) -> str | None:
    stripped = text.strip()
    if len(stripped) > _MAX_REGEX_CHARS or not _ERROR_PREFIX.match(stripped):
        return None
    parsed = _parse_structured(stripped)
    if isinstance(parsed, Mapping):
        return _error_from_mapping(parsed)
    # str({"error": exc}) holds an exception repr, which no literal parser accepts.
    match = _ERROR_REPR.fullmatch(stripped)
    return _unwrap_exception_repr(match.group("body").strip()) if match else None


def _unwrap_exception_repr(body: str) -> str:
    match = _EXCEPTION_REPR.fullmatch(body)
    message = _parse_literal(match.group("arg")) if match else None
    return message if isinstance(message, str) and message else body


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        parts = [b if isinstance(b, str) else b.get("text") for b in content if _is_text(b)]
        return "\n".join(p for p in parts if isinstance(p, str)).strip()
    return ""


# --------------------------------------------------------------------------- entry point


def extract_sources(output: Any, *, artifact: Any = None) -> list[ExtractedSource]:
    """Return the web sources in a tool output, in result order, deduplicated by URL.

    Accepts a ToolMessage (its ``content`` and ``artifact`` are used), a str, dict, list,
    pydantic/dataclass object, or Documents. Never raises: odd input yields ``[]``.
    """
    try:
        content, artifact = _unwrap_tool_message(output, artifact)
        if tool_error_message(output) is not None:
            return []
        # The artifact holds the raw results when a tool has one, so it wins over content.
        for candidate in (artifact, content):
            found = _merge(_parse_value(candidate, 0))
            if found:
                return found
    except Exception:  # odd tool output must never break the agent loop
        logger.debug("source extraction failed", exc_info=True)
    return []


def _unwrap_tool_message(output: Any, artifact: Any) -> tuple[Any, Any]:
    if isinstance(output, ToolMessage):
        return output.content, output.artifact if artifact is None else artifact
    return output, artifact


def _parse_value(value: Any, depth: int) -> list[ExtractedSource]:
    if value is None or depth > _MAX_DEPTH or isinstance(value, (bool, int, float, bytes)):
        return []
    if isinstance(value, str):
        return _parse_text(value, depth)
    if isinstance(value, Document):
        return _parse_documents([value])
    if isinstance(value, Mapping):
        return _parse_mapping(value, depth)
    if isinstance(value, (list, tuple)):
        return _parse_sequence(value, depth)
    return _parse_object(value, depth)


def _parse_text(text: str, depth: int) -> list[ExtractedSource]:
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        data = _parse_structured(stripped)
        if data is not None:
            return _parse_value(data, depth + 1)
    head = stripped[:_MAX_REGEX_CHARS]
    if _EXA_DETECT.search(head):
        return _parse_exa_text(head)
    if _DDG_DETECT.search(head):
        return _parse_ddg_text(head)
    return []


def _parse_mapping(data: Mapping[Any, Any], depth: int) -> list[ExtractedSource]:
    structured = data.get("structured_content")
    if isinstance(structured, Mapping):  # MCP tool artifact
        return _parse_value(structured, depth + 1)
    if _is_text_block(data):
        return _parse_text(data["text"], depth + 1)
    if isinstance(data.get("organic"), list) or isinstance(data.get("news"), list):
        return _parse_serper(data) or _walk_generic(data, depth)
    if isinstance(data.get("results"), list):
        return _parse_tavily_response(data) or _walk_generic(data, depth)
    return _walk_generic(data, depth)


def _parse_sequence(items: Sequence[Any], depth: int) -> list[ExtractedSource]:
    head = items[:_MAX_SOURCES]
    if any(_is_text(item) for item in head):
        return _parse_content_blocks(head, depth)
    if head and all(isinstance(item, Document) for item in head):
        return _parse_documents(head)
    if any(isinstance(item, Mapping) and _first_url(item, _URL_KEYS) for item in head):
        return _parse_result_list(head)
    return _walk_generic(head, depth)


def _parse_object(value: Any, depth: int) -> list[ExtractedSource]:
    if _looks_like_exa(value):
        return _parse_exa_response(value)
    data = _object_data(value)
    return [] if data is value else _parse_value(data, depth + 1)


def _object_data(value: Any) -> Any:
    """Return a pydantic model or dataclass instance as plain data, anything else as is."""
    if isinstance(value, Document):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


# --------------------------------------------------------------------------- shape parsers


def _parse_tavily_response(data: Mapping[Any, Any]) -> list[ExtractedSource]:
    """Parse a Tavily response dict ``{"query": ..., "results": [...]}``."""
    return _parse_result_list(data["results"])


def _parse_result_list(items: Sequence[Any]) -> list[ExtractedSource]:
    """Parse a flat list of result dicts (Tavily, Brave, DuckDuckGo raw/JSON results)."""
    sources = []
    for index, item in enumerate(items[:_MAX_SOURCES], start=1):
        source = _source_from_item(item, index) if isinstance(item, Mapping) else None
        if source is not None:
            sources.append(source)
    return sources


def _parse_serper(data: Mapping[Any, Any]) -> list[ExtractedSource]:
    """Parse Google Serper results, ranking organic hits by their ``position``."""
    sources = []
    for key in ("organic", "news"):
        items = data.get(key)
        for index, item in enumerate(items[:_MAX_SOURCES] if isinstance(items, list) else []):
            if isinstance(item, Mapping):
                source = _source_from_item(item, _serper_rank(item, index + 1))
                sources.extend([source] if source is not None else [])
    return sources


def _serper_rank(item: Mapping[Any, Any], fallback: int) -> int:
    position = item.get("position")
    if isinstance(position, int) and not isinstance(position, bool) and position >= 1:
        return position
    return fallback


def _parse_ddg_text(text: str) -> list[ExtractedSource]:
    """Parse DuckDuckGo's ``snippet: ..., title: ..., link: ...`` string output."""
    sources = []
    for index, record in enumerate(_ddg_records(text)[:_MAX_SOURCES], start=1):
        source = _source_from_item(record, index)
        if source is not None:
            sources.append(source)
    return sources


def _ddg_records(text: str) -> list[dict[str, str]]:
    matches = list(islice(_DDG_FIELD.finditer(text), _MAX_SOURCES * 5))
    ends = [match.start() for match in matches[1:]] + [len(text)]
    records: list[dict[str, str]] = [{}]
    for match, end in zip(matches, ends, strict=True):
        # The format has no record separator: a repeated key means the next result began.
        if match.group(1) in records[-1]:
            records.append({})
        records[-1][match.group(1)] = text[match.end() : end]
    for record in records:
        # A URL holds no whitespace, so trailing prose after the last link is not part of it.
        link = record.get("link", "").split()
        record["link"] = link[0].rstrip(",") if link else ""
    return records


def _looks_like_exa(value: Any) -> bool:
    results = getattr(value, "results", None)
    if not isinstance(results, (list, tuple)):
        return False
    return any(hasattr(r, "url") and not isinstance(r, Mapping) for r in results[:5])


def _parse_exa_response(response: Any) -> list[ExtractedSource]:
    """Parse an Exa ``SearchResponse``-like object, duck-typed by its attributes."""
    sources = []
    for index, result in enumerate(list(response.results)[:_MAX_SOURCES], start=1):
        fields = {name: getattr(result, name, None) for name in _EXA_FIELDS}
        source = _exa_source(fields, index)
        if source is not None:
            sources.append(source)
    return sources


_EXA_FIELDS = ("url", "title", "score", "highlights", "summary", "text")
_EXA_TEXT_KEYS = {
    "URL": "url",
    "Title": "title",
    "Score": "score",
    "Highlights": "highlights",
    "Summary": "summary",
    "Text": "text",
}


def _parse_exa_text(text: str) -> list[ExtractedSource]:
    """Parse the ``str()`` of an Exa response: ``Title:``/``URL:``/``Score:`` line blocks."""
    sources = []
    for index, record in enumerate(_exa_records(text)[:_MAX_SOURCES], start=1):
        source = _exa_source(_exa_text_fields(record), index)
        if source is not None:
            sources.append(source)
    return sources


def _exa_records(text: str) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    key: str | None = None
    for line in text.splitlines():
        match = _EXA_LINE.fullmatch(line)
        if match and match.group(1) == "Title":
            records.append({})
        if match and records:
            key = match.group(1)
            records[-1][key] = match.group(2)
        elif key is not None and records:
            # Page text spans lines: an unlabelled line continues the previous field.
            records[-1][key] += "\n" + line
    return records


def _exa_text_fields(record: Mapping[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        _EXA_TEXT_KEYS[key]: None if value.strip() == "None" else value
        for key, value in record.items()
        if key in _EXA_TEXT_KEYS
    }
    highlights = fields.get("highlights")
    if isinstance(highlights, str):
        # Highlights are printed as a Python list repr.
        fields["highlights"] = _parse_literal(highlights.strip()) or highlights
    return fields


def _exa_source(fields: Mapping[str, Any], rank: int) -> ExtractedSource | None:
    url = _first_url(fields, ("url",))
    if url is None:
        return None
    # Highlights are query-focused, so they make a better preview than the page's opening.
    snippet = _first_text(_join_highlights(fields.get("highlights")), fields.get("summary"))
    return ExtractedSource(
        url=url,
        title=_clean_text(fields.get("title"), _TITLE_CHARS),
        snippet=snippet or _clean_text(fields.get("text"), _SNIPPET_CHARS),
        score=_clean_score(fields.get("score")),
        rank=rank,
    )


def _join_highlights(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        return " … ".join(str(part) for part in value if isinstance(part, str)) or None
    return value if isinstance(value, str) else None


def _parse_content_blocks(blocks: Sequence[Any], depth: int) -> list[ExtractedSource]:
    """Parse MCP-style content: ``{"type": "text", "text": "<json>"}`` blocks or strings."""
    sources: list[ExtractedSource] = []
    for block in blocks:
        if _is_text(block):
            text = block if isinstance(block, str) else block["text"]
            sources.extend(_parse_text(text, depth + 1))
    return sources


def _parse_documents(documents: Sequence[Document]) -> list[ExtractedSource]:
    """Parse LangChain Documents whose ``metadata["source"]`` or ``["url"]`` is a URL."""
    sources = []
    for index, document in enumerate(documents[:_MAX_SOURCES], start=1):
        source = _document_source(document, index)
        if source is not None:
            sources.append(source)
    return sources


def _document_source(document: Document, rank: int) -> ExtractedSource | None:
    metadata = document.metadata if isinstance(document.metadata, Mapping) else {}
    url = _first_url(metadata, ("source", "url"))
    if url is None:
        return None
    return ExtractedSource(
        url=url,
        title=_clean_text(metadata.get("title"), _TITLE_CHARS),
        snippet=_clean_text(document.page_content, _SNIPPET_CHARS),
        score=_clean_score(_first_present(metadata, _SCORE_KEYS)),
        rank=rank,
    )


def _walk_generic(root: Any, depth: int) -> list[ExtractedSource]:
    """Find URL-bearing dicts and Documents anywhere in nested containers, in order."""
    found: list[ExtractedSource] = []
    stack: list[tuple[Any, int]] = [(root, depth)]
    visited = 0
    while stack and len(found) < _MAX_SOURCES and visited < _MAX_NODES:
        value, level = stack.pop()
        visited += 1
        value = _object_data(value)
        source = _node_source(value, len(found) + 1)
        if source is not None:
            found.append(source)  # a result's own sitelinks are not separate results
        elif level < _MAX_DEPTH:
            stack.extend((child, level + 1) for child in reversed(_children(value)))
    return found


def _node_source(value: Any, rank: int) -> ExtractedSource | None:
    if isinstance(value, Document):
        return _document_source(value, rank)
    return _source_from_item(value, rank) if isinstance(value, Mapping) else None


def _children(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(islice(value.values(), _MAX_NODES))
    if isinstance(value, (list, tuple)):
        return list(value[:_MAX_NODES])
    return []


# --------------------------------------------------------------------------- citations


def citations_from_message(message: Any) -> list[ExtractedSource]:
    """Return the web sources a model cited via provider-side search, in citation order.

    Reads LangChain v1 ``citation`` annotations and top-level blocks, Anthropic
    ``citations`` lists and OpenAI ``url_citation`` annotations. Never raises.
    """
    try:
        content = message.content if isinstance(message, BaseMessage) else message
        if not isinstance(content, list):
            return []
        found = (_citation_source(item) for item in islice(_iter_citations(content), _MAX_NODES))
        merged = _merge(source for source in found if source is not None)
        return [dataclasses.replace(source, rank=i) for i, source in enumerate(merged, 1)]
    except Exception:  # a malformed message must not break the agent loop
        logger.debug("citation extraction failed", exc_info=True)
        return []


def _iter_citations(blocks: Iterable[Any]) -> Iterator[Mapping[Any, Any]]:
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") in _CITATION_TYPES:
            yield block
        for key in ("annotations", "citations"):
            items = block.get(key)
            if isinstance(items, list):
                yield from (item for item in items if isinstance(item, Mapping))


def _citation_source(item: Mapping[Any, Any]) -> ExtractedSource | None:
    # Chat Completions nests the fields: {"type": "url_citation", "url_citation": {...}}.
    nested = item.get("url_citation")
    data = nested if isinstance(nested, Mapping) else item
    url = _first_url(data, ("url",))
    if url is None:
        return None
    title = _clean_text(data.get("title"), _TITLE_CHARS)
    return ExtractedSource(url, title, _clean_text(data.get("cited_text"), _SNIPPET_CHARS))


# --------------------------------------------------------------------------- registry


class SourceExtractors:
    """An ordered set of custom extractors tried before the built-in :func:`extract_sources`.

    Each extractor gets ``(output, artifact)`` and returns a list of sources, or None to
    pass; the first non-None answer wins (an empty list means "handled, no sources").
    """

    def __init__(self, extractors: Iterable[SourceExtractor] = ()) -> None:
        """Create the registry with ``extractors`` in priority order."""
        self._extractors: list[SourceExtractor] = list(extractors)

    @property
    def extractors(self) -> tuple[SourceExtractor, ...]:
        """The custom extractors in the order they are tried."""
        return tuple(self._extractors)

    def register(self, fn: SourceExtractor, *, first: bool = True) -> SourceExtractor:
        """Add ``fn`` ahead of (``first=True``) or after the other custom extractors.

        Returns ``fn`` so the method also works as a decorator.
        """
        if first:
            self._extractors.insert(0, fn)
        else:
            self._extractors.append(fn)
        return fn

    def __call__(self, output: Any, artifact: Any = None) -> list[ExtractedSource]:
        """Extract sources with the first custom extractor that answers, else the built-in.

        A ToolMessage's own artifact is passed on when ``artifact`` is None.
        """
        resolved = _unwrap_tool_message(output, artifact)[1]
        for extractor in self._extractors:
            result = _run_extractor(extractor, output, resolved)
            if result is not None:
                return _merge(source for source in result if isinstance(source, ExtractedSource))
        return extract_sources(output, artifact=artifact)


def _run_extractor(
    extractor: SourceExtractor, output: Any, artifact: Any
) -> list[ExtractedSource] | None:
    try:
        result = extractor(output, artifact)
    except Exception:  # a buggy plug-in must not stop the built-in parsers
        logger.warning("source extractor %r failed; skipping it", extractor, exc_info=True)
        return None
    return result if isinstance(result, list) else None


# --------------------------------------------------------------------------- helpers


def _merge(sources: Iterable[ExtractedSource]) -> list[ExtractedSource]:
    """Deduplicate by normalised URL, keeping the first rank and filling missing fields."""
    merged: dict[str, ExtractedSource] = {}
    for source in sources:
        url = normalize_url(source.url)
        if url is None:
            continue
        current = merged.get(url)
        if current is not None:
            merged[url] = _fill_missing(current, source)
        elif len(merged) < _MAX_SOURCES:
            merged[url] = dataclasses.replace(source, url=url, score=_clean_score(source.score))
    return list(merged.values())


def _fill_missing(first: ExtractedSource, later: ExtractedSource) -> ExtractedSource:
    return dataclasses.replace(
        first,
        title=first.title or later.title,
        snippet=first.snippet or later.snippet,
        score=first.score if first.score is not None else _clean_score(later.score),
        rank=first.rank if first.rank is not None else later.rank,
    )


def _source_from_item(item: Mapping[Any, Any], rank: int | None) -> ExtractedSource | None:
    url = _first_url(item, _URL_KEYS)
    if url is None:
        return None
    return ExtractedSource(
        url=url,
        title=_first_text(*(item.get(key) for key in _TITLE_KEYS), limit=_TITLE_CHARS),
        snippet=_first_text(*(item.get(key) for key in _SNIPPET_KEYS)),
        score=_clean_score(_first_present(item, _SCORE_KEYS)),
        rank=rank,
    )


def _first_url(mapping: Mapping[Any, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        value = mapping.get(key)
        url = normalize_url(value) if isinstance(value, str) else None
        if url is not None:
            return url
    return None


def _first_present(mapping: Mapping[Any, Any], keys: Iterable[str]) -> Any:
    return next((mapping[key] for key in keys if mapping.get(key) is not None), None)


def _first_text(*values: Any, limit: int = _SNIPPET_CHARS) -> str | None:
    return next((text for v in values if (text := _clean_text(v, limit))), None)


def _clean_text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    # Brave and Google wrap matched words in inline HTML and escape entities.
    text = value[: limit * 4]
    if "<" in text:
        text = _INLINE_TAG.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    text = " ".join(text.split())  # runs of whitespace as one space (\s and str.split agree)
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or None


def _clean_score(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        score = float(value)
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(score) or not -_SCORE_SLACK <= score <= 1 + _SCORE_SLACK:
        return None
    return min(max(score, 0.0), 1.0)


def _parse_structured(text: str) -> Any:
    """Parse JSON, falling back to a Python literal (Serper returns ``str(dict)``)."""
    if len(text) <= _MAX_JSON_CHARS:
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            pass
    return _parse_literal(text)


def _parse_literal(text: str) -> Any:
    if len(text) > _MAX_REGEX_CHARS:
        return None
    try:
        return ast.literal_eval(text)  # literals only: never executes code
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _is_text_block(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and value.get("type") == "text"
        and isinstance(value.get("text"), str)
    )


def _is_text(value: Any) -> bool:
    return isinstance(value, str) or _is_text_block(value)
