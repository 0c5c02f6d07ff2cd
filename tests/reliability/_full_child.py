"""Disk full without a small filesystem: a child process whose file-size limit stops SQLite.

Run as ``python _full_child.py <database>``. The child lowers its own RLIMIT_FSIZE just above
the database's files (SIGXFSZ ignored, so writes fail with EFBIG instead of killing it), tries
a 1 MB message, restores the limit ("space freed") and writes again, and prints what happened
as JSON. The database must already hold the `_dataset` conversations.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
from typing import Any

from lit_memory import AsyncConversationDB, LitMemoryError

BIG = "y" * 1_000_000


async def _main(path: str) -> dict[str, Any]:
    report: dict[str, Any] = {}
    async with AsyncConversationDB(path) as db:
        await db.init_db()
        report["before"] = await db.count_messages("kept-0")
        largest = max(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (largest + 64 * 1024, hard))
        try:
            report["stored_when_full"] = await db.add_message("kept-0", "user", BIG)
        except LitMemoryError as exc:
            report["error"] = [type(exc).__name__, str(exc)]
        except Exception as exc:  # noqa: BLE001 - a raw error is what the test must see
            report["raw_error"] = [type(exc).__name__, str(exc)]
        report["during"] = await db.count_messages("kept-0")
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        report["stored_after"] = await db.add_message("kept-0", "user", BIG)
        report["after"] = await db.count_messages("kept-0")
    return report


if __name__ == "__main__":
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    print(json.dumps(asyncio.run(_main(sys.argv[1]))))
