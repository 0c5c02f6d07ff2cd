"""The `lit-memory` command line, a thin click layer over `AsyncConversationDB`.

Run ``lit-memory --help`` (or ``python -m lit_memory --help``) for the commands.
"""

from .app import main

__all__ = ["main"]
