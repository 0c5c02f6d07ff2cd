"""``python -m lit_memory``: the `lit-memory` command line."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="lit-memory")
