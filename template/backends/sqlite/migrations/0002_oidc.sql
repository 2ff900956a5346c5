-- OpenID Connect: accounts linked to a provider identity, and logins in
-- flight between the redirect to the provider and its callback.

CREATE TABLE user_identities (
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (issuer, subject)
) STRICT;

CREATE TABLE oidc_logins (
    -- SHA-256 of the `state` parameter and of the browser-binding cookie.
    state_hash     BLOB    PRIMARY KEY NOT NULL,
    browser_hash   BLOB    NOT NULL,
    pkce_verifier  TEXT    NOT NULL,
    nonce          TEXT    NOT NULL,
    -- Unix seconds, so that expired rows can be deleted in plain SQL.
    expires_at     INTEGER NOT NULL
) STRICT;
