"""lit-memory: conversation memory for LLM agents.

Every turn, tool call, cited web source, generated artifact and change of conversation phase,
stored in an async database (SQLite by default, PostgreSQL when one machine is not enough).
"""

from .enums import ConversationPhase, MessageRole, ToolCallStatus, ToolCallType
from .errors import (
    ConfigurationError,
    ConversationExistsError,
    ConversationNotFound,
    InvalidInputError,
    LitMemoryError,
    PhaseTransitionError,
    SchemaVersionError,
    StorageBusyError,
    StorageConnectionError,
    StorageCorruptError,
    StorageError,
    StorageFullError,
    StorageReadOnlyError,
    SyncInAsyncContextError,
)
from .flow import DEFAULT_FLOW, PhaseFlow
from .models import (
    Conversation,
    ConversationSummary,
    Mashup,
    Message,
    PhaseTransition,
    SearchHit,
    StoreStats,
    ToolCall,
    WebSource,
)
from .redact import default_redactor
from .store import AsyncConversationDB, NewMessage
from .sync import ConversationDB

__version__ = "0.1.0"

__all__ = [
    "AsyncConversationDB",
    "ConfigurationError",
    "Conversation",
    "ConversationDB",
    "ConversationExistsError",
    "ConversationNotFound",
    "ConversationPhase",
    "ConversationSummary",
    "DEFAULT_FLOW",
    "InvalidInputError",
    "LitMemoryError",
    "Mashup",
    "Message",
    "MessageRole",
    "NewMessage",
    "PhaseFlow",
    "PhaseTransition",
    "PhaseTransitionError",
    "SchemaVersionError",
    "SearchHit",
    "StorageBusyError",
    "StorageConnectionError",
    "StorageCorruptError",
    "StorageError",
    "StorageFullError",
    "StorageReadOnlyError",
    "StoreStats",
    "SyncInAsyncContextError",
    "ToolCall",
    "ToolCallStatus",
    "ToolCallType",
    "WebSource",
    "__version__",
    "default_redactor",
]
