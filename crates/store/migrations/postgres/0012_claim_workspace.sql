-- Workspaces of claims (issue 15): an S3 prefix restored into the container on claim and synced
-- both ways while it is claimed. `sync_state` is what both sides held at the last sync (per
-- path: the container's MD5 and the bucket's ETag), so a sync interrupted by a restart resumes.
ALTER TABLE pools ADD COLUMN workspace_path TEXT NOT NULL DEFAULT '/workspace';
ALTER TABLE claims ADD COLUMN workspace TEXT;
ALTER TABLE claims ADD COLUMN sync_state TEXT NOT NULL DEFAULT '{}';
ALTER TABLE claims ADD COLUMN sync_error TEXT;
ALTER TABLE claims ADD COLUMN synced_at BIGINT;
ALTER TABLE claims ADD COLUMN restored_bytes BIGINT;
ALTER TABLE claims ADD COLUMN restore_ms BIGINT;
