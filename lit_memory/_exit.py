"""Work that must run at interpreter exit before non-daemon threads are joined.

aiosqlite runs each connection on a non-daemon thread, so an open connection keeps the
interpreter from exiting; plain `atexit` handlers run only after those threads are joined,
too late. One hook, registered with `threading`, runs the callbacks in their order: stores
behind sync facades are closed gracefully first, then whatever is still open is stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["at_exit"]

_CALLBACKS: list[tuple[int, Callable[[], None]]] = []


def at_exit(callback: Callable[[], None], *, order: int) -> None:
    """Run `callback` at exit, before non-daemon threads are joined; lower orders first."""
    _CALLBACKS.append((order, callback))


def _run() -> None:
    for _, callback in sorted(_CALLBACKS, key=lambda item: item[0]):
        try:
            callback()
        except Exception:  # noqa: S110 - at exit there is no caller left to tell
            pass


_register = getattr(threading, "_register_atexit", None)
if _register is not None:
    _register(_run)
else:  # pragma: no cover - every supported Python has it
    import atexit

    atexit.register(_run)
