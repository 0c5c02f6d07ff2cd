"""Secrets handed to the store in tool inputs, outputs, errors and metadata never reach the
database, in any of the shapes tools really produce; ordinary text is left alone; and hostile
input cannot turn the redactor into a hang or a raw error.

(Named apart from tests/core/test_redaction.py, which tests the patterns one by one: two test
modules may not share a name in this tree.) It also covers web sources, key names
that end in a secret's name, and Stripe and PEM credentials.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _hostile import Point, nested

from lit_memory import AsyncConversationDB, InvalidInputError
from lit_memory.redact import MASK

SECRETS = {
    "openai key": "sk-proj-Zx81TQ0vLm3nP5rS7tU9wY2a",
    "anthropic key": "sk-ant-api03-Qw3rTy5uIo7pAs9dFg1hJk",
    "tavily key": "tvly-dev-Rt6yU8iO0pA2sD4fG6hJ8k",
    "bearer token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl",
    "password": "Hunter2-Correct-Horse",
    "url password": "pg-Pa55w0rd-9z8y",
}
"""Each secret appears in the places below; none may be stored."""


def _places(s: dict[str, str]) -> dict[str, str]:
    """The shapes a secret arrives in: text a tool printed, JSON as text, a Python repr,
    environment files, headers, connection strings."""
    return {
        "plain text": f"using key {s['openai key']} and {s['tavily key']}",
        "anthropic": f"ANTHROPIC_API_KEY={s['anthropic key']}",
        "header line": f"Authorization: Bearer {s['bearer token']}",
        "query string": f"https://api.example.com/v1?q=bebop&password={s['password']}",
        "env file": f"DB_PASSWORD={s['password']}\nDEBUG=1",
        "json text": json.dumps({"user": "app", "password": s["password"]}),
        "python repr": str({"user": "app", "password": s["password"]}),
        "url": f"postgresql://app:{s['url password']}@db.internal:5432/prod",
        "url without user": f"redis://:{s['url password']}@cache.internal:6379/0",
    }


async def _store_everywhere(db: AsyncConversationDB, cid: str, text: str) -> int:
    """Put `text` in every field the redactor guards; the tool call's id."""
    await db.create_conversation(cid, {"note": text, "nested": [{"deep": text}]})
    await db.add_message(cid, "assistant", "calling the tool", {"raw": text})
    tid = await db.add_tool_call(
        cid, "web_search", {"query": "bebop", "debug": text}, status="running",
        error_message=text,
    )  # fmt: skip
    assert tid is not None
    second = await db.add_tool_call(cid, "other", text, output_data={"page": text})
    assert second is not None
    await db.update_tool_call(tid, output_data=text, status="error", error_message=text)
    await db.create_mashup(cid, "mix", metadata={"log": text})
    return tid


@pytest.fixture
async def memory_db() -> Any:
    """For what does not depend on the backend."""
    async with AsyncConversationDB(":memory:") as db:
        yield db


async def test_no_secret_is_stored(db: AsyncConversationDB, record_property: Any) -> None:
    places = _places(SECRETS)
    leaks = {}
    for n, (place, text) in enumerate(sorted(places.items())):
        await _store_everywhere(db, f"c{n}", text)
        stored = json.dumps(await db.export_conversation(f"c{n}"))
        leaked = [name for name, secret in SECRETS.items() if secret in stored]
        if leaked or MASK not in stored:
            leaks[place] = leaked
    record_property("bad_inputs_tried", len(places))
    assert leaks == {}, "secrets stored, by the shape they came in: " + json.dumps(leaks)


async def test_no_secret_reaches_the_database_files(tmp_path: Path) -> None:
    """Not in the main file, the write-ahead log or the full-text index: the bytes on disk."""
    async with AsyncConversationDB(tmp_path / "store.db") as db:
        for n, text in enumerate(_places(SECRETS).values()):
            await _store_everywhere(db, f"c{n}", text)
    found = sorted(
        f"{name} in {file.name}"
        for file in tmp_path.iterdir()
        for name, secret in SECRETS.items()
        if secret.encode() in file.read_bytes()
    )
    assert found == []


ORDINARY = {
    "prose": "Ask about risk-taking in bebop; the task-force met at 5",
    "policy": "the password policy needs 12 characters",
    "url with a user only": "https://user@example.com/path and git@github.com:org/repo.git",
    "ipv6 url": "http://[::1]:8080/status",
    "email": "mailto:someone@example.com",
    "usage metadata": json.dumps({"prompt_tokens": 12, "total_tokens": 40, "max_tokens": 256}),
}


async def test_ordinary_text_is_left_alone(memory_db: AsyncConversationDB) -> None:
    db = memory_db
    changed = {}
    for n, (name, text) in enumerate(sorted(ORDINARY.items())):
        meta = {"note": text, "usage": {"total_tokens": 40, "prompt_tokens": 12}}
        await db.create_conversation(f"c{n}", meta)
        tid = await db.add_tool_call(f"c{n}", "other", text, output_data=text)
        call = await db.get_tool_call(tid)  # type: ignore[arg-type]
        conversation = await db.get_conversation(f"c{n}")
        assert call is not None and conversation is not None
        if (call.input_data, call.output_data, conversation.metadata) != (text, text, meta):
            changed[name] = [call.input_data, conversation.metadata]
    assert changed == {}


_HANG = textwrap.dedent(
    """
    import asyncio, sys
    from lit_memory import AsyncConversationDB

    async def main():
        async with AsyncConversationDB(":memory:") as db:
            await db.create_conversation("c")
            await db.add_tool_call("c", "other", "x", output_data=sys.argv[1])

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(
    "output", ["a." * 30_000, "a-" * 30_000, "x" * 60_000 + "://"], ids=["dots", "dashes", "scheme"]
)
def test_hostile_tool_output_cannot_hang_the_store(
    output: str, tmp_path: Path, record_property: Any
) -> None:
    """60 kB of tool output (a scraped page) must be scrubbed in well under a second or two;
    a pattern that backtracks quadratically takes minutes and blocks the event loop."""
    record_property("bad_inputs_tried", 1)
    try:
        subprocess.run(
            [sys.executable, "-c", _HANG, output],
            timeout=5, check=True, capture_output=True, cwd=tmp_path,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("storing 60 kB of tool output took more than 5 s (the redactor backtracks)")


async def test_the_redactor_never_turns_bad_input_into_a_raw_error(
    memory_db: AsyncConversationDB, record_property: Any
) -> None:
    """Data the redactor walks before it is validated: a refusal, never a raw error."""
    db = memory_db
    await db.create_conversation("c")
    values = {"10,000 deep": nested(10_000), "namedtuple": Point(1, 2), "in a list": [Point(1, 2)]}
    raw = {}
    for name, value in values.items():
        calls = {
            "tool input": lambda v=value: db.add_tool_call("c", "other", {"v": v}),
            "conversation metadata": lambda v=value: db.create_conversation("d", {"v": v}),
            "message metadata": lambda v=value: db.add_message("c", "user", "x", {"v": v}),
        }
        for field, call in calls.items():
            try:
                await call()
            except InvalidInputError:
                pass
            except Exception as exc:  # noqa: BLE001 - the finding
                raw[f"{name} in {field}"] = f"{type(exc).__name__}: {str(exc)[:80]}"
    record_property("bad_inputs_tried", len(values) * 3)
    assert raw == {}


async def test_a_custom_redactor_sees_every_guarded_field(db_file: str) -> None:
    seen: list[Any] = []

    def spy(value: Any) -> Any:
        seen.append(value)
        return value

    async with AsyncConversationDB(db_file, redact=spy) as db:
        await db.create_conversation("c", {"m": "conversation"})
        await db.add_message("c", "user", "x", {"m": "message"})
        tid = await db.add_tool_call("c", "other", "input", output_data="output",
                                     error_message="error")  # fmt: skip
        await db.update_tool_call(tid, output_data="output 2", error_message="error 2")  # type: ignore[arg-type]
        await db.create_mashup("c", "m", metadata={"m": "mashup"})
    assert {json.dumps(v) for v in seen} >= {
        json.dumps(v)
        for v in [{"m": "conversation"}, {"m": "message"}, "input", "output", "error",
                  "output 2", "error 2", {"m": "mashup"}]
    }  # fmt: skip


# -- sources, secret key names, more credential formats ------------------------------------------


async def test_web_source_urls_are_scrubbed(memory_db: AsyncConversationDB) -> None:
    db = memory_db
    await db.create_conversation("c")
    tid = await db.add_tool_call("c", "web_search", "q")
    url = f"https://app:{SECRETS['url password']}@intranet.example/report"
    await db.add_web_source(tid, url, "report", f"token={SECRETS['password']}")  # type: ignore[arg-type]
    stored = json.dumps(await db.export_conversation("c"))
    assert SECRETS["url password"] not in stored and SECRETS["password"] not in stored


async def test_secret_header_and_variable_names_are_masked(
    memory_db: AsyncConversationDB,
) -> None:
    db = memory_db
    headers = {"x-api-key": "a1b2c3d4e5", "X-Goog-Api-Key": "f6g7h8", "db_password": "i9j0",
               "aws_secret_access_key": "k1l2m3", "secret_key": "n4o5p6"}  # fmt: skip
    await db.create_conversation("c", {"headers": headers})
    conversation = await db.get_conversation("c")
    assert conversation is not None
    assert set(conversation.metadata["headers"].values()) == {MASK}  # type: ignore[index]


@pytest.mark.parametrize(
    "secret",
    [
        "sk_live_51H8xYzAbCdEfGhIjKlMnOpQr",  # Stripe secret key
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ],
    ids=["stripe", "pem private key", "aws secret"],
)
async def test_more_credential_formats(memory_db: AsyncConversationDB, secret: str) -> None:
    db = memory_db
    await db.create_conversation("c")
    tid = await db.add_tool_call("c", "other", f"config:\n{secret}\n")
    call = await db.get_tool_call(tid)  # type: ignore[arg-type]
    assert call is not None
    assert secret.split("\n")[1 if "\n" in secret else 0][-12:] not in call.input_data
