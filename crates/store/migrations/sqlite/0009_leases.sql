-- Leases of the control loops (issue 14): several servers and workers on one database; the one
-- holding a loop's lease acts, the others follow. `epoch` grows each time the lease changes
-- hands, so a holder can tell it lost it. A lease not renewed by `expires_at` (ms since the
-- epoch) may be taken by anyone.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY NOT NULL,
    holder      TEXT NOT NULL,
    epoch       BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
