"""The run's report: Markdown tables (printed and saved) and the JSON file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .machine import one_line
from .results import Scenario
from .targets import Outcome


def number(value: float | None) -> str:
    """A figure with a sensible number of digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def scenario_table(scenario: Scenario) -> list[str]:
    """One scenario as a Markdown section: title, reading hint and one row per system."""
    better = "higher is better" if scenario.higher_is_better else "lower is better"
    lines = [f"### {scenario.key.upper()}: {scenario.title}", ""]
    if scenario.skipped:
        return [*lines, f"skipped: {scenario.skipped}", ""]
    extras = list(scenario.extra_units)
    head = [
        "system", scenario.unit, "min - max",
        *(f"{k} {scenario.extra_units[k]}" for k in extras), "ops", "round trip",
    ]  # fmt: skip
    lines += [f"{scenario.unit}, {better}; median of the repeats.", ""]
    lines += [_row(head), _row(["---"] * len(head))]
    for row in scenario.rows.values():
        cells = [
            row.name, number(row.median()), _spread(row.values),
            *(number(row.median(k)) for k in extras), f"{min(row.ops):,}",
            "ok" if row.verified else _first_problem(row.checks),
        ]  # fmt: skip
        lines.append(_row(cells))
    lines += [f"*{note}*" for note in scenario.notes]
    return [*lines, ""]


def _spread(values: list[float]) -> str:
    return f"{number(min(values))} - {number(max(values))}"


def _first_problem(checks: list[str]) -> str:
    return next(c for c in checks if c != "ok").replace("|", "/").replace("\n", " ")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def targets_table(outcomes: list[Outcome]) -> list[str]:
    """The targets with their ratio and PASS/MISS."""
    lines = ["### Targets", "", _row(["target", "ratio", "needed", "result"]), _row(["---"] * 4)]
    for o in outcomes:
        needed = f"{'<=' if o.at_most else '>='} {o.threshold:g}x"
        ratio = "-" if o.ratio is None else f"{o.ratio:.2f}x"
        verdict = o.status + (f" ({o.note})" if o.note else "")
        lines.append(_row([f"{o.key}: {o.text}", ratio, needed, verdict]))
    return [*lines, ""]


def markdown(run: dict[str, Any], scenarios: list[Scenario], outcomes: list[Outcome]) -> str:
    """The whole report as Markdown."""
    mode = "quick" if run["config"]["quick"] else "full"
    lines = [
        f"## lit-memory benchmarks ({mode} run, {run['config']['repeats']} repeats)",
        "",
        f"Machine: {one_line(run['machine'])}.  ",
        f"Run: {run['started']}, {run['duration_s']:.0f} s. Availability: "
        + ", ".join(f"{k}: {v}" for k, v in run["availability"].items())
        + ".",
        "",
    ]
    lines += targets_table(outcomes)
    for scenario in scenarios:
        lines += scenario_table(scenario)
    return "\n".join(lines)


def write_outputs(
    folder: Path, run: dict[str, Any], scenarios: list[Scenario], outcomes: list[Outcome]
) -> tuple[Path, Path]:
    """Write latest.json and latest.md in `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        **run,
        "scenarios": [s.as_json() for s in scenarios],
        "targets": [o.as_json() for o in outcomes],
    }
    json_path, md_path = folder / "latest.json", folder / "latest.md"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(run, scenarios, outcomes) + "\n", encoding="utf-8")
    return json_path, md_path
