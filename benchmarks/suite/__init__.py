"""The lit-memory benchmark suite: peers, scenarios and the report (run with ../run.py)."""
