"""Secrets in tool inputs, outputs, errors and metadata are scrubbed before they are stored."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lit_memory import AsyncConversationDB, default_redactor
from lit_memory.redact import MASK, redact_text

SECRETS = {
    "openai": "sk-proj-AbCdEf0123456789GhIjKlMnOp",
    "tavily": "tvly-dev-0123456789abcdefABCDEF",
    "google": "AIza" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r",
    "aws": "AKIAABCDEFGHIJKLMNOP",
    "github": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_provider_keys_are_masked_in_text(name: str) -> None:
    text = f"calling with key {SECRETS[name]} now"
    assert redact_text(text) == f"calling with key {MASK} now"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi_jkl", f"Authorization: Bearer {MASK}"),
        ("postgresql://app:hunter2@db.internal/prod", f"postgresql://app:{MASK}@db.internal/prod"),
        (
            "https://example.com/?q=jazz&api_key=12345",
            f"https://example.com/?q=jazz&api_key={MASK}",
        ),
        ("password = correct-horse", f"password = {MASK}"),
        ("plain text about jazz fusion in 1969", "plain text about jazz fusion in 1969"),
        ("https://user@example.com/path", "https://user@example.com/path"),
    ],
)
def test_patterns(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_secret_keys_in_data_are_masked_recursively() -> None:
    data = {
        "query": "bebop",
        "api_key": "anything-at-all",
        "headers": {"Authorization": "Basic dXNlcjpwYXNz", "Accept": "json"},
        "items": [{"Client-Secret": "x"}, "token=abc123"],
        "n": 3,
        "password": None,
    }
    assert default_redactor(data) == {
        "query": "bebop",
        "api_key": MASK,
        "headers": {"Authorization": MASK, "Accept": "json"},
        "items": [{"Client-Secret": MASK}, f"token={MASK}"],
        "n": 3,
        "password": None,
    }


async def test_the_store_scrubs_before_storing(db: AsyncConversationDB) -> None:
    key = SECRETS["tavily"]
    await db.create_conversation("c", {"note": f"key {key}", "api_key": key})
    await db.add_message("c", "user", f"my key is {key}", {"token": key})
    tid = await db.add_tool_call(
        "c", "web_search", {"query": "bebop", "api_key": key}, status="running",
        error_message=None,
    )  # fmt: skip
    assert tid is not None
    await db.update_tool_call(
        tid, output_data=f"fetched https://u:{key}@api.example/ ok", status="error",
        error_message=f"401 for Bearer {key}",
    )  # fmt: skip
    await db.create_mashup("c", "m", metadata={"secret": "s3cr3t", "bpm": 140})
    exported = await db.export_conversation("c")
    assert exported is not None
    for message in exported["messages"]:
        message.pop("content")  # the conversation itself: checked below
    stored = str(exported)
    assert key not in stored and "s3cr3t" not in stored
    call = await db.get_tool_call(tid)
    assert call is not None and call.input_data == f'{{"query":"bebop","api_key":"{MASK}"}}'
    assert call.error_message == f"401 for Bearer {MASK}"
    # message content is the conversation itself: it is kept as the user wrote it
    assert (await db.get_messages("c"))[0].content == f"my key is {key}"
    assert (await db.get_messages("c"))[0].metadata == {"token": MASK}


async def test_redaction_can_be_replaced_or_turned_off(tmp_path) -> None:
    async with AsyncConversationDB(tmp_path / "a.db", redact=None) as raw:
        tid = (
            await raw.add_tool_call("c", "other", {"api_key": "kept"})
            if await raw.create_conversation("c")
            else None
        )
        assert tid is not None
        call = await raw.get_tool_call(tid)
        assert call is not None and call.input_data == '{"api_key":"kept"}'
    async with AsyncConversationDB(tmp_path / "b.db", redact=lambda v: "X" if v else v) as db:
        await db.create_conversation("c")
        tid = await db.add_tool_call("c", "other", "anything")
        assert tid is not None
        call = await db.get_tool_call(tid)
        assert call is not None and call.input_data == "X"


def _redact_every_pattern(text: str) -> str:
    """The reference: every pattern run over the whole text, no literal pre-check."""
    from lit_memory import redact

    text = redact._PEM_KEY.sub(MASK, text)
    text = redact._TOKENS.sub(MASK, text)
    text = redact._BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = redact._URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    return redact._PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", text)


# Pieces that make the patterns match, near-match or trip a case-folding corner: "ſ" and "K"
# (Kelvin) match "s" and "k" under IGNORECASE, "ı" and "İ" match "i".
_PIECES = [
    "password", "PaſſWord", "pwd", "api_key", "API-KEY", "apiKey", "client_secret", "token",
    "ToKen", "auth-token", "secret_access_key", "Bearer", "BASIC", "baſıc", "bearer", "=",
    ": ", "'", '"', " ", "\n", "&", "sk-", "tvly-", "AIza", "AKIA", "ghp_", "github_pat_",
    "xoxb-", "sk_live_", "rk_test_", "-----BEGIN RSA PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----", "https://", "user", ":", "@", "host", "abcdefghijklmnop",
    "0123456789ABCDEF", "İ", "ı", "ſ", "K", "é", "total_tokens", "max_tokens",
]  # fmt: skip


@given(st.lists(st.sampled_from(_PIECES) | st.text(max_size=6), max_size=24).map("".join))
@settings(max_examples=600, deadline=None)
def test_the_literal_pre_checks_never_change_what_is_redacted(text: str) -> None:
    assert redact_text(text) == _redact_every_pattern(text)


def test_the_case_folding_corners_are_still_redacted() -> None:
    assert redact_text("paſſword=hunter2") == f"paſſword={MASK}"
    assert redact_text("db_pwd: hunter2") == f"db_pwd: {MASK}"
    assert redact_text("SECRET='hunter2'") == f"SECRET='{MASK}'"
    assert redact_text("ToKen=hunter2") == f"ToKen={MASK}"
    assert redact_text("API_KEY: abc123") == f"API_KEY: {MASK}"
    assert redact_text("BASıC dXNlcjpwYXNz") == f"BASıC {MASK}"
