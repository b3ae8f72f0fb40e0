ALTER TABLE apps ADD COLUMN instances INTEGER NOT NULL DEFAULT 1;
ALTER TABLE apps ADD COLUMN release BIGINT;
ALTER TABLE apps ADD COLUMN source TEXT;

CREATE TABLE deployments (
    id                  TEXT PRIMARY KEY NOT NULL,
    app_id              TEXT NOT NULL,
    app_name            TEXT NOT NULL,
    status              TEXT NOT NULL,
    release             BIGINT,
    source              TEXT NOT NULL,
    config              TEXT NOT NULL,
    image_from_release  BIGINT,
    error               TEXT,
    log                 TEXT NOT NULL DEFAULT '',
    created_by          TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX deployments_app ON deployments (app_id, created_at);
CREATE INDEX deployments_status ON deployments (status, created_at);

CREATE TABLE releases (
    app_id         TEXT NOT NULL,
    number         BIGINT NOT NULL,
    image          TEXT NOT NULL,
    image_id       TEXT NOT NULL,
    source         TEXT NOT NULL,
    commit_sha     TEXT,
    config         TEXT NOT NULL,
    deployment_id  TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (app_id, number)
);
