CREATE TABLE apps (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE events (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    app_id    TEXT,
    app_name  TEXT,
    message   TEXT NOT NULL
);
CREATE INDEX events_app ON events (app_id, id);
CREATE INDEX events_kind ON events (kind, id);
