-- Clusters reached over TCP with mutual TLS (issue 14): the paths of the CA certificate, the
-- client certificate and its private key, all three or none (NULL: no TLS). Paths, not
-- contents: the files are read when an engine is connected to, so they must be readable by the
-- server and by every worker (`racerctl worker`) at the same path.
ALTER TABLE clusters ADD COLUMN tls_ca TEXT;
ALTER TABLE clusters ADD COLUMN tls_cert TEXT;
ALTER TABLE clusters ADD COLUMN tls_key TEXT;
