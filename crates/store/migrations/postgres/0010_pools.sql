-- Warm pools (issue 15): pre-started containers of one image, kept `size` ready; a claim takes
-- one atomically (a member goes from `ready` to `claimed` in the claim's own transaction).
CREATE TABLE pools (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL UNIQUE,
    org             TEXT NOT NULL,
    image           TEXT NOT NULL,
    size            BIGINT NOT NULL,
    ports           TEXT NOT NULL DEFAULT '[]',
    cpu_milli       BIGINT NOT NULL,
    memory_mb       BIGINT NOT NULL,
    claim_ttl_s     BIGINT NOT NULL,
    idle_timeout_s  BIGINT,
    health_path     TEXT,
    env             TEXT NOT NULL DEFAULT '{}',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- A pool's containers: `starting` (created, not yet answering), `ready` (answering, unclaimed),
-- `claimed`. A member's row goes when its container goes.
CREATE TABLE pool_members (
    id            TEXT PRIMARY KEY NOT NULL,
    pool_id       TEXT NOT NULL,
    container_id  TEXT,
    ip            TEXT,
    state         TEXT NOT NULL,
    claim_id      TEXT,
    created_at    BIGINT NOT NULL,
    ready_at      BIGINT
);
CREATE INDEX pool_members_ready ON pool_members (pool_id, state, ready_at);
-- Claims: who took which member, its access token's digest (never the token), until when.
-- `active`, then `released`, `expired`, `idle` or `failed`.
CREATE TABLE claims (
    id            TEXT PRIMARY KEY NOT NULL,
    pool_id       TEXT NOT NULL,
    pool_name     TEXT NOT NULL,
    member_id     TEXT NOT NULL,
    container_id  TEXT,
    ip            TEXT,
    org           TEXT NOT NULL,
    actor         TEXT NOT NULL,
    token_sha256  TEXT NOT NULL,
    warm          INTEGER NOT NULL,
    env           TEXT NOT NULL DEFAULT '{}',
    state         TEXT NOT NULL,
    error         TEXT,
    claim_ms      BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    ended_at      BIGINT
);
CREATE INDEX claims_state ON claims (state, expires_at);
