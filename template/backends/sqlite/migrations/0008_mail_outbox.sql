-- Messages waiting for the mail server (src/mail): a row per message, so
-- that none is lost when the process stops or crashes. The message is
-- sealed (src/encryption.rs): it carries one-time links.

CREATE TABLE mail_outbox (
    -- UUIDv7: sorts by creation, so messages leave in the order they came.
    id          BLOB    PRIMARY KEY NOT NULL,
    -- What kind of message (`verify_email`, …), for logs; never the content.
    kind        TEXT    NOT NULL,
    -- `enc1:…`: the recipient and the formatted message.
    message     TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    -- Unix milliseconds before which no worker takes it: the next retry, or
    -- the end of a worker's lease on it while it is being delivered.
    not_before  INTEGER NOT NULL
) STRICT;

CREATE INDEX mail_outbox_due ON mail_outbox (not_before, id);
