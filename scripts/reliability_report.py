"""Run lit-memory's reliability checks and print their figures.

    .venv/bin/python scripts/reliability_report.py            # everything in tests/reliability
    .venv/bin/python scripts/reliability_report.py -k sqlite  # extra arguments go to pytest

It runs pytest on ``tests/reliability`` (crash harness, injected faults, hostile input, static
checks, secret scrubbing) with a small plugin that adds up the figures the tests record with
``record_property``: kills survived, acknowledged writes checked, faults injected, bad inputs
tried, losses. It prints them after pytest's own summary and exits with pytest's status, so a
loss or a failed check fails the command.
"""

from __future__ import annotations

import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIGURES = [
    ("kills_survived", "kills survived (SIGKILL of a writer mid-run)"),
    ("acknowledged_writes_checked", "acknowledged writes checked after the kills"),
    ("faults_injected", "faults injected (disk full, read-only, locked, corrupt, restart)"),
    ("bad_inputs_tried", "bad inputs tried"),
    ("bad_inputs_refused", "  of which refused with InvalidInputError (generated calls)"),
    ("losses", "losses (acknowledged or stored data missing afterwards)"),
]


class FigureCollector:
    """A pytest plugin: sums the numeric properties tests record; keeps the others as notes."""

    def __init__(self) -> None:
        self.totals: Counter[str] = Counter()
        self.by_test: dict[str, dict[str, Any]] = defaultdict(dict)
        self.notes: dict[str, set[str]] = defaultdict(set)
        self.outcomes: Counter[str] = Counter()
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
            self.outcomes[outcome] += 1
            if report.outcome == "failed":
                self.failed.append(report.nodeid)
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.totals[name] += value
                self.by_test[report.nodeid][name] = value
            else:
                self.notes[name].add(str(value))

    def render(self, seconds: float) -> str:
        counts = ", ".join(f"{n} {o}" for o, n in sorted(self.outcomes.items()))
        lines = ["", f"lit-memory reliability figures ({counts}; {seconds:.0f} s)"]
        width = max(len(label) for _, label in FIGURES)
        lines += [f"  {label:<{width}}  {self.totals[key]:>8,}" for key, label in FIGURES]
        for key, values in sorted(self.notes.items()):
            lines.append(f"  {key.replace('_', ' ')}: {', '.join(sorted(values))}")
        crash = {
            test.split("::")[-1]: f"{f.get('kills_survived', 0)} kills, "
            f"{f.get('acknowledged_writes_checked', 0):,} acknowledged writes, "
            f"{f.get('losses', 0)} lost"
            for test, f in sorted(self.by_test.items())
            if "kills_survived" in f
        }
        lines += [f"  {test}: {line}" for test, line in crash.items()]
        if self.failed:
            lines.append(f"  failed ({len(self.failed)}):")
            lines += [f"    {nodeid}" for nodeid in self.failed]
        return "\n".join(lines)


def main(argv: list[str]) -> int:
    import pytest  # here, not at the top: the crash harness's writers re-import this module

    collector = FigureCollector()
    started = time.monotonic()
    status = pytest.main([str(ROOT / "tests" / "reliability"), "-q", *argv], plugins=[collector])
    print(collector.render(time.monotonic() - started))
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
