-- The clusters racer places work on (issue 14). `local` is the server's own engine
-- (DOCKER_HOST, else the default socket) and always exists. Capacity columns are NULL when the
-- engine's own figures (NCPU, MemTotal) are used.
CREATE TABLE clusters (
    name         TEXT PRIMARY KEY NOT NULL,
    docker_host  TEXT,
    swarm        INTEGER NOT NULL DEFAULT 0,
    cpu_milli    BIGINT,
    memory_mb    BIGINT,
    gpu          BIGINT NOT NULL DEFAULT 0,
    labels       TEXT NOT NULL DEFAULT '{}',
    drained      INTEGER NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
INSERT INTO clusters (name, docker_host, created_at, updated_at) VALUES ('local', NULL, 0, 0);
