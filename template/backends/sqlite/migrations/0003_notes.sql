-- Notes, the example resource: each belongs to one user.

CREATE TABLE notes (
    -- UUIDv7: ordered by creation, so pages can follow the primary key.
    id          BLOB PRIMARY KEY NOT NULL,
    owner_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

CREATE INDEX notes_by_owner ON notes (owner_id, id);
