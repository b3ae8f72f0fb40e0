-- Which server builds a deployment (issue 14): a build whose builder stopped touching it
-- (updated_at) goes back to the queue, whichever server notices; a server's own interrupted
-- builds go back at its next start. NULL for builds claimed before this column existed.
ALTER TABLE deployments ADD COLUMN builder TEXT;
