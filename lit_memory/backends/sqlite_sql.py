"""Every SQL statement the SQLite backend runs, as named constants and small builders.

The code that executes never builds SQL; values are always bound as parameters, and the only
identifiers ever spliced in come from the fixed choices below, never from input.
"""

from __future__ import annotations

# Migrations: position = version. Append only; a retired step stays (as "SELECT 1") so the
# numbers never shift. Each step runs with its version row in one transaction.
MIGRATIONS: list[str] = [
    # v1: the seed's five tables, with the columns the design needs.
    """
    CREATE TABLE conversations (
        conversation_id TEXT PRIMARY KEY,
        owner TEXT,
        phase TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        metadata TEXT
    );
    CREATE INDEX idx_conversations_updated ON conversations (updated_at, conversation_id);
    CREATE INDEX idx_conversations_owner ON conversations (owner, updated_at, conversation_id);
    CREATE INDEX idx_conversations_phase ON conversations (phase, updated_at, conversation_id);

    CREATE TABLE messages (
        message_id INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL
            REFERENCES conversations (conversation_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        metadata TEXT,
        uid TEXT,
        payload TEXT,
        UNIQUE (conversation_id, seq),
        UNIQUE (conversation_id, uid)
    );

    CREATE TABLE tool_calls (
        tool_call_id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL
            REFERENCES conversations (conversation_id) ON DELETE CASCADE,
        tool_type TEXT NOT NULL,
        tool_name TEXT,
        input_data TEXT NOT NULL,
        output_data TEXT,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        completed_at TEXT,
        duration_ms REAL,
        error_message TEXT,
        error_type TEXT,
        run_id TEXT,
        parent_run_id TEXT,
        call_id TEXT
    );
    CREATE INDEX idx_tool_calls_conversation ON tool_calls (conversation_id, tool_call_id);
    CREATE UNIQUE INDEX idx_tool_calls_run ON tool_calls (conversation_id, run_id);

    CREATE TABLE web_sources (
        source_id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL
            REFERENCES conversations (conversation_id) ON DELETE CASCADE,
        tool_call_id INTEGER NOT NULL REFERENCES tool_calls (tool_call_id) ON DELETE CASCADE,
        url TEXT NOT NULL,
        title TEXT,
        snippet TEXT,
        relevance_score REAL,
        rank INTEGER,
        created_at TEXT NOT NULL,
        UNIQUE (conversation_id, tool_call_id, url)
    );
    CREATE INDEX idx_web_sources_tool_call ON web_sources (tool_call_id, rank);

    CREATE TABLE mashups (
        mashup_id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL
            REFERENCES conversations (conversation_id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        description TEXT,
        audio_file_path TEXT,
        metadata TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX idx_mashups_conversation ON mashups (conversation_id, mashup_id);

    CREATE TRIGGER trg_messages_touch AFTER INSERT ON messages BEGIN
        UPDATE conversations SET updated_at = NEW.timestamp
        WHERE conversation_id = NEW.conversation_id AND updated_at < NEW.timestamp;
    END;
    CREATE TRIGGER trg_tool_calls_touch AFTER INSERT ON tool_calls BEGIN
        UPDATE conversations SET updated_at = NEW.created_at
        WHERE conversation_id = NEW.conversation_id AND updated_at < NEW.created_at;
    END;
    CREATE TRIGGER trg_mashups_touch AFTER INSERT ON mashups BEGIN
        UPDATE conversations SET updated_at = NEW.created_at
        WHERE conversation_id = NEW.conversation_id AND updated_at < NEW.created_at;
    END;
    """,
    # v2: phase history, and mashups linked to the tool call that generated them.
    """
    CREATE TABLE phase_transitions (
        transition_id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL
            REFERENCES conversations (conversation_id) ON DELETE CASCADE,
        from_phase TEXT NOT NULL,
        to_phase TEXT NOT NULL,
        reason TEXT,
        run_id TEXT,
        accepted INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE INDEX idx_phase_transitions_conversation
        ON phase_transitions (conversation_id, transition_id);
    ALTER TABLE mashups ADD COLUMN tool_call_id INTEGER
        REFERENCES tool_calls (tool_call_id) ON DELETE SET NULL;
    CREATE INDEX idx_mashups_tool_call ON mashups (tool_call_id);
    """,
    # v3: full-text search over message content (FTS5, external content, kept in sync by
    # triggers, which also fire for rows removed by ON DELETE CASCADE).
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, content = 'messages', content_rowid = 'message_id',
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
    CREATE TRIGGER trg_messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content) VALUES (NEW.message_id, NEW.content);
    END;
    CREATE TRIGGER trg_messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', OLD.message_id, OLD.content);
    END;
    CREATE TRIGGER trg_messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', OLD.message_id, OLD.content);
        INSERT INTO messages_fts (rowid, content) VALUES (NEW.message_id, NEW.content);
    END;
    """,
    # v4: "has this conversation cited this URL already?" answered from an index.
    """
    CREATE INDEX idx_web_sources_url ON web_sources (conversation_id, url);
    """,
    # v5: messages are indexed for search in batches, not one commit at a time (FTS5 writes
    # a segment per transaction: indexing each append cost more than the append itself).
    # The index holds exactly the messages whose id is at most messages_fts_state.indexed_to;
    # newer ones wait until the writer indexes them (every few hundred messages, before a
    # search, when the store closes). Appends pay nothing for it. Deleting the newest
    # messages lowers the mark to the largest id left, so an id SQLite hands out again is
    # never taken for indexed; a deleted or edited message leaves the index only if it was in.
    """
    CREATE TABLE messages_fts_state (indexed_to INTEGER NOT NULL);
    INSERT INTO messages_fts_state (indexed_to) SELECT COALESCE(MAX(message_id), 0) FROM messages;
    DROP TRIGGER trg_messages_fts_insert;
    DROP TRIGGER trg_messages_fts_delete;
    CREATE TRIGGER trg_messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
            SELECT 'delete', OLD.message_id, OLD.content
            WHERE OLD.message_id <= (SELECT indexed_to FROM messages_fts_state);
        UPDATE messages_fts_state
            SET indexed_to = (SELECT COALESCE(MAX(message_id), 0) FROM messages)
            WHERE indexed_to > (SELECT COALESCE(MAX(message_id), 0) FROM messages);
    END;
    DROP TRIGGER trg_messages_fts_update;
    CREATE TRIGGER trg_messages_fts_update AFTER UPDATE OF content ON messages
    WHEN OLD.message_id <= (SELECT indexed_to FROM messages_fts_state) BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', OLD.message_id, OLD.content);
        INSERT INTO messages_fts (rowid, content) VALUES (NEW.message_id, NEW.content);
    END;
    """,
]
DEFERRED_INDEX_VERSION = 5
"""From this schema version on, new messages wait (past messages_fts_state) to be indexed."""

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS lit_memory_migrations (
    v INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL
)
"""
SELECT_VERSION = "SELECT COALESCE(MAX(v), 0) FROM lit_memory_migrations"
INSERT_VERSION = "INSERT INTO lit_memory_migrations (v, applied_at) VALUES (?, ?)"
SELECT_HAS_MIGRATIONS_TABLE = (
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lit_memory_migrations'"
)

# Full-text indexing of the messages waiting for it (schema v5): in the writer's transaction.
INDEX_PENDING_MESSAGES = """
INSERT INTO messages_fts (rowid, content)
SELECT message_id, content FROM messages
WHERE message_id > (SELECT indexed_to FROM messages_fts_state)
ORDER BY message_id
"""
MARK_MESSAGES_INDEXED = (
    "UPDATE messages_fts_state SET indexed_to = (SELECT COALESCE(MAX(message_id), 0) FROM messages)"
)
SELECT_HAS_PENDING_MESSAGES = (
    "SELECT EXISTS (SELECT 1 FROM messages "
    "WHERE message_id > (SELECT indexed_to FROM messages_fts_state))"
)

CONVERSATION_COLUMNS = "conversation_id, phase, created_at, updated_at, metadata, owner"

INSERT_CONVERSATION = """
INSERT INTO conversations (conversation_id, owner, phase, created_at, updated_at, metadata)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (conversation_id) DO NOTHING
"""
SELECT_CONVERSATION = f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE conversation_id = ?"
SELECT_PHASE = "SELECT phase FROM conversations WHERE conversation_id = ?"
UPDATE_PHASE = "UPDATE conversations SET phase = ?, updated_at = ? WHERE conversation_id = ?"
INSERT_TRANSITION = """
INSERT INTO phase_transitions
    (conversation_id, from_phase, to_phase, reason, run_id, accepted, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
DELETE_CONVERSATION = "DELETE FROM conversations WHERE conversation_id = ?"
CLEAR_MESSAGES = "DELETE FROM messages WHERE conversation_id = ?"

_COUNTS = """
    (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.conversation_id),
    (SELECT COUNT(*) FROM tool_calls t WHERE t.conversation_id = c.conversation_id),
    (SELECT COUNT(*) FROM mashups h WHERE h.conversation_id = c.conversation_id),
    (SELECT COUNT(*) FROM web_sources w WHERE w.conversation_id = c.conversation_id)
"""
_SUMMARY_COLUMNS = (
    "c.conversation_id, c.phase, c.created_at, c.updated_at, c.metadata, c.owner, " + _COUNTS
)
SELECT_SUMMARY = f"SELECT {_SUMMARY_COLUMNS} FROM conversations c WHERE c.conversation_id = ?"


def list_conversations(
    *, phase: str | None, owner: str | None, before: tuple[str, str] | None, limit: int
) -> tuple[str, list[object]]:
    """SQL and parameters listing conversations by last activity, newest first (keyset paged)."""
    where: list[str] = []
    params: list[object] = []
    if owner is not None:
        where.append("c.owner = ?")
        params.append(owner)
    if phase is not None:
        where.append("c.phase = ?")
        params.append(phase)
    if before is not None:
        where.append("(c.updated_at, c.conversation_id) < (?, ?)")
        params.extend(before)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    sql = (
        f"SELECT {_SUMMARY_COLUMNS} FROM conversations c {clause} "
        "ORDER BY c.updated_at DESC, c.conversation_id DESC LIMIT ?"
    )
    return sql, [*params, limit]


MESSAGE_COLUMNS = (
    "message_id, conversation_id, seq, role, content, timestamp, metadata, uid, payload"
)
# The sequence is computed inside the insert, under the write transaction, from the
# (conversation_id, seq) index, so it has no gaps and no duplicates.
INSERT_MESSAGE = """
INSERT INTO messages
    (conversation_id, seq, role, content, timestamp, metadata, uid, payload)
SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7
FROM messages WHERE conversation_id = ?1
ON CONFLICT (conversation_id, uid) DO NOTHING
"""
SELECT_MESSAGES = (
    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ? "
    "ORDER BY seq LIMIT ? OFFSET ?"
)
# Newest first: the index is read backwards and stops after n rows, with no sort; the
# backend puts the page back in chronological order.
SELECT_LAST_MESSAGES = (
    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq < ? "
    "ORDER BY seq DESC LIMIT ?"
)
COUNT_MESSAGES = "SELECT COUNT(*) FROM messages WHERE conversation_id = ?"

TOOL_CALL_COLUMNS = (
    "tool_call_id, conversation_id, tool_type, tool_name, input_data, output_data, status, "
    "created_at, started_at, completed_at, duration_ms, error_message, error_type, run_id, "
    "parent_run_id, call_id"
)
INSERT_TOOL_CALL = """
INSERT INTO tool_calls
    (conversation_id, tool_type, tool_name, input_data, output_data, status, created_at,
     started_at, completed_at, duration_ms, error_message, error_type, run_id,
     parent_run_id, call_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (conversation_id, run_id) DO NOTHING
"""
# None leaves a column as it is; completed_at and duration are filled once, when the call ends.
UPDATE_TOOL_CALL = """
UPDATE tool_calls SET
    output_data = COALESCE(?1, output_data),
    status = COALESCE(?2, status),
    error_message = COALESCE(?3, error_message),
    error_type = COALESCE(?4, error_type),
    call_id = COALESCE(?5, call_id),
    completed_at = CASE WHEN ?6 IS NOT NULL AND completed_at IS NULL THEN ?6 ELSE completed_at END,
    duration_ms = COALESCE(?7, duration_ms,
        CASE WHEN ?6 IS NOT NULL AND completed_at IS NULL
             THEN (julianday(?6) - julianday(COALESCE(started_at, created_at))) * 86400000.0
        END)
WHERE tool_call_id = ?8
"""
TOUCH_CONVERSATION_OF_TOOL_CALL = """
UPDATE conversations SET updated_at = ?1
WHERE conversation_id = (SELECT conversation_id FROM tool_calls WHERE tool_call_id = ?2)
  AND updated_at < ?1
"""
SELECT_TOOL_CALL_EXISTS = "SELECT 1 FROM tool_calls WHERE tool_call_id = ?"
SELECT_TOOL_CALL = f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE tool_call_id = ?"
SELECT_TOOL_CALL_BY_RUN = (
    f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE conversation_id = ? AND run_id = ?"
)
SELECT_TOOL_CALLS = (
    f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE conversation_id = ? ORDER BY tool_call_id"
)

SOURCE_COLUMNS = (
    "source_id, conversation_id, tool_call_id, url, title, snippet, relevance_score, rank, "
    "created_at"
)
INSERT_WEB_SOURCE = """
INSERT INTO web_sources
    (conversation_id, tool_call_id, url, title, snippet, relevance_score, rank, created_at)
SELECT conversation_id, tool_call_id, ?2, ?3, ?4, ?5, ?6, ?7
FROM tool_calls WHERE tool_call_id = ?1
ON CONFLICT (conversation_id, tool_call_id, url) DO NOTHING
"""
# The same, skipping a URL the conversation has cited before (through any tool call).
INSERT_NEW_WEB_SOURCE = """
INSERT INTO web_sources
    (conversation_id, tool_call_id, url, title, snippet, relevance_score, rank, created_at)
SELECT t.conversation_id, t.tool_call_id, ?2, ?3, ?4, ?5, ?6, ?7
FROM tool_calls t WHERE t.tool_call_id = ?1 AND NOT EXISTS (
    SELECT 1 FROM web_sources k WHERE k.conversation_id = t.conversation_id AND k.url = ?2
)
ON CONFLICT (conversation_id, tool_call_id, url) DO NOTHING
"""
# Through the conversation's tool calls: their index gives the call order and the sources'
# (tool_call_id, rank) index the order within a call, so nothing is sorted.
_SOURCE_COLUMNS_OF_W = ", ".join(f"w.{c.strip()}" for c in SOURCE_COLUMNS.split(","))
SELECT_SOURCES_OF_CONVERSATION = (
    f"SELECT {_SOURCE_COLUMNS_OF_W} FROM tool_calls t "
    "JOIN web_sources w ON w.tool_call_id = t.tool_call_id "
    "WHERE t.conversation_id = ? ORDER BY t.tool_call_id, w.rank, w.source_id"
)
SELECT_SOURCES_OF_TOOL_CALL = (
    f"SELECT {SOURCE_COLUMNS} FROM web_sources WHERE tool_call_id = ? ORDER BY rank, source_id"
)

MASHUP_COLUMNS = (
    "mashup_id, conversation_id, title, description, audio_file_path, metadata, tool_call_id, "
    "created_at"
)
# A mashup links only to a tool call of its own conversation (nothing is inserted otherwise).
INSERT_MASHUP = """
INSERT INTO mashups
    (conversation_id, title, description, audio_file_path, metadata, tool_call_id, created_at)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
WHERE ?6 IS NULL
   OR EXISTS (SELECT 1 FROM tool_calls WHERE tool_call_id = ?6 AND conversation_id = ?1)
"""
SELECT_MASHUPS = (
    f"SELECT {MASHUP_COLUMNS} FROM mashups WHERE conversation_id = ? ORDER BY mashup_id"
)

TRANSITION_COLUMNS = (
    "transition_id, conversation_id, from_phase, to_phase, reason, run_id, accepted, created_at"
)
SELECT_TRANSITIONS = (
    f"SELECT {TRANSITION_COLUMNS} FROM phase_transitions WHERE conversation_id = ? "
    "ORDER BY transition_id"
)

# Connection settings, applied to every connection the backend opens.
PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


def search_messages(
    match: str, *, conversation_id: str | None, owner: str | None, limit: int
) -> tuple[str, list[object]]:
    """SQL and parameters for a ranked full-text search (bm25: lower is better)."""
    where = ["messages_fts MATCH ?"]
    params: list[object] = [match]
    if conversation_id is not None:
        where.append("m.conversation_id = ?")
        params.append(conversation_id)
    if owner is not None:
        where.append(
            "m.conversation_id IN (SELECT conversation_id FROM conversations WHERE owner = ?)"
        )
        params.append(owner)
    columns = ", ".join(f"m.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))
    sql = (
        f"SELECT {columns}, -bm25(messages_fts), "
        "snippet(messages_fts, 0, '**', '**', '…', 16) "
        "FROM messages_fts JOIN messages m ON m.message_id = messages_fts.rowid "
        f"WHERE {' AND '.join(where)} ORDER BY bm25(messages_fts) LIMIT ?"
    )
    return sql, [*params, limit]


def fts_words(query: str) -> str:
    """The words of a plain query as an FTS5 expression matching all of them (each quoted, so
    punctuation and FTS operators in the text are taken literally)."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in query.split())


def select_conversations_to_delete(
    *, owner: str | None, idle_before: str | None, phase: str | None, limit: int
) -> tuple[str, list[object]]:
    """SQL and parameters selecting (with counts) the conversations a purge or erasure removes."""
    where: list[str] = []
    params: list[object] = []
    if owner is not None:
        where.append("c.owner = ?")
        params.append(owner)
    if idle_before is not None:
        where.append("c.updated_at < ?")
        params.append(idle_before)
    if phase is not None:
        where.append("c.phase = ?")
        params.append(phase)
    clause = " AND ".join(where) or "1 = 1"
    sql = (
        f"SELECT {_SUMMARY_COLUMNS} FROM conversations c WHERE {clause} "
        "ORDER BY c.updated_at, c.conversation_id LIMIT ?"
    )
    return sql, [*params, limit]


COUNT_ALL = """
SELECT (SELECT COUNT(*) FROM conversations), (SELECT COUNT(*) FROM messages),
       (SELECT COUNT(*) FROM tool_calls), (SELECT COUNT(*) FROM web_sources),
       (SELECT COUNT(*) FROM mashups), (SELECT COUNT(*) FROM phase_transitions)
"""
DATABASE_SIZE = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
SELECT_BUSIEST = f"""
SELECT {_SUMMARY_COLUMNS} FROM conversations c
WHERE c.conversation_id IN (
    SELECT conversation_id FROM messages GROUP BY conversation_id
    ORDER BY COUNT(*) DESC, conversation_id LIMIT ?
)
"""

IMPORT_CONVERSATION = """
INSERT INTO conversations (conversation_id, owner, phase, created_at, updated_at, metadata)
VALUES (?, ?, ?, ?, ?, ?)
"""
RESTORE_UPDATED_AT = "UPDATE conversations SET updated_at = ? WHERE conversation_id = ?"
IMPORT_MESSAGE = """
INSERT INTO messages (conversation_id, seq, role, content, timestamp, metadata, uid, payload)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
IMPORT_WEB_SOURCE = """
INSERT INTO web_sources
    (conversation_id, tool_call_id, url, title, snippet, relevance_score, rank, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
IMPORT_TRANSITION = INSERT_TRANSITION
