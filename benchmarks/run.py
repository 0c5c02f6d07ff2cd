"""Run every lit-memory benchmark against its peers and report ratios measured in one run.

    pip install -r benchmarks/requirements.txt
    python benchmarks/run.py            # full run (about 15 minutes; builds cached databases)
    python benchmarks/run.py --quick    # short run (under 2 minutes once the cache is built)

Prints Markdown tables and the targets (PASS/MISS), and writes benchmarks/results/latest.json
and latest.md. See benchmarks/README.md for what each scenario does and how to read it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from suite import agent, machine, postgres, reads, report, writes  # noqa: E402
from suite.context import FULL, QUICK, Config, Context  # noqa: E402
from suite.places import PostgresPlace, SqlitePlace  # noqa: E402
from suite.results import Scenario  # noqa: E402
from suite.targets import evaluate, issue_targets  # noqa: E402

SCENARIOS = ("s1", "s2", "s3", "s4", "s5", "s6", "s7")
RESULTS = HERE / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="less work per scenario (~2 min)")
    parser.add_argument("--only", default="", help="comma-separated scenarios, e.g. s1,s3,s7")
    parser.add_argument("--repeats", type=int, help="repeats per scenario (default 3)")
    parser.add_argument("--no-postgres", action="store_true", help="skip S7 (PostgreSQL)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser.parse_args(argv)


def selected(args: argparse.Namespace) -> list[str]:
    """The scenarios to run, in order."""
    wanted = [s.strip().lower() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")
    return [s for s in SCENARIOS if not wanted or s in wanted]


def availability() -> dict[str, bool]:
    """Which parts of lit_memory_langchain this run can measure."""
    try:
        from lit_memory_langchain.history import LitChatMessageHistory  # noqa: F401
    except ImportError:
        history = False
    else:
        history = True
    return {"LitChatMessageHistory": history, "handlers": agent.handlers_available() is None}


async def run_scenarios(
    ctx: Context, chosen: list[str], place: PostgresPlace | None, pg_skip: str | None
) -> list[Scenario]:
    """Run the chosen scenarios in order; each returns its table."""
    sqlite = SqlitePlace(ctx)
    steps: dict[str, Any] = {
        "s1": lambda: writes.s1_append(ctx, sqlite, ctx.sqlite_writers()),
        "s2": lambda: writes.s2_concurrent(ctx, sqlite, ctx.sqlite_writers()),
        "s3": lambda: reads.s3_reads(ctx),
        "s4": lambda: reads.s4_growth(ctx),
        "s5": lambda: reads.s5_window(ctx),
        "s6": lambda: agent.s6_agent(ctx),
    }
    done: list[Scenario] = []
    for key in chosen:
        started = time.perf_counter()
        ctx.log(f"{key}: running")
        if key == "s7":
            found = await _s7(ctx, place, pg_skip)
        else:
            found = [await steps[key]()]
        for scenario in found:
            scenario.seconds = time.perf_counter() - started
        done += found
    return done


async def _s7(ctx: Context, place: PostgresPlace | None, why: str | None) -> list[Scenario]:
    if place is None:
        skipped = Scenario("s7", "scenarios 1-3 on PostgreSQL", "-", True, skipped=why)
        return [skipped]
    return await postgres.s7_all(ctx, place)


def config_for(args: argparse.Namespace) -> Config:
    """Full or quick settings, with the repeats asked for."""
    config = QUICK if args.quick else FULL
    if args.repeats:
        config = dataclasses.replace(config, repeats=max(1, args.repeats))
    return config


def main(argv: list[str] | None = None) -> int:
    """Run, print the report, write results/latest.json and latest.md."""
    args = parse_args(argv)
    chosen = selected(args)
    found = availability()
    log = (lambda _line: None) if args.quiet else (lambda line: print(line, flush=True))
    ctx = Context(
        config_for(args), RESULTS / "cache", has_history=found["LitChatMessageHistory"], log=log
    )
    place, pg_skip = None, "--no-postgres"
    if "s7" in chosen and not args.no_postgres:
        log("s7: starting a throwaway PostgreSQL server")
        place, pg_skip = postgres.start()
    started = time.perf_counter()
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        scenarios = asyncio.run(run_scenarios(ctx, chosen, place, pg_skip))
    finally:
        ctx.cleanup()
        if place is not None:
            place.stop()
    run = {
        "started": stamp,
        "duration_s": time.perf_counter() - started,
        "machine": machine.describe(place.version if place else None),
        "config": ctx.config.as_json(),
        "availability": {**found, "postgresql": place is not None},
    }
    _report(run, scenarios, ctx.config)
    return 0


def _report(run: dict[str, Any], scenarios: list[Scenario], config: Config) -> None:
    by_key = {s.key: s for s in scenarios}
    ours = "lit history" if run["availability"]["LitChatMessageHistory"] else "lit core"
    small, big = (reads.short_size(config.s4_sizes[0]), reads.short_size(config.s4_sizes[-1]))
    outcomes = [evaluate(t, by_key) for t in issue_targets(by_key, ours, small, big)]
    outcomes = [o for o in outcomes if o.key[:2].lower() in {s.key[:2] for s in scenarios}]
    print()
    print(report.markdown(run, scenarios, outcomes))
    json_path, md_path = report.write_outputs(RESULTS, run, scenarios, outcomes)
    print(f"written: {json_path.relative_to(HERE.parent)}, {md_path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    sys.exit(main())
