"""Run settings (full and quick), the run's folders, and which systems can be measured."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .systems import LitCore, LitHistory, PGChat, RawAiosqlite, RawSqlite, SQLChat, System

Factory = Callable[[str], System]
"""Builds a system on a database (a SQLite path or a PostgreSQL URL)."""


@dataclass(frozen=True)
class Config:
    """How much work each scenario does."""

    quick: bool
    repeats: int
    s1_turns: int
    s2_conversations: int
    s2_turns: int
    s2_writers: int
    s3_conversations: int
    s3_reads: int
    s4_sizes: tuple[int, ...]
    s4_reads: int
    s5_lengths: tuple[int, int]
    s5_windows: int
    s5_tokens: int
    s6_turns: int
    s6_tools: int
    read_budget: float
    """Seconds a slow reader may spend per repeat before it stops (after `min_reads`)."""
    min_reads: int
    pg_conversations: int
    """Conversations (of `per_conversation` messages) bulk-loaded for S7's reads."""
    per_conversation: int = 100

    def as_json(self) -> dict[str, Any]:
        """The settings as JSON-able data."""
        return asdict(self)


FULL = Config(
    quick=False, repeats=3, s1_turns=2000, s2_conversations=200, s2_turns=10, s2_writers=20,
    s3_conversations=1000, s3_reads=500, s4_sizes=(10_000, 100_000, 1_000_000), s4_reads=300,
    s5_lengths=(100, 10_000), s5_windows=200, s5_tokens=2000, s6_turns=200, s6_tools=3,
    read_budget=2.5, min_reads=5, pg_conversations=1000,
)  # fmt: skip
QUICK = replace(
    FULL, quick=True, s1_turns=150, s2_conversations=40, s2_turns=5, s3_reads=100,
    s4_sizes=(10_000, 100_000), s4_reads=100, s5_windows=30, s6_turns=40, read_budget=0.5,
    min_reads=2, pg_conversations=200,
)  # fmt: skip


@dataclass
class Context:
    """What the scenarios share: settings, folders, available systems, the PostgreSQL server."""

    config: Config
    cache: Path
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lit-bench-")))
    has_history: bool = False
    postgres: Any = None
    """A `PostgresPlace` when the PostgreSQL scenarios can run."""
    log: Callable[[str], None] = print
    _counter: int = 0

    def fresh_path(self, label: str) -> str:
        """A new, empty SQLite file path in the run's work folder."""
        self._counter += 1
        return str(self.work / f"{self._counter:04d}-{_slug(label)}.db")

    def cleanup(self) -> None:
        """Remove the work folder."""
        shutil.rmtree(self.work, ignore_errors=True)

    # -- catalogs of systems ------------------------------------------------------------------

    def lit_systems(self, read_last: int | None = None) -> list[Factory]:
        """lit-memory through LitChatMessageHistory (when available) and the core store."""
        found: list[Factory] = []
        if self.has_history:
            found.append(LitHistory)
        found.append(lambda target: LitCore(target, read_last=read_last))
        return found

    def sqlite_writers(self) -> list[Factory]:
        """Every SQLite system that writes turns (the raw ones store LangChain's JSON)."""
        return [
            *self.lit_systems(),
            *_sqlchat_variants(),
            lambda path: RawSqlite(path, decode=False),
            lambda path: RawAiosqlite(path, decode=False),
        ]


def _sqlchat_variants() -> list[Factory]:
    return [sqlchat(use_async, tuned) for use_async in (False, True) for tuned in (False, True)]


def sqlchat(use_async: bool, tuned: bool) -> Factory:
    """A SQLChatMessageHistory variant's factory."""
    return lambda path: SQLChat(path, use_async=use_async, tuned=tuned)


def raw(use_async: bool, decode: bool) -> Factory:
    """A raw sqlite3 / aiosqlite system's factory."""
    kind = RawAiosqlite if use_async else RawSqlite
    return lambda path: kind(path, decode=decode)


def pg_chat() -> Factory:
    """PostgresChatMessageHistory's factory."""
    return PGChat


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")[:40]


def rotate(items: list[Any], shift: int) -> list[Any]:
    """`items` rotated by `shift`, so no system always runs first (or last) in a repeat."""
    if not items:
        return items
    shift %= len(items)
    return items[shift:] + items[:shift]
