"""Every SQL statement the PostgreSQL backend runs, as named constants and small builders.

The code that executes never builds SQL; values are always bound as parameters, and the only
clauses ever spliced in come from the fixed choices below, never from input.

Scale-out on paper: every table's primary key and unique constraints start with
`conversation_id`, and foreign keys reference (conversation_id, id) pairs, so each table can be
distributed by `conversation_id` (Citus `create_distributed_table`) without change. Ids come
from identity columns, so they stay unique across conversations all the same.

JSON columns are ``json``, not ``jsonb``: they keep the encoded text exactly as SQLite does
(jsonb would turn 1e16 into 10000000000000000 and -0.0 into 0, reorder keys and refuse
``\\u0000``), and lit-memory never queries inside them. JSON is bound as text, cast in SQL,
and read back with ``::text``, so a pool carrying a custom json codec still sees text.
Identifiers use ``COLLATE "C"`` so they sort byte-wise, as SQLite sorts them.
"""

from __future__ import annotations

MIGRATION_LOCK_KEY = 0x4C49_544D_454D_0001
"""The `pg_advisory_xact_lock` key serialising migrations ("LITMEM" + 1), per database."""

MINIMUM_SERVER_VERSION = 15
"""v2 uses ``ON DELETE SET NULL (column)``, new in PostgreSQL 15."""

# Migrations: position = version. Append only; a retired step stays (as "SELECT 1") so the
# numbers never shift. Versions mean the same schema as on SQLite. All missing steps run with
# their version rows in one transaction, under the advisory lock.
MIGRATIONS: list[str] = [
    # v1: the seed's five tables, with the columns the design needs.
    """
    CREATE TABLE conversations (
        conversation_id text COLLATE "C" PRIMARY KEY,
        owner text COLLATE "C",
        phase text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        metadata json
    );
    CREATE INDEX idx_conversations_updated ON conversations (updated_at, conversation_id);
    CREATE INDEX idx_conversations_owner ON conversations (owner, updated_at, conversation_id);
    CREATE INDEX idx_conversations_phase ON conversations (phase, updated_at, conversation_id);

    CREATE TABLE messages (
        conversation_id text COLLATE "C" NOT NULL
            REFERENCES conversations (conversation_id) ON DELETE CASCADE,
        message_id bigint GENERATED ALWAYS AS IDENTITY,
        seq bigint NOT NULL,
        role text NOT NULL,
        content text NOT NULL,
        "timestamp" timestamptz NOT NULL,
        metadata json,
        uid text COLLATE "C",
        payload json,
        PRIMARY KEY (conversation_id, message_id),
        UNIQUE (conversation_id, seq),
        UNIQUE (conversation_id, uid)
    );

    CREATE TABLE tool_calls (
        conversation_id text COLLATE "C" NOT NULL
            REFERENCES conversations (conversation_id) ON DELETE CASCADE,
        tool_call_id bigint GENERATED ALWAYS AS IDENTITY,
        tool_type text NOT NULL,
        tool_name text,
        input_data text NOT NULL,
        output_data text,
        status text NOT NULL,
        created_at timestamptz NOT NULL,
        started_at timestamptz,
        completed_at timestamptz,
        duration_ms double precision,
        error_message text,
        error_type text,
        run_id text COLLATE "C",
        parent_run_id text,
        call_id text,
        PRIMARY KEY (conversation_id, tool_call_id),
        UNIQUE (conversation_id, run_id)
    );
    -- get_tool_call(id) knows only the id; identity keeps it unique without a constraint.
    CREATE INDEX idx_tool_calls_id ON tool_calls (tool_call_id);

    CREATE TABLE web_sources (
        conversation_id text COLLATE "C" NOT NULL,
        source_id bigint GENERATED ALWAYS AS IDENTITY,
        tool_call_id bigint NOT NULL,
        url text NOT NULL,
        title text,
        snippet text,
        relevance_score double precision,
        rank integer,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (conversation_id, source_id),
        UNIQUE (conversation_id, tool_call_id, url),
        FOREIGN KEY (conversation_id, tool_call_id)
            REFERENCES tool_calls (conversation_id, tool_call_id) ON DELETE CASCADE
    );
    -- SQLite sorts NULL ranks first; so does this index and every query that uses it.
    CREATE INDEX idx_web_sources_tool_call
        ON web_sources (conversation_id, tool_call_id, rank NULLS FIRST, source_id);

    CREATE TABLE mashups (
        conversation_id text COLLATE "C" NOT NULL
            REFERENCES conversations (conversation_id) ON DELETE CASCADE,
        mashup_id bigint GENERATED ALWAYS AS IDENTITY,
        title text NOT NULL,
        description text,
        audio_file_path text,
        metadata json,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (conversation_id, mashup_id)
    );
    """,
    # v2: phase history, and mashups linked to the tool call that generated them.
    """
    CREATE TABLE phase_transitions (
        conversation_id text COLLATE "C" NOT NULL
            REFERENCES conversations (conversation_id) ON DELETE CASCADE,
        transition_id bigint GENERATED ALWAYS AS IDENTITY,
        from_phase text NOT NULL,
        to_phase text NOT NULL,
        reason text,
        run_id text,
        accepted boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (conversation_id, transition_id)
    );
    ALTER TABLE mashups ADD COLUMN tool_call_id bigint;
    -- Only the tool call column is cleared: conversation_id is part of the key.
    ALTER TABLE mashups ADD CONSTRAINT mashups_tool_call_fkey
        FOREIGN KEY (conversation_id, tool_call_id)
        REFERENCES tool_calls (conversation_id, tool_call_id) ON DELETE SET NULL (tool_call_id);
    CREATE INDEX idx_mashups_tool_call ON mashups (conversation_id, tool_call_id);
    """,
    # v3: full-text search over message content. English stemming like SQLite's porter
    # tokenizer, and no stop words, so every word can be searched for as on SQLite. An
    # expression index (no stored column): PostgreSQL keeps it in step with every insert,
    # update and cascaded delete. A tsvector holds at most 1 MB of words, so only the first
    # 200,000 characters (at most 800 kB) are indexed: a longer message is still stored.
    """
    CREATE TEXT SEARCH DICTIONARY lit_memory_stem (TEMPLATE = snowball, Language = english);
    CREATE TEXT SEARCH CONFIGURATION lit_memory (COPY = english);
    ALTER TEXT SEARCH CONFIGURATION lit_memory
        ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
        WITH lit_memory_stem;
    CREATE INDEX idx_messages_search ON messages
        USING gin (to_tsvector('lit_memory'::regconfig, left(content, 200000)));
    """,
    # v4: "has this conversation cited this URL already?" answered from an index.
    """
    CREATE INDEX idx_web_sources_url ON web_sources (conversation_id, url);
    """,
    # v5: on SQLite, batched search indexing; PostgreSQL's GIN index already batches its
    # inserts (fastupdate), so nothing changes here: the step keeps the versions aligned.
    "SELECT 1",
]

LOCK_MIGRATIONS = "SELECT pg_advisory_xact_lock($1)"
CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS lit_memory_migrations (
    v integer PRIMARY KEY,
    applied_at timestamptz NOT NULL
)
"""
SELECT_VERSION = "SELECT COALESCE(MAX(v), 0) FROM lit_memory_migrations"
INSERT_VERSION = "INSERT INTO lit_memory_migrations (v, applied_at) VALUES ($1, $2)"
SELECT_HAS_MIGRATIONS_TABLE = "SELECT to_regclass('lit_memory_migrations') IS NOT NULL"

# -- conversations ---------------------------------------------------------------------------

CONVERSATION_COLUMNS = "conversation_id, phase, created_at, updated_at, metadata::text, owner"

INSERT_CONVERSATION = """
INSERT INTO conversations (conversation_id, owner, phase, created_at, updated_at, metadata)
VALUES ($1, $2, $3, $4, $4, $5::text::json)
ON CONFLICT (conversation_id) DO NOTHING
"""
SELECT_CONVERSATION = f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE conversation_id = $1"
# Every write to a conversation first takes this row lock, inside its transaction (an
# append takes it within its one statement): writers to one conversation queue here, writers
# to different conversations never meet.
LOCK_CONVERSATION = "SELECT phase FROM conversations WHERE conversation_id = $1 FOR UPDATE"
# The same lock, taken by writing a new version of the row (same values, new xmin): what a
# write that removes messages takes, so that APPEND_MESSAGES notices it (see there).
LOCK_AND_RENEW_CONVERSATION = """
UPDATE conversations SET updated_at = updated_at WHERE conversation_id = $1 RETURNING phase
"""
# Last activity, as SQLite's insert triggers keep it: only ever moved forward.
TOUCH_CONVERSATION = """
UPDATE conversations SET updated_at = $2 WHERE conversation_id = $1 AND updated_at < $2
"""
UPDATE_PHASE = "UPDATE conversations SET phase = $2, updated_at = $3 WHERE conversation_id = $1"
DELETE_CONVERSATION = "DELETE FROM conversations WHERE conversation_id = $1"
CLEAR_MESSAGES = "DELETE FROM messages WHERE conversation_id = $1"

_COUNTS = """
    (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.conversation_id),
    (SELECT COUNT(*) FROM tool_calls t WHERE t.conversation_id = c.conversation_id),
    (SELECT COUNT(*) FROM mashups h WHERE h.conversation_id = c.conversation_id),
    (SELECT COUNT(*) FROM web_sources w WHERE w.conversation_id = c.conversation_id)
"""
_SUMMARY_COLUMNS = (
    "c.conversation_id, c.phase, c.created_at, c.updated_at, c.metadata::text, c.owner, " + _COUNTS
)
SELECT_SUMMARY = f"SELECT {_SUMMARY_COLUMNS} FROM conversations c WHERE c.conversation_id = $1"


def list_conversations(
    *, phase: str | None, owner: str | None, before: tuple[object, str] | None, limit: int
) -> tuple[str, list[object]]:
    """SQL and parameters listing conversations by last activity, newest first (keyset paged)."""
    where: list[str] = []
    params: list[object] = []
    if owner is not None:
        params.append(owner)
        where.append(f"c.owner = ${len(params)}")
    if phase is not None:
        params.append(phase)
        where.append(f"c.phase = ${len(params)}")
    if before is not None:
        params.extend(before)
        where.append(f"(c.updated_at, c.conversation_id) < (${len(params) - 1}, ${len(params)})")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    params.append(limit)
    sql = (
        f"SELECT {_SUMMARY_COLUMNS} FROM conversations c {clause} "
        f"ORDER BY c.updated_at DESC, c.conversation_id DESC LIMIT ${len(params)}"
    )
    return sql, params


# -- phases ----------------------------------------------------------------------------------

TRANSITION_COLUMNS = (
    "transition_id, conversation_id, from_phase, to_phase, reason, run_id, accepted, created_at"
)
INSERT_TRANSITION = f"""
INSERT INTO phase_transitions
    (conversation_id, from_phase, to_phase, reason, run_id, accepted, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING {TRANSITION_COLUMNS}
"""
SELECT_TRANSITIONS = (
    f"SELECT {TRANSITION_COLUMNS} FROM phase_transitions WHERE conversation_id = $1 "
    "ORDER BY transition_id"
)

# -- messages --------------------------------------------------------------------------------

MESSAGE_COLUMNS = (
    'message_id, conversation_id, seq, role, content, "timestamp", metadata::text, uid, '
    "payload::text"
)
# A whole turn in one statement, so in one round trip, run on its own (no transaction around
# it). Under READ COMMITTED all its parts read the snapshot taken when it starts, but its
# UPDATE waits for the conversation's row lock: a writer it waited for may have committed
# messages that snapshot does not show, and MAX(seq) + n would be wrong.
# So the UPDATE goes ahead only on the very row version the snapshot read (same xmin; every
# write that adds or removes messages writes a new version of their conversation's row, in
# the same transaction). Then the snapshot holds all the conversation's messages and no one
# can add another before this commits: seq stays gap-free and unique.
# Returns no row when the snapshot shows no conversation; NULL, having written nothing, when
# another writer changed it meanwhile (the caller then locks it first, in a transaction, and
# runs APPEND_NEW_MESSAGES: its snapshot then follows the lock); else how many were added.
# It does not look stored uids up: a uid already stored (a retried turn) fails the statement
# on the unique key, writing nothing, and the caller takes the locked path, which skips
# them. Its cost does not depend on the parameters, so PostgreSQL plans it once per
# connection rather than on every call. (A uid lookup in it made that one plan, made early
# on a nearly empty table, read the conversation's every uid: a turn's cost grew with the
# conversation, 835 to 277 turns/s over 2,000 turns on a fresh database.)
APPEND_MESSAGES = """
WITH seen AS (
    SELECT xmin AS version FROM conversations WHERE conversation_id = $1
), fresh AS (
    SELECT b.* FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
        WITH ORDINALITY AS b (role, content, metadata, uid, payload, n)
), prev AS (
    SELECT COALESCE(MAX(seq), 0) AS seq FROM messages WHERE conversation_id = $1
), locked AS (
    UPDATE conversations
    SET updated_at = CASE WHEN EXISTS (SELECT 1 FROM fresh)
                          THEN GREATEST(updated_at, $2) ELSE updated_at END
    WHERE conversation_id = $1 AND xmin = (SELECT version FROM seen)
    RETURNING 1
), inserted AS (
    INSERT INTO messages
        (conversation_id, seq, role, content, "timestamp", metadata, uid, payload)
    SELECT $1, prev.seq + f.n, f.role, f.content, $2, f.metadata::json, f.uid,
           f.payload::json
    FROM fresh f, prev, locked
    ORDER BY f.n
    RETURNING 1
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM locked) THEN (SELECT COUNT(*) FROM inserted) END
FROM seen
"""
# The locked path's append (the conversation's row lock held, so its snapshot is complete):
# uids already stored are skipped before numbering, each looked up by the whole unique key.
APPEND_NEW_MESSAGES = """
WITH known AS (
    SELECT k.uid FROM unnest($6::text[]) AS u (uid), LATERAL (
        SELECT m.uid FROM messages m WHERE m.conversation_id = $1 AND m.uid = u.uid LIMIT 1
    ) k
), fresh AS (
    SELECT b.*, row_number() OVER (ORDER BY b.ord) AS n
    FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
        WITH ORDINALITY AS b (role, content, metadata, uid, payload, ord)
    WHERE b.uid IS NULL OR b.uid NOT IN (SELECT uid FROM known)
), prev AS (
    SELECT COALESCE(MAX(seq), 0) AS seq FROM messages WHERE conversation_id = $1
), touched AS (
    UPDATE conversations SET updated_at = GREATEST(updated_at, $2)
    WHERE conversation_id = $1 AND EXISTS (SELECT 1 FROM fresh)
    RETURNING 1
), inserted AS (
    INSERT INTO messages
        (conversation_id, seq, role, content, "timestamp", metadata, uid, payload)
    SELECT $1, prev.seq + f.n, f.role, f.content, $2, f.metadata::json, f.uid,
           f.payload::json
    FROM fresh f, prev
    ORDER BY f.ord
    RETURNING 1
)
SELECT COUNT(*) FROM inserted
"""
# A turn that creates its conversation, in one statement, for when APPEND_MESSAGES found
# none: no other writer can add messages to a row this statement inserts until it commits,
# so they are numbered from 1 (the caller sends each uid once). When another writer created
# the conversation meanwhile, it changes nothing and returns no row.
CREATE_WITH_MESSAGES = """
WITH created AS (
    INSERT INTO conversations (conversation_id, owner, phase, created_at, updated_at, metadata)
    VALUES ($1, $8, $9, $2, $2, NULL)
    ON CONFLICT (conversation_id) DO NOTHING
    RETURNING 1
), inserted AS (
    INSERT INTO messages
        (conversation_id, seq, role, content, "timestamp", metadata, uid, payload)
    SELECT $1, b.ord, b.role, b.content, $2, b.metadata::json, b.uid, b.payload::json
    FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
        WITH ORDINALITY AS b (role, content, metadata, uid, payload, ord), created
    ORDER BY b.ord
    RETURNING 1
)
SELECT (SELECT COUNT(*) FROM inserted) FROM created
"""
SELECT_MESSAGES = (
    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq > $2 "
    "ORDER BY seq LIMIT $3 OFFSET $4"
)
SELECT_LAST_MESSAGES = f"""
SELECT {MESSAGE_COLUMNS} FROM (
    SELECT * FROM messages WHERE conversation_id = $1 AND seq < $2
    ORDER BY seq DESC LIMIT $3
) recent ORDER BY seq
"""
COUNT_MESSAGES = "SELECT COUNT(*) FROM messages WHERE conversation_id = $1"

# -- tool calls ------------------------------------------------------------------------------

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
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (conversation_id, run_id) DO NOTHING
RETURNING tool_call_id
"""
SELECT_CONVERSATION_OF_TOOL_CALL = "SELECT conversation_id FROM tool_calls WHERE tool_call_id = $1"
# None leaves a column as it is; completed_at and duration are filled once, when the call ends.
UPDATE_TOOL_CALL = """
UPDATE tool_calls SET
    output_data = COALESCE($3::text, output_data),
    status = COALESCE($4::text, status),
    error_message = COALESCE($5::text, error_message),
    error_type = COALESCE($6::text, error_type),
    call_id = COALESCE($7::text, call_id),
    completed_at = CASE WHEN $8::timestamptz IS NOT NULL AND completed_at IS NULL
                        THEN $8::timestamptz ELSE completed_at END,
    duration_ms = COALESCE($9::float8, duration_ms,
        CASE WHEN $8::timestamptz IS NOT NULL AND completed_at IS NULL
             THEN EXTRACT(EPOCH FROM $8::timestamptz - COALESCE(started_at, created_at))::float8
                  * 1000.0
        END)
WHERE conversation_id = $1 AND tool_call_id = $2
"""
SELECT_TOOL_CALL = f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE tool_call_id = $1"
SELECT_TOOL_CALL_BY_RUN = (
    f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE conversation_id = $1 AND run_id = $2"
)
SELECT_TOOL_CALLS = (
    f"SELECT {TOOL_CALL_COLUMNS} FROM tool_calls WHERE conversation_id = $1 ORDER BY tool_call_id"
)
SELECT_TOOL_CALL_EXISTS = (
    "SELECT 1 FROM tool_calls WHERE conversation_id = $1 AND tool_call_id = $2"
)

# -- web sources -----------------------------------------------------------------------------

SOURCE_COLUMNS = (
    "source_id, conversation_id, tool_call_id, url, title, snippet, relevance_score, rank, "
    "created_at"
)
# Rows keep the order given (ids follow it); a URL already stored, or repeated in the
# batch, is skipped by the unique constraint.
INSERT_WEB_SOURCES = """
WITH inserted AS (
    INSERT INTO web_sources
        (conversation_id, tool_call_id, url, title, snippet, relevance_score, rank, created_at)
    SELECT $1, $2, b.url, b.title, b.snippet, b.score, b.rank, $3
    FROM unnest($4::text[], $5::text[], $6::text[], $7::float8[], $8::int[])
        WITH ORDINALITY AS b (url, title, snippet, score, rank, ord)
    ORDER BY b.ord
    ON CONFLICT (conversation_id, tool_call_id, url) DO NOTHING
    RETURNING 1
)
SELECT COUNT(*) FROM inserted
"""
# The same, skipping a URL the conversation has cited before (through any tool call).
INSERT_NEW_WEB_SOURCES = """
WITH inserted AS (
    INSERT INTO web_sources
        (conversation_id, tool_call_id, url, title, snippet, relevance_score, rank, created_at)
    SELECT $1, $2, b.url, b.title, b.snippet, b.score, b.rank, $3
    FROM unnest($4::text[], $5::text[], $6::text[], $7::float8[], $8::int[])
        WITH ORDINALITY AS b (url, title, snippet, score, rank, ord)
    WHERE NOT EXISTS (
        SELECT 1 FROM web_sources k WHERE k.conversation_id = $1 AND k.url = b.url
    )
    ORDER BY b.ord
    ON CONFLICT (conversation_id, tool_call_id, url) DO NOTHING
    RETURNING 1
)
SELECT COUNT(*) FROM inserted
"""
SELECT_SOURCES_OF_CONVERSATION = (
    f"SELECT {SOURCE_COLUMNS} FROM web_sources WHERE conversation_id = $1 "
    "ORDER BY tool_call_id, rank NULLS FIRST, source_id"
)
SELECT_SOURCES_OF_TOOL_CALL = (
    f"SELECT {SOURCE_COLUMNS} FROM web_sources WHERE conversation_id = $1 AND tool_call_id = $2 "
    "ORDER BY rank NULLS FIRST, source_id"
)

# -- mashups ---------------------------------------------------------------------------------

MASHUP_COLUMNS = (
    "mashup_id, conversation_id, title, description, audio_file_path, metadata::text, "
    "tool_call_id, created_at"
)
INSERT_MASHUP = """
INSERT INTO mashups
    (conversation_id, title, description, audio_file_path, metadata, tool_call_id, created_at)
VALUES ($1, $2, $3, $4, $5::text::json, $6, $7)
RETURNING mashup_id
"""
SELECT_MASHUPS = (
    f"SELECT {MASHUP_COLUMNS} FROM mashups WHERE conversation_id = $1 ORDER BY mashup_id"
)

# -- search, retention, statistics, import ---------------------------------------------------

# Exactly the expression of idx_messages_search, so the planner can use the index.
_SEARCHED_TEXT = "left(m.content, 200000)"
_SEARCH_DOCUMENT = f"to_tsvector('lit_memory'::regconfig, {_SEARCHED_TEXT})"
# Plain words all match (operators and punctuation taken literally); raw is web search syntax.
_TSQUERY = {False: "plainto_tsquery", True: "websearch_to_tsquery"}


def search_messages(
    query: str, *, raw: bool, conversation_id: str | None, owner: str | None, limit: int
) -> tuple[str, list[object]]:
    """SQL and parameters for a ranked full-text search (ts_rank: higher is better)."""
    params: list[object] = [query]
    where = [f"{_SEARCH_DOCUMENT} @@ q"]
    if conversation_id is not None:
        params.append(conversation_id)
        where.append(f"m.conversation_id = ${len(params)}")
    if owner is not None:
        params.append(owner)
        where.append(
            "m.conversation_id IN "
            f"(SELECT conversation_id FROM conversations WHERE owner = ${len(params)})"
        )
    params.append(limit)
    columns = ", ".join(f"m.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))
    sql = (
        f"SELECT {columns}, ts_rank({_SEARCH_DOCUMENT}, q) AS score, "
        f"ts_headline('lit_memory'::regconfig, {_SEARCHED_TEXT}, q, "
        "'StartSel=**, StopSel=**, MaxWords=16, MinWords=6') "
        f"FROM messages m, {_TSQUERY[raw]}('lit_memory'::regconfig, $1) q "
        f"WHERE {' AND '.join(where)} "
        f"ORDER BY score DESC, m.conversation_id, m.seq LIMIT ${len(params)}"
    )
    return sql, params


def select_conversations_to_delete(
    *, owner: str | None, idle_before: object | None, phase: str | None, lock: bool
) -> tuple[str, list[object]]:
    """SQL and parameters selecting the conversations a purge or erasure removes: their
    summaries (oldest activity first), or with `lock` only their ids, row-locked in id order."""
    where: list[str] = []
    params: list[object] = []
    for column, value in (("owner", owner), ("updated_at", idle_before), ("phase", phase)):
        if value is not None:
            params.append(value)
            operator = "<" if column == "updated_at" else "="
            where.append(f"c.{column} {operator} ${len(params)}")
    clause = " AND ".join(where) or "true"
    if lock:
        sql = f"SELECT c.conversation_id FROM conversations c WHERE {clause} "
        return sql + "ORDER BY c.conversation_id FOR UPDATE", params
    sql = (
        f"SELECT {_SUMMARY_COLUMNS} FROM conversations c WHERE {clause} "
        "ORDER BY c.updated_at, c.conversation_id"
    )
    return sql, params


SELECT_SUMMARIES = (
    f"SELECT {_SUMMARY_COLUMNS} FROM conversations c WHERE c.conversation_id = ANY($1::text[]) "
    "ORDER BY c.updated_at, c.conversation_id"
)
DELETE_CONVERSATIONS = "DELETE FROM conversations WHERE conversation_id = ANY($1::text[])"

COUNT_ALL = """
SELECT (SELECT COUNT(*) FROM conversations), (SELECT COUNT(*) FROM messages),
       (SELECT COUNT(*) FROM tool_calls), (SELECT COUNT(*) FROM web_sources),
       (SELECT COUNT(*) FROM mashups), (SELECT COUNT(*) FROM phase_transitions)
"""
DATABASE_SIZE = "SELECT pg_database_size(current_database())"
SELECT_BUSIEST = f"""
SELECT {_SUMMARY_COLUMNS} FROM conversations c
WHERE c.conversation_id IN (
    SELECT conversation_id FROM messages GROUP BY conversation_id
    ORDER BY COUNT(*) DESC, conversation_id LIMIT $1
)
"""

IMPORT_CONVERSATION = """
INSERT INTO conversations (conversation_id, owner, phase, created_at, updated_at, metadata)
VALUES ($1, $2, $3, $4, $5, $6::text::json)
ON CONFLICT (conversation_id) DO NOTHING
"""
IMPORT_MESSAGE = """
INSERT INTO messages (conversation_id, seq, role, content, "timestamp", metadata, uid, payload)
VALUES ($1, $2, $3, $4, $5, $6::text::json, $7, $8::text::json)
"""
IMPORT_WEB_SOURCE = """
INSERT INTO web_sources
    (conversation_id, tool_call_id, url, title, snippet, relevance_score, rank, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""
IMPORT_TRANSITION = """
INSERT INTO phase_transitions
    (conversation_id, from_phase, to_phase, reason, run_id, accepted, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
