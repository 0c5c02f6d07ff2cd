"""What a run measures: figures per system and repeat, their medians, and timing helpers."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `values`, by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: list[float]) -> float:
    """The median (NaN for no values)."""
    return statistics.median(values) if values else float("nan")


@dataclass
class Row:
    """One line of a scenario's table: a system (at a size), measured once per repeat."""

    name: str
    values: list[float] = field(default_factory=list)
    """The scenario's main figure, one per repeat."""
    extras: dict[str, list[float]] = field(default_factory=dict)
    """Secondary figures (latency percentiles...), one per repeat each."""
    ops: list[int] = field(default_factory=list)
    """How many operations each repeat timed (slow systems may stop early)."""
    checks: list[str] = field(default_factory=list)
    """The round-trip check of each repeat: "ok" or what was wrong."""

    def median(self, key: str | None = None) -> float:
        """The median over repeats of the main figure, or of extra `key`."""
        return median(self.values if key is None else self.extras.get(key, []))

    @property
    def verified(self) -> bool:
        """Whether every repeat's round-trip check passed."""
        return bool(self.checks) and all(check == "ok" for check in self.checks)


@dataclass
class Scenario:
    """The rows of one scenario, with how to read its main figure."""

    key: str
    title: str
    unit: str
    higher_is_better: bool
    extra_units: dict[str, str] = field(default_factory=dict)
    rows: dict[str, Row] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    seconds: float = 0.0

    def add(
        self,
        name: str,
        value: float,
        *,
        ops: int,
        check: str,
        extras: dict[str, float] | None = None,
    ) -> None:
        """Record one repeat of system `name`."""
        row = self.rows.setdefault(name, Row(name))
        row.values.append(value)
        row.ops.append(ops)
        row.checks.append(check)
        for key, extra in (extras or {}).items():
            row.extras.setdefault(key, []).append(extra)

    def as_json(self) -> dict[str, Any]:
        """The scenario as JSON-able data, with medians beside the raw repeats."""
        data = asdict(self)
        for name, row in self.rows.items():
            data["rows"][name]["median"] = row.median()
            data["rows"][name]["extra_medians"] = {k: row.median(k) for k in row.extras}
        return data


async def time_calls(
    calls: list[Callable[[], Awaitable[Any]]],
    *,
    budget: float | None = None,
    min_calls: int = 5,
) -> list[float]:
    """Await each call in turn; return each one's duration in seconds.

    With a `budget` (seconds), stop once it is spent and at least `min_calls` have run: slow
    systems are then measured on fewer calls rather than dominating the run's time.
    """
    gc.collect()
    durations: list[float] = []
    started = time.perf_counter()
    for call in calls:
        before = time.perf_counter()
        await call()
        after = time.perf_counter()
        durations.append(after - before)
        if budget is not None and after - started > budget and len(durations) >= min_calls:
            break
    return durations


def latency_extras(durations: list[float], unit: float = 1e3) -> dict[str, float]:
    """p50 and p99 of `durations` (seconds), scaled by `unit` (default: milliseconds)."""
    return {"p50": percentile(durations, 50) * unit, "p99": percentile(durations, 99) * unit}
