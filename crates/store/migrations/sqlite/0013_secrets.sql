-- App secrets (issue 19): sealed (encrypted and authenticated) with the install's secret key,
-- which is not in the database; `digest` is a keyed hash to tell values apart without showing
-- them.
CREATE TABLE secrets (
    app_id      TEXT NOT NULL,
    name        TEXT NOT NULL,
    sealed      TEXT NOT NULL,
    digest      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, name)
);
