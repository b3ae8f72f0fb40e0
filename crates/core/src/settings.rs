//! The server's settings under the seeds' names: `DATABASE_URL`, `API_PORT`, `API_KEY`… mean
//! what racer's `RACER_*` variables mean. Written once here; `racer-server` and
//! `racerctl server start` both apply it before they read their options.

/// A seed's environment variable and the `RACER_*` variable it stands for. When both are set,
/// the `RACER_*` one wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedEnv {
    /// The seed's name, e.g. `DATABASE_URL`.
    pub seed: &'static str,
    /// racer's name, e.g. `RACER_DATABASE_URL`.
    pub racer: &'static str,
    /// Whether the value is a secret (never printed, never passed on argv).
    pub secret: bool,
}

const fn seed(seed: &'static str, racer: &'static str, secret: bool) -> SeedEnv {
    SeedEnv {
        seed,
        racer,
        secret,
    }
}

/// Every seed variable racer reads, in the order the README's table lists them.
pub const SEED_ENV: &[SeedEnv] = &[
    seed("DATABASE_URL", "RACER_DATABASE_URL", true),
    seed("API_PORT", "RACER_PORT", false),
    seed("BASE_DOMAIN", "RACER_DOMAIN", false),
    seed("DOCKER_HOST", "RACER_DOCKER_HOST", false),
    seed("JWT_SECRET_KEY", "RACER_JWT_SECRET", true),
    seed("API_KEY", "RACER_ADMIN_TOKEN", true),
    seed("RESOURCE_CPU_LIMIT", "RACER_CONTAINER_CPUS", false),
    seed("RESOURCE_MEMORY_LIMIT", "RACER_CONTAINER_MEMORY", false),
    seed("MAX_MEMORY_PERCENT", "RACER_MAX_MEMORY_PERCENT", false),
    seed("PRE_WARMED_QUEUE_SIZE", "RACER_POOL_SIZE", false),
    seed("AWS_ACCESS_KEY_ID", "RACER_S3_ACCESS_KEY", true),
    seed("AWS_SECRET_ACCESS_KEY", "RACER_S3_SECRET_KEY", true),
    seed("AWS_REGION", "RACER_S3_REGION", false),
];

/// The `RACER_*` variables to set from the seeds' ones: each seed variable that is set (and not
/// empty) when its `RACER_*` variable is not. `get` reads the environment (core reads none).
pub fn seed_fallbacks(get: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, String)> {
    SEED_ENV
        .iter()
        .filter(|s| get(s.racer).is_none_or(|v| v.is_empty()))
        .filter_map(|s| get(s.seed).filter(|v| !v.is_empty()).map(|v| (s.racer, v)))
        .collect()
}

/// The shortest admin token an operator may choose (`API_KEY`, `RACER_ADMIN_TOKEN`).
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Checks an operator-chosen admin token: long enough, and printable without spaces (it travels
/// in an `Authorization` header).
pub fn check_admin_token(token: &str) -> Result<(), String> {
    if token.chars().count() < MIN_ADMIN_TOKEN_LEN {
        return Err(format!(
            "is too short: at least {MIN_ADMIN_TOKEN_LEN} characters (e.g. `openssl rand -hex 32`)"
        ));
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err("may hold only printable ASCII characters, no spaces".into());
    }
    Ok(())
}

/// The shortest JWT secret an operator may choose (`JWT_SECRET_KEY`, `RACER_JWT_SECRET`).
pub const MIN_JWT_SECRET_LEN: usize = 32;

/// Checks an operator-chosen JWT secret: HS256 wants at least 256 bits of key.
pub fn check_jwt_secret(secret: &str) -> Result<(), String> {
    if secret.len() < MIN_JWT_SECRET_LEN {
        return Err(format!(
            "is too short: at least {MIN_JWT_SECRET_LEN} bytes (e.g. `openssl rand -hex 32`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn seed_names_fill_in_only_what_racer_names_leave_unset() {
        let e = env(&[
            ("DATABASE_URL", "postgres://seed"),
            ("API_PORT", "9001"),
            ("RACER_PORT", "9002"),
            ("BASE_DOMAIN", ""),
            ("API_KEY", "k"),
            ("RACER_ADMIN_TOKEN", ""),
        ]);
        let got = seed_fallbacks(|k| e.get(k).cloned());
        assert_eq!(
            got,
            vec![
                ("RACER_DATABASE_URL", "postgres://seed".to_owned()),
                ("RACER_ADMIN_TOKEN", "k".to_owned()),
            ]
        );
    }

    #[test]
    fn every_seed_name_maps_to_a_distinct_racer_name() {
        let mut racer: Vec<_> = SEED_ENV.iter().map(|s| s.racer).collect();
        racer.sort_unstable();
        racer.dedup();
        assert_eq!(racer.len(), SEED_ENV.len());
        assert!(SEED_ENV.iter().all(|s| s.racer.starts_with("RACER_")));
    }

    #[test]
    fn chosen_secrets_must_be_long_enough() {
        assert!(check_admin_token("short").is_err());
        assert!(check_admin_token("has a space in it, long").is_err());
        assert!(check_admin_token("your-secure-api-key").is_ok());
        assert!(check_jwt_secret("0123456789").is_err());
        assert!(check_jwt_secret(&"x".repeat(32)).is_ok());
    }
}
