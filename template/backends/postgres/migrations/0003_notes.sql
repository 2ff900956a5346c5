-- Notes, the example resource: each belongs to one user.

CREATE TABLE notes (
    -- UUIDv7: ordered by creation, so pages can follow the primary key.
    id          UUID        PRIMARY KEY,
    owner_id    UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       TEXT        NOT NULL,
    body        TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX notes_by_owner ON notes (owner_id, id);
