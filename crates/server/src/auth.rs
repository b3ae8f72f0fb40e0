//! Who is asking, and may they? Three kinds of bearer credential:
//!
//! - the install's admin token (`racer_admin_…`, created on first start, 0600 in the data
//!   directory): a superuser across organisations;
//! - a session JWT from `POST /auth/login` (HS256, signed with a per-install secret kept 0600 in
//!   the data directory, short-lived);
//! - an API token (`racer_tok_…`), stored only as its SHA-256 digest, revocable, optionally
//!   expiring.
//!
//! Every request is authenticated once ([`authenticate`]), then each route group checks the role
//! it needs ([`need`]); handlers scope what they read and write to the caller's organisation and
//! answer 404 for another organisation's resources, so names never leak.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use racer_core::auth::{LoginLimiter, Role, User};
use racer_core::ErrorKind;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{ApiError, Error};

/// The JWT signing secret's file name in the data directory (mode 0600).
pub const JWT_SECRET_FILE: &str = "jwt.secret";
/// The admin token's file name in the data directory (mode 0600).
pub const TOKEN_FILE: &str = "admin.token";
/// API tokens start with this, so a leaked one is recognisable (and greppable by scanners).
pub const API_TOKEN_PREFIX: &str = "racer_tok_";
/// Invite codes start with this.
pub(crate) const INVITE_PREFIX: &str = "racer_inv_";
const ADMIN_PREFIX: &str = "racer_admin_";

/// argon2id cost: 64 MiB, 2 passes, 1 lane — about 100-150 ms per hash on this project's 2-core
/// machines (docs/BENCHMARKS.md, "Auth"); within OWASP's recommendations.
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_PASSES: u32 = 2;

/// What an unknown email's login is verified against, so that it takes as long as a known one's:
/// the argon2id hash (same parameters as [`argon2`]) of a random password nobody kept. A constant,
/// so the server does not spend 64 MiB and ~100 ms hashing one at every start.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=65536,t=2,p=1$4BAxbbbXy42IuK4t+dzwJw$tPtjP5obl3wpX+2dvxEjXc7VF2Uqgfs7MSCkb852/lU";
/// At most this many password hashes run at once (each holds 64 MiB and a core).
const CONCURRENT_HASHES: usize = 2;
/// Cached token and user records are re-read after this long, so a revocation or a disabled
/// user made by *another* server on a shared PostgreSQL applies within it; this server's own
/// changes apply at once (the cache entry is dropped in the same request).
const CACHE_TTL: Duration = Duration::from_secs(2);
/// Failed logins allowed per account per window, and attempts per source address per window.
const LOGIN_FAILURES_PER_ACCOUNT: u32 = 5;
const ACCOUNT_WINDOW_MS: i64 = 15 * 60 * 1000;
const LOGIN_ATTEMPTS_PER_ADDRESS: u32 = 30;
const ADDRESS_WINDOW_MS: i64 = 60 * 1000;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The install's admin token.
    AdminToken,
    /// A login session (JWT).
    Session,
    /// An API token.
    ApiToken {
        /// Its id.
        id: Uuid,
        /// Its label.
        name: String,
    },
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// How the caller proved who they are.
    pub via: Via,
    /// The user; `None` for the install's admin token.
    pub user: Option<User>,
    /// The effective role.
    pub role: Role,
}

impl Principal {
    fn superuser() -> Principal {
        Principal {
            via: Via::AdminToken,
            user: None,
            role: Role::Admin,
        }
    }

    /// The install's admin token: every organisation, every endpoint.
    pub fn is_superuser(&self) -> bool {
        self.via == Via::AdminToken
    }

    /// The organisation this caller is held to; `None` means every organisation.
    pub(crate) fn org(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.org.as_str())
    }

    /// Whether the caller may see a resource of `org`.
    pub(crate) fn sees(&self, org: &str) -> bool {
        self.org().is_none_or(|mine| mine == org)
    }

    /// How events name this caller: `admin`, `alice@example.com`, or
    /// `alice@example.com (token ci)`. Never a secret.
    pub(crate) fn actor(&self) -> String {
        match (&self.via, &self.user) {
            (Via::ApiToken { name, .. }, Some(u)) => format!("{} (token {name})", u.email),
            (_, Some(u)) => u.email.clone(),
            (_, None) => "admin".to_owned(),
        }
    }

    /// `admin-token`, `session` or `api-token`.
    pub(crate) fn via_str(&self) -> &'static str {
        match self.via {
            Via::AdminToken => "admin-token",
            Via::Session => "session",
            Via::ApiToken { .. } => "api-token",
        }
    }
}

/// Who made a request, as events record it.
#[derive(Debug, Clone)]
pub(crate) struct Actor(pub(crate) String);

/// The claims of a session token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user's id.
    sub: String,
    /// The user's organisation when the token was issued.
    org: String,
    /// Issued at / expires at (seconds since the epoch).
    iat: i64,
    exp: i64,
    /// The issuing install.
    iss: String,
}

#[derive(Clone)]
struct CachedToken {
    id: Uuid,
    name: String,
    user: Uuid,
    expires_at_ms: Option<i64>,
    revoked: bool,
    read_at: Instant,
}

/// Authentication state shared by every request.
pub struct Auth {
    admin_hash: [u8; 32],
    encoding: jsonwebtoken::EncodingKey,
    decoding: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
    issuer: String,
    session_ttl: Duration,
    argon: Argon2<'static>,
    hashing: tokio::sync::Semaphore,
    /// A hash of a random password, verified when an email is unknown so that a login for an
    /// unknown account costs the same time as one for a known account.
    tokens: RwLock<HashMap<[u8; 32], CachedToken>>,
    users: RwLock<HashMap<Uuid, (User, Instant)>>,
    per_account: Mutex<LoginLimiter>,
    per_address: Mutex<LoginLimiter>,
}

pub(crate) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The hex SHA-256 of a secret, as stored.
pub fn digest_hex(secret: &str) -> String {
    digest(secret).iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh random secret with `prefix`: 32 random bytes, base64url.
pub fn random_secret(prefix: &str) -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(raw))
}

/// Reads a 0600 secret file in the data directory, creating it on first start. Returns the
/// secret and whether it was created now.
fn load_or_create_secret(dir: &Path, file: &str, prefix: &str) -> Result<(String, bool), Error> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok((s.trim().to_owned(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(Error::Token { path, source }),
    }
    let secret = random_secret(prefix);
    crate::write_private(&path, format!("{secret}\n").as_bytes())
        .map_err(|source| Error::Token { path, source })?;
    Ok((secret, true))
}

/// Reads the admin token, creating it on first start. Returns the token and whether it was
/// created now.
pub(crate) fn load_or_create_admin_token(dir: &Path) -> Result<(String, bool), Error> {
    load_or_create_secret(dir, TOKEN_FILE, ADMIN_PREFIX)
}

/// Removes a generated `admin.token` left from before the operator chose one (`API_KEY`): it
/// no longer grants anything, and the CLIs would send it.
pub(crate) fn forget_admin_token_file(dir: &Path) {
    let path = dir.join(TOKEN_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!(
            path = %path.display(),
            "removed the generated admin token: the operator chose one (API_KEY / RACER_ADMIN_TOKEN)"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove the generated admin token")
        }
    }
}

/// Constant-time comparison of two digests.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The argon2id hasher with racer's cost parameters.
pub fn argon2() -> Argon2<'static> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password (argon2id, random salt) into a PHC string. CPU- and memory-heavy: call
/// from a blocking thread.
pub fn hash_password(argon: &Argon2<'_>, password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a PHC string (with the parameters recorded in it).
pub fn verify_password(argon: &Argon2<'_>, password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| argon.verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

pub(crate) fn unauthenticated(msg: &str) -> ApiError {
    ApiError::new(ErrorKind::Unauthenticated, msg)
}

/// Milliseconds to wait, as whole seconds for `Retry-After` (at least 1).
fn wait_secs(ms: i64) -> u64 {
    u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Auth {
    /// `jwt_secret` if the operator chose one, else the one in `dir` (created on first start);
    /// `admin_token` is the install's admin token, `install` its id (the JWT issuer).
    pub fn new(
        dir: &Path,
        admin_token: &str,
        jwt_secret: Option<&str>,
        install: &str,
        session_ttl: Duration,
    ) -> Result<Auth, Error> {
        let secret = match jwt_secret {
            Some(s) => s.to_owned(),
            None => load_or_create_secret(dir, JWT_SECRET_FILE, "")?.0,
        };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&[install]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 0;
        let argon = argon2();
        Ok(Auth {
            admin_hash: digest(admin_token),
            encoding: jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
            decoding: jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
            validation,
            issuer: install.to_owned(),
            session_ttl,
            argon,
            hashing: tokio::sync::Semaphore::new(CONCURRENT_HASHES),
            tokens: RwLock::default(),
            users: RwLock::default(),
            per_account: Mutex::new(LoginLimiter::new(
                LOGIN_FAILURES_PER_ACCOUNT,
                ACCOUNT_WINDOW_MS,
            )),
            per_address: Mutex::new(LoginLimiter::new(
                LOGIN_ATTEMPTS_PER_ADDRESS,
                ADDRESS_WINDOW_MS,
            )),
        })
    }

    /// Signs a session token for `user`; returns it and its expiry.
    pub fn issue(&self, user: &User) -> Result<(String, chrono::DateTime<chrono::Utc>), ApiError> {
        let now = chrono::Utc::now();
        let exp = now
            + chrono::Duration::from_std(self.session_ttl).unwrap_or(chrono::Duration::hours(1));
        let claims = Claims {
            sub: user.id.to_string(),
            org: user.org.clone(),
            iat: now.timestamp(),
            exp: exp.timestamp(),
            iss: self.issuer.clone(),
        };
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &self.encoding,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "cannot sign a session token");
            ApiError::new(ErrorKind::Internal, "cannot sign a session token")
        })?;
        Ok((token, exp))
    }

    /// Hashes a new password off the async threads, at most [`CONCURRENT_HASHES`] at once.
    pub(crate) async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ApiError::new(ErrorKind::Unavailable, "server is stopping"))?;
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || hash_password(&argon, &password))
            .await
            .map_err(|_| ApiError::new(ErrorKind::Internal, "password hashing failed"))?
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                ApiError::new(ErrorKind::Internal, "password hashing failed")
            })
    }

    /// Verifies a password against `phc` (or, when `None`, against a dummy hash so the time
    /// taken does not reveal that the account does not exist).
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, ApiError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| ApiError::new(ErrorKind::Unavailable, "server is stopping"))?;
        let argon = self.argon.clone();
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let ok = tokio::task::spawn_blocking(move || verify_password(&argon, &password, &phc))
            .await
            .map_err(|_| ApiError::new(ErrorKind::Internal, "password check failed"))?;
        Ok(ok && known)
    }

    /// Whether a login for `email` from `addr` may be tried now; counts the attempt against the
    /// address. Returns the seconds to wait when not.
    pub(crate) fn login_allowed(&self, email: &str, addr: IpAddr) -> Result<(), u64> {
        if let Ok(l) = self.per_account.lock() {
            l.check(email, now_ms()).map_err(wait_secs)?;
        }
        self.address_allowed(addr)
    }

    /// Whether `addr` may try a login or registration now (counting this attempt); if not, the
    /// seconds to wait.
    pub(crate) fn address_allowed(&self, addr: IpAddr) -> Result<(), u64> {
        let now = now_ms();
        let key = addr.to_string();
        if let Ok(mut l) = self.per_address.lock() {
            l.check(&key, now).map_err(wait_secs)?;
            l.hit(&key, now);
        }
        Ok(())
    }

    /// Records a failed login for `email`.
    pub(crate) fn login_failed(&self, email: &str) {
        if let Ok(mut l) = self.per_account.lock() {
            l.hit(email, now_ms());
        }
    }

    /// Forgets the failures of `email` after a successful login.
    pub(crate) fn login_succeeded(&self, email: &str) {
        if let Ok(mut l) = self.per_account.lock() {
            l.clear(email);
        }
    }

    /// Drops a token from the cache (after a revocation on this server).
    pub fn forget_token(&self, id: Uuid) {
        if let Ok(mut t) = self.tokens.write() {
            t.retain(|_, c| c.id != id);
        }
    }

    /// Drops a user from the cache (after a change to them on this server).
    pub(crate) fn forget_user(&self, id: Uuid) {
        if let Ok(mut u) = self.users.write() {
            u.remove(&id);
        }
    }

    async fn user(&self, store: &racer_store::Store, id: Uuid) -> Result<User, ApiError> {
        if let Some((u, at)) = self.users.read().ok().and_then(|m| m.get(&id).cloned()) {
            if at.elapsed() < CACHE_TTL {
                return Ok(u);
            }
        }
        let user = match store.users().get(id).await {
            Ok(u) => u,
            Err(racer_store::Error::NotFound { .. }) => {
                return Err(unauthenticated("invalid or revoked token"))
            }
            Err(e) => return Err(e.into()),
        };
        if let Ok(mut m) = self.users.write() {
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(id, (user.clone(), Instant::now()));
        }
        Ok(user)
    }

    async fn api_token(
        &self,
        store: &racer_store::Store,
        presented: &str,
    ) -> Result<Principal, ApiError> {
        let key = digest(presented);
        let cached = self
            .tokens
            .read()
            .ok()
            .and_then(|m| m.get(&key).cloned())
            .filter(|c| c.read_at.elapsed() < CACHE_TTL);
        let token = match cached {
            Some(c) => c,
            None => {
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                let Some((t, user)) = store.tokens().by_hash(&hex).await? else {
                    return Err(unauthenticated("invalid or revoked token"));
                };
                let c = CachedToken {
                    id: t.id,
                    name: t.name,
                    user: user.id,
                    expires_at_ms: t.expires_at.map(|e| e.timestamp_millis()),
                    revoked: t.revoked_at.is_some(),
                    read_at: Instant::now(),
                };
                if let Ok(mut m) = self.tokens.write() {
                    if m.len() > 100_000 {
                        m.clear();
                    }
                    m.insert(key, c.clone());
                }
                c
            }
        };
        if token.revoked {
            return Err(unauthenticated("invalid or revoked token"));
        }
        if token.expires_at_ms.is_some_and(|e| e <= now_ms()) {
            return Err(unauthenticated(
                "API token expired: create a new one with `racer tokens create`",
            ));
        }
        let user = self.user(store, token.user).await?;
        if user.disabled {
            return Err(unauthenticated("invalid or revoked token"));
        }
        Ok(Principal {
            via: Via::ApiToken {
                id: token.id,
                name: token.name,
            },
            role: user.role,
            user: Some(user),
        })
    }

    async fn session(
        &self,
        store: &racer_store::Store,
        presented: &str,
    ) -> Result<Principal, ApiError> {
        let (id, org) = self.decode_session(presented)?;
        let user = self.user(store, id).await?;
        // A disabled user, or one moved to another organisation, loses their sessions at once;
        // the role is always the current one.
        if user.disabled || user.org != org {
            return Err(unauthenticated("invalid or revoked token"));
        }
        Ok(Principal {
            via: Via::Session,
            role: user.role,
            user: Some(user),
        })
    }

    /// The user id and organisation of a session token (a JWT), checked: signature, issuer,
    /// expiry. Reads nothing from the store; [`Auth::authenticate`] then checks the user.
    /// Public for the fuzz target (`fuzz/fuzz_targets/token.rs`).
    #[doc(hidden)]
    pub fn decode_session(&self, presented: &str) -> Result<(Uuid, String), ApiError> {
        let data = jsonwebtoken::decode::<Claims>(presented, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    unauthenticated("session expired: run `racer login` again")
                }
                _ => unauthenticated("invalid or revoked token"),
            })?;
        let id = Uuid::parse_str(&data.claims.sub)
            .map_err(|_| unauthenticated("invalid or revoked token"))?;
        Ok((id, data.claims.org))
    }

    /// Who presented `bearer`.
    pub async fn authenticate(
        &self,
        store: &racer_store::Store,
        bearer: &str,
    ) -> Result<Principal, ApiError> {
        // The admin token: the generated one (with its prefix) or the operator's own
        // (`API_KEY`), which may look like anything; compared by digest in constant time.
        if same(&digest(bearer), &self.admin_hash) {
            return Ok(Principal::superuser());
        }
        if bearer.starts_with(ADMIN_PREFIX) {
            return Err(unauthenticated("invalid or revoked token"));
        }
        if bearer.starts_with(API_TOKEN_PREFIX) {
            return self.api_token(store, bearer).await;
        }
        if bearer.split('.').count() == 3 {
            return self.session(store, bearer).await;
        }
        Err(unauthenticated("invalid or revoked token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify_with_argon2id() {
        // Cheap parameters: this checks the PHC plumbing, not the cost.
        let argon = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).unwrap(),
        );
        let phc = hash_password(&argon, "correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(!phc.contains("correct horse"));
        assert!(verify_password(&argon, "correct horse battery", &phc));
        assert!(!verify_password(&argon, "correct horse batterY", &phc));
        assert!(!verify_password(&argon, "x", "not a phc string"));
        // The parameters recorded in the hash are the ones used to verify it.
        assert!(verify_password(&argon2(), "correct horse battery", &phc));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        // Same algorithm and parameters as every stored hash, so an unknown email's login
        // takes as long as a known one's; and no password is known to match it.
        let real = hash_password(&argon2(), "some password").unwrap();
        let params = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(DUMMY_HASH), params(&real));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password(&argon2(), "", DUMMY_HASH));
    }

    #[test]
    fn secrets_are_prefixed_and_random() {
        let a = random_secret(API_TOKEN_PREFIX);
        let b = random_secret(API_TOKEN_PREFIX);
        assert!(a.starts_with(API_TOKEN_PREFIX));
        assert_ne!(a, b);
        assert_eq!(a.len(), API_TOKEN_PREFIX.len() + 43);
        assert_eq!(digest_hex("abc").len(), 64);
    }
}
