"""A chat that remembers: `RunnableWithMessageHistory` over `LitChatMessageHistory`.

A scripted chat model (no network, no API key) answers three questions; each turn's
question and answer are stored, and each prompt replays the history. Then the stored rows
and the token-budgeted window for the next prompt are printed.

Run it with ``python samples/chat_history.py [path-or-url]``: it writes to the given
database, or to the embedded default (``$LIT_MEMORY_URL``, else ``./lit_memory.db``).
"""

from __future__ import annotations

import sys
import warnings

from langchain_core._api.deprecation import LangChainDeprecationWarning
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.history import RunnableWithMessageHistory

from lit_memory_langchain import LitChatMessageHistory, close_shared_stores

CONVERSATION = "chat-history-sample"
QUESTIONS = [
    "Hi, I'm Ada. I'd like to mash up Bach with Daft Punk.",
    "What tempo should the mashup use?",
    "Remind me: who am I and what are we making?",
]
ANSWERS = [
    "Nice to meet you, Ada! A Bach fugue over a Daft Punk groove is a fine idea.",
    "Daft Punk sits near 123 BPM; play the fugue subject at that pulse.",
    "You are Ada, and we are mashing up Bach with Daft Punk at 123 BPM.",
]


def build_chain(db: str | None) -> RunnableWithMessageHistory:
    """A prompt with the history placeholder, a scripted model, and lit-memory history."""
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are a music-mashup tutor."),
            MessagesPlaceholder("history"),
            ("human", "{question}"),
        ]
    )
    model = GenericFakeChatModel(messages=iter([AIMessage(text) for text in ANSWERS]))
    with warnings.catch_warnings():
        # LangChain 1.x deprecates this class (removal in 2.0); many apps still use it.
        warnings.filterwarnings("ignore", category=LangChainDeprecationWarning)
        return RunnableWithMessageHistory(
            prompt | model,
            lambda session_id: LitChatMessageHistory(session_id, db),
            input_messages_key="question",
            history_messages_key="history",
        )


def main(db: str | None) -> None:
    """Chat three turns, then print the stored rows and the next prompt's window."""
    history = LitChatMessageHistory(CONVERSATION, db)
    history.clear()  # rerunnable: start from a clean slate
    chain = build_chain(db)
    config: RunnableConfig = {"configurable": {"session_id": CONVERSATION}}
    for question in QUESTIONS:
        answer = chain.invoke({"question": question}, config)
        print(f"user:      {question}\nassistant: {answer.content}")
    print(f"\nstored in conversation {CONVERSATION!r}:")
    for message in history.messages:
        print(f"  {message.type:>5}  {message.text}")
    window = history.get_window(max_tokens=60)
    print(f"\nthe last {len(window)} messages fit a 60-token window for the next prompt")


if __name__ == "__main__":
    try:
        main(sys.argv[1] if len(sys.argv) > 1 else None)
    finally:
        close_shared_stores()
