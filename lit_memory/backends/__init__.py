"""Choosing a backend from a path or URL; drivers are imported only when their scheme is used."""

from __future__ import annotations

import importlib
import os
from typing import Any

from ..errors import ConfigurationError
from .base import Backend

__all__ = ["Backend", "DEFAULT_PATH", "ENV_URL", "open_backend", "resolve_url"]

ENV_URL = "LIT_MEMORY_URL"
"""Environment variable naming the database when no path or URL is given."""
DEFAULT_PATH = "lit_memory.db"
"""The embedded default: a SQLite file in the working directory."""

# Lazy "module:Class" strings, so asyncpg is imported only for PostgreSQL URLs.
BACKENDS = {
    "sqlite": "lit_memory.backends.sqlite:SQLiteBackend",
    "postgresql": "lit_memory.backends.postgres:PostgresBackend",
    "postgres": "lit_memory.backends.postgres:PostgresBackend",
}


def resolve_url(path_or_url: str | os.PathLike[str] | None) -> tuple[str, str]:
    """Return (scheme, target): the SQLite path or the server URL to open.

    None means ``$LIT_MEMORY_URL``, else ``./lit_memory.db``. Accepted: a file path,
    ``:memory:``, ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite:///:memory:``,
    ``postgresql://...`` and ``postgres://...``.
    """
    if path_or_url is None:
        path_or_url = os.environ.get(ENV_URL) or DEFAULT_PATH
    value = os.fspath(path_or_url)
    if not value:
        raise ConfigurationError("an empty database path; give a file path or a URL")
    if "://" not in value:
        return "sqlite", value
    scheme, _, rest = value.partition("://")
    scheme = scheme.lower().split("+")[0]
    if scheme == "sqlite":
        target = rest[1:] if rest.startswith("/") else rest
        return "sqlite", target or ":memory:"
    if scheme in BACKENDS:
        return scheme, value
    known = ", ".join(f"{name}://" for name in BACKENDS)
    raise ConfigurationError(f"unknown database URL scheme {scheme!r}; use a file path or {known}")


def open_backend(path_or_url: str | os.PathLike[str] | None, **options: Any) -> Backend:
    """Build (without connecting) the backend for a path or URL."""
    scheme, target = resolve_url(path_or_url)
    module_name, _, class_name = BACKENDS[scheme].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"the {scheme} backend needs an extra: pip install 'lit-memory[postgres]' ({exc})"
        ) from exc
    backend_class: Any = getattr(module, class_name)
    try:
        backend: Backend = backend_class(target, **options)
    except TypeError as exc:
        raise ConfigurationError(f"bad option for the {scheme} backend: {exc}") from exc
    return backend
