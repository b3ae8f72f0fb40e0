-- Organisations own apps; users belong to one organisation with a role; invites and API tokens
-- are stored only as SHA-256 digests of the secret the user was shown once.
CREATE TABLE orgs (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
INSERT INTO orgs (id, name, created_at) VALUES ('00000000-0000-0000-0000-000000000000', 'default', 0);

CREATE TABLE users (
    id             TEXT PRIMARY KEY NOT NULL,
    email          TEXT NOT NULL UNIQUE,
    org            TEXT NOT NULL,
    role           TEXT NOT NULL,
    password_hash  TEXT,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);
CREATE INDEX users_org ON users (org, email);

CREATE TABLE invites (
    id          TEXT PRIMARY KEY NOT NULL,
    code_hash   TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL,
    org         TEXT NOT NULL,
    role        TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX invites_org ON invites (org, created_at);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    expires_at  BIGINT,
    revoked_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id, created_at);

ALTER TABLE apps ADD COLUMN org TEXT NOT NULL DEFAULT 'default';
CREATE INDEX apps_org ON apps (org, name);
ALTER TABLE events ADD COLUMN org TEXT;
CREATE INDEX events_org ON events (org, id);
