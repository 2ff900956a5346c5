-- The audit trail: one row per security event, append-only and hash-chained
-- (see src/audit/). The database refuses to change or delete a row; each
-- row carries the hash of the row before it and of its own content, so a
-- row altered or removed behind the database's back breaks the chain that
-- `verify-audit` walks.

CREATE TABLE audit_events (
    -- Consecutive from 1: a gap is a missing row.
    seq          BIGINT  PRIMARY KEY,
    -- RFC 3339, UTC, microseconds: the form the hash covers.
    occurred_at  TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    outcome      TEXT    NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    actor_kind   TEXT    NOT NULL,
    actor_id     TEXT,
    actor_client TEXT,
    actor_method TEXT,
    source       TEXT,
    user_agent   TEXT,
    request_id   TEXT,
    target_kind  TEXT,
    target_id    TEXT,
    -- A JSON object, kept as the text the hash covers.
    details      TEXT    NOT NULL,
    -- Events of a flood (denials, rate limits) from one source in one
    -- interval share a row.
    count        BIGINT  NOT NULL CHECK (count >= 1),
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL
);

CREATE INDEX audit_events_by_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_events_by_name ON audit_events (name, seq);
CREATE INDEX audit_events_by_target ON audit_events (target_id, seq);
CREATE INDEX audit_events_by_time ON audit_events (occurred_at);

-- The head of the chain, one row: appends take its lock first, so that
-- appends from every instance form one chain; and how far the trail was
-- pruned, with the hash of the last row removed.
CREATE TABLE audit_head (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq     BIGINT  NOT NULL,
    last_hash    TEXT    NOT NULL,
    pruned_upto  BIGINT  NOT NULL,
    pruned_hash  TEXT    NOT NULL
);

INSERT INTO audit_head (id, last_seq, last_hash, pruned_upto, pruned_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0,
        '0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Only `prune-audit` deletes, and only rows up to the point it recorded.
    IF TG_OP = 'DELETE' AND OLD.seq <= (SELECT pruned_upto FROM audit_head WHERE id = 1) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END;
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

-- TRUNCATE bypasses row triggers.
CREATE TRIGGER audit_events_never_truncated BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
