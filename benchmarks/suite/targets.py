"""The targets of the issue, each a ratio of two rows measured in the same run.

A ratio is computed per repeat (the two rows ran back to back in that repeat) and the
median over repeats is compared with the threshold, so slow phases of a shared machine hit
both sides of a ratio alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .results import Scenario, median

PASS, MISS, NA = "PASS", "MISS", "n/a"


@dataclass(frozen=True)
class Target:
    """`figure(num) / figure(den)` must be >= `threshold` (or <= with `at_most`)."""

    key: str
    text: str
    scenario: str
    num: str
    den: str
    threshold: float
    at_most: bool = False
    extra: str | None = None
    """Compare this extra figure (e.g. "p99") instead of the main one."""


@dataclass
class Outcome:
    """A target's measured ratio and verdict."""

    key: str
    text: str
    ratio: float | None
    threshold: float
    at_most: bool
    status: str
    ratios: list[float]
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        """As JSON-able data."""
        return asdict(self)


def faster(
    key: str, text: str, scenario: tuple[str, Scenario | None], ours: str, peer: str,
    threshold: float,
) -> Target:  # fmt: skip
    """Ours at least `threshold` times as fast as the peer in (key, scenario), whatever the
    direction of the scenario's figure."""
    name, found = scenario
    higher = found.higher_is_better if found is not None else True
    num, den = (ours, peer) if higher else (peer, ours)
    return Target(key, text, name, num, den, threshold)


def evaluate(target: Target, scenarios: dict[str, Scenario]) -> Outcome:
    """Measure the target's ratio in this run's results."""
    scenario = scenarios.get(target.scenario)
    rows = scenario.rows if scenario is not None else {}
    num, den = rows.get(target.num), rows.get(target.den)
    if scenario is None or scenario.skipped or num is None or den is None:
        why = scenario.skipped if scenario is not None and scenario.skipped else "not measured"
        return _outcome(target, [], NA, why or "")
    a = num.values if target.extra is None else num.extras[target.extra]
    b = den.values if target.extra is None else den.extras[target.extra]
    ratios = [x / y for x, y in zip(a, b, strict=False) if y]
    if not ratios:
        return _outcome(target, [], NA, "no figures")
    ratio = median(ratios)
    ok = ratio <= target.threshold if target.at_most else ratio >= target.threshold
    note = "" if num.verified and den.verified else "round-trip check failed"
    return _outcome(target, ratios, PASS if ok and not note else MISS, note)


def _outcome(target: Target, ratios: list[float], status: str, note: str) -> Outcome:
    ratio = median(ratios) if ratios else None
    return Outcome(
        target.key, target.text, ratio, target.threshold, target.at_most, status, ratios, note
    )


def issue_targets(scenarios: dict[str, Scenario], ours: str, small: str, big: str) -> list[Target]:
    """The issue's targets; `ours` is the LangChain-level row ("lit history"), `small` and
    `big` the S4 size labels ("10k", "1M")."""

    def s(key: str) -> tuple[str, Scenario | None]:
        return key, scenarios.get(key)

    return [
        faster("S1a", f"S1 appends: {ours} >= 5x SQLChat async (defaults)", s("s1"),
               ours, "SQLChat async defaults", 5.0),
        faster("S1b", f"S1 appends: {ours} >= 0.7x raw aiosqlite", s("s1"),
               ours, "raw aiosqlite", 0.7),
        faster("S2a", f"S2 concurrent: {ours} >= 1.5x raw aiosqlite (commit per turn)", s("s2"),
               ours, "raw aiosqlite", 1.5),
        Target("S2b", f"S2 concurrent: {ours} p99 latency no worse than raw aiosqlite's", "s2",
               "raw aiosqlite", ours, 1.0, extra="p99"),
        faster("S3a", f"S3 reads: {ours} >= 15x SQLChat async (defaults)", s("s3"),
               ours, "SQLChat async defaults", 15.0),
        faster("S3b", f"S3 reads: {ours} >= 0.9x raw aiosqlite, both decoding to messages",
               s("s3"), ours, "raw aiosqlite +decode", 0.9),
        faster("S3c", "S3 reads (store level): lit core >= 0.9x raw aiosqlite, both decoding",
               s("s3"), "lit core", "raw aiosqlite +decode", 0.9),
        Target("S4", f"S4 read cost growth {small} -> {big} messages: {ours} <= 1.2x", "s4",
               f"{ours} @ {big}", f"{ours} @ {small}", 1.2, at_most=True),
        Target("S4c", f"S4 read cost growth {small} -> {big} messages: lit core <= 1.2x", "s4",
               f"lit core @ {big}", f"lit core @ {small}", 1.2, at_most=True),
        Target("S5", f"S5 window cost, 10,000- vs 100-message conversation: {ours} <= 1.5x",
               "s5", f"{ours} @ 10,000 msgs", f"{ours} @ 100 msgs", 1.5, at_most=True),
        Target("S6", "S6 agent run overhead of LitCallbackHandler + PhaseTracker <= 1.10x", "s6",
               "agent + lit-memory handlers", "agent alone", 1.10, at_most=True),
        Target("S6f", "S6 the same, above LangChain's own cost of two handlers <= 1.10x", "s6",
               "agent + lit-memory handlers", "agent + 2 no-op handlers", 1.10, at_most=True),
        faster("S7a", f"S7 PostgreSQL appends: {ours} >= 1.5x PGChat", s("s7-s1"),
               ours, "PGChat", 1.5),
        faster("S7b", f"S7 PostgreSQL concurrent appends: {ours} >= 1.5x PGChat", s("s7-s2"),
               ours, "PGChat", 1.5),
        faster("S7c", f"S7 PostgreSQL reads: {ours} >= 1.2x PGChat", s("s7-s3"),
               ours, "PGChat", 1.2),
    ]  # fmt: skip
