"""A description of the machine a run happened on, recorded with every result."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from importlib import metadata
from typing import Any

# Versions worth recording: the figures depend on them.
_PACKAGES = (
    "lit-memory", "lit-memory-langchain", "aiosqlite", "SQLAlchemy", "langchain-core",
    "langchain-community", "langchain-postgres", "langchain", "langgraph", "psycopg", "asyncpg",
    "pydantic",
)  # fmt: skip


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's guess elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    """Total memory in GiB, when the OS tells."""
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def package_versions() -> dict[str, str]:
    """Installed versions of the packages measured here (missing ones are left out)."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def describe(postgres_version: str | None = None) -> dict[str, Any]:
    """CPU, cores, memory, OS, Python, SQLite and package versions, as JSON-able data."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version,
        "packages": package_versions(),
    }


def one_line(machine: dict[str, Any]) -> str:
    """The machine description as one line for the table's header."""
    parts = [
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB",
        f"Python {machine['python']}",
        f"SQLite {machine['sqlite']}",
    ]
    if machine.get("postgresql"):
        parts.append(f"PostgreSQL {machine['postgresql']}")
    return "; ".join(parts)
