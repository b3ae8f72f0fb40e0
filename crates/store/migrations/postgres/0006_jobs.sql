-- The durable work queue (issue 14): builds, placements and re-queues are jobs. A job is claimed
-- with a lease (owner, expiry) that its worker renews; a job whose lease expired is claimable
-- again; failures retry after a delay until max_attempts, then the job is dead with its last
-- error. Times are milliseconds since the Unix epoch.
CREATE TABLE jobs (
    id            TEXT PRIMARY KEY NOT NULL,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    state         TEXT NOT NULL,
    priority      INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    visible_at    BIGINT NOT NULL,
    lease_owner   TEXT,
    lease_until   BIGINT,
    last_error    TEXT,
    dedupe_key    TEXT UNIQUE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
-- A claim reads one of these two in index order and stops at the first row.
CREATE INDEX jobs_pending ON jobs (state, priority DESC, visible_at, created_at);
CREATE INDEX jobs_leases ON jobs (state, lease_until);
CREATE INDEX jobs_kind_state ON jobs (kind, state);
