"""Every sample runs, as a user runs it, and leaves what it says in the database: samples
cannot rot. (chat_history.py and middleware_agent.py are run by the adapter's tests.)"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIT_MEMORY_URL": str(db)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _rows(db: Path, query: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query, params).fetchall()


def test_quickstart_sample(tmp_path: Path) -> None:
    db = tmp_path / "quick.db"
    for _ in range(2):  # rerunnable
        done = _run([str(ROOT / "samples" / "quickstart.py")], tmp_path, db)
        assert done.returncode == 0, done.stderr
    assert "Messages: 2, tool calls: 1" in done.stdout
    assert _rows(db, "SELECT COUNT(*) FROM messages") == [(2,)]
    assert _rows(db, "SELECT url FROM web_sources") == [("https://example.com/jazz-fusion",)]


def test_mashup_demo_goes_through_every_phase_and_shows(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    for _ in range(2):  # rerunnable: the second run starts from a clean slate
        done = _run([str(ROOT / "samples" / "mashup_agent.py")], tmp_path, db)
        assert done.returncode == 0, done.stderr
    cid = "mashup-demo"
    phases = _rows(
        db,
        "SELECT from_phase, to_phase FROM phase_transitions WHERE accepted = 1 "
        "AND conversation_id = ? ORDER BY transition_id",
        cid,
    )
    assert phases == [
        ("initial", "genre_exploration"),
        ("genre_exploration", "educational_clarification"),
        ("educational_clarification", "cultural_research"),
        ("cultural_research", "ready_for_generation"),
        ("ready_for_generation", "generation_complete"),
    ]
    calls = _rows(db, "SELECT tool_name, tool_type, status, call_id FROM tool_calls ORDER BY 1")
    assert calls == [
        ("explain_theory", "theory_explanation", "completed", "call-theory"),
        ("generate_mashup", "other", "completed", "call-generate"),
        ("plan_mashup", "other", "completed", "call-plan"),
        ("web_search", "web_search", "completed", "call-search"),
    ]
    assert _rows(db, "SELECT url, rank FROM web_sources ORDER BY rank") == [
        ("https://en.wikipedia.org/wiki/Bebop", 1),
        ("https://en.wikipedia.org/wiki/UK_drill", 2),  # tracking parameter dropped
        ("https://www.britannica.com/art/bebop", 3),
    ]
    assert _rows(db, "SELECT title, audio_file_path FROM mashups") == [
        ("Bebop x Drill", "mashups/bebop-x-drill.wav")
    ]
    assert _rows(db, "SELECT COUNT(*) FROM messages") == [(16,)]
    shown = _run(["-m", "lit_memory", "--no-color", "show", cid], tmp_path, db)
    assert shown.returncode == 0, shown.stderr
    assert "ready_for_generation -> generation_complete" in shown.stdout
    assert "→ web_search(query='history of bebop and UK drill')" in shown.stdout
