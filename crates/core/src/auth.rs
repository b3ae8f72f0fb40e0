//! Who may do what: roles, the wire types of users, organisations, invites and tokens, and the
//! pure rules (email and password checks, expiry parsing, login rate limiting) the server applies.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A user's role in their organisation. Ordered: each role can do everything the one before it
/// can.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads status, metrics and events of the organisation's apps.
    Viewer,
    /// Creates, deploys, scales and rolls back the organisation's apps and reads their logs
    /// (`dev` in the PaaS seed is the same role).
    #[serde(alias = "dev")]
    Developer,
    /// Everything in the organisation: users, invites, tokens, any app.
    Admin,
}

impl Role {
    /// `viewer`, `developer` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `required` may.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "developer" | "dev" => Ok(Role::Developer),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: expected viewer, developer or admin"
            )),
        }
    }
}

/// The organisation every app created before organisations existed, and every app the install's
/// admin token creates, belongs to.
pub const DEFAULT_ORG: &str = "default";

/// The fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The most bytes a password may have (argon2 hashes anything, but a megabyte password is abuse).
pub const MAX_PASSWORD_BYTES: usize = 256;

/// Checks a new password against the policy; the message never contains the password.
pub fn check_password(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "password is too short: at least {MIN_PASSWORD_CHARS} characters are required"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "password is too long: at most {MAX_PASSWORD_BYTES} bytes are allowed"
        ));
    }
    if password.trim().is_empty() {
        return Err("password must not be only whitespace".to_owned());
    }
    Ok(())
}

/// Normalises an email address (trimmed, lowercased) and checks its shape: one `@`, a non-empty
/// local part and a domain with a dot, no whitespace, at most 254 bytes.
pub fn normalize_email(email: &str) -> Result<String, String> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && match e.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if valid {
        Ok(e)
    } else {
        Err(format!(
            "{:?} is not an email address (expected name@example.com)",
            email.trim()
        ))
    }
}

/// Parses a lifetime such as `90s`, `30m`, `12h`, `30d` or `2w` into seconds (1 second to 5
/// years).
pub fn parse_lifetime(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let err =
        || format!("{s:?} is not a lifetime: use a number followed by s, m, h, d or w (e.g. 30d)");
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (num, unit) = s.split_at(unit_at);
    let n: i64 = num.parse().map_err(|_| err())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(err()),
    };
    let secs = n.checked_mul(mult).ok_or_else(err)?;
    if !(1..=5 * 365 * 86_400).contains(&secs) {
        return Err(format!(
            "{s:?} is out of range: a lifetime is 1s to 5 years"
        ));
    }
    Ok(secs)
}

/// A fixed-window rate limiter on failures, keyed by account or source address. Pure: the caller
/// passes the time (ms) in.
#[derive(Debug)]
pub struct LoginLimiter {
    limit: u32,
    window_ms: i64,
    entries: HashMap<String, (i64, u32)>,
}

impl LoginLimiter {
    /// At most `limit` attempts per key in any window of `window_ms`.
    pub fn new(limit: u32, window_ms: i64) -> LoginLimiter {
        LoginLimiter {
            limit,
            window_ms,
            entries: HashMap::new(),
        }
    }

    /// Whether `key` may try now; if not, how many ms until it may.
    pub fn check(&self, key: &str, now_ms: i64) -> Result<(), i64> {
        match self.entries.get(key) {
            Some(&(start, count)) if now_ms - start < self.window_ms && count >= self.limit => {
                Err(self.window_ms - (now_ms - start))
            }
            _ => Ok(()),
        }
    }

    /// Counts one attempt by `key` at `now_ms`.
    pub fn hit(&mut self, key: &str, now_ms: i64) {
        if self.entries.len() > 100_000 {
            let window = self.window_ms;
            self.entries
                .retain(|_, (start, _)| now_ms - *start < window);
        }
        let e = self.entries.entry(key.to_owned()).or_insert((now_ms, 0));
        if now_ms - e.0 >= self.window_ms {
            *e = (now_ms, 0);
        }
        e.1 = e.1.saturating_add(1);
    }

    /// Forgets `key` (after a successful login).
    pub fn clear(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

/// An organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Org {
    /// Generated at creation.
    pub id: Uuid,
    /// Unique name (a DNS label, like app names).
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/orgs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// The new organisation's name.
    pub name: String,
}

/// A user, as the API shows it (never with a password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Generated at creation.
    pub id: Uuid,
    /// Lowercased email, unique across the install.
    pub email: String,
    /// The organisation the user belongs to.
    pub org: String,
    /// The user's role in it.
    pub role: Role,
    /// A disabled user cannot log in, and their tokens stop working.
    pub disabled: bool,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/users` (bootstrap admin token or an org admin).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The user's email.
    pub email: String,
    /// The organisation (created if missing when the install's admin token asks); an org admin
    /// may only name their own.
    #[serde(default)]
    pub org: Option<String>,
    /// The role.
    pub role: Role,
    /// The initial password; without one the user must be invited to set it.
    #[serde(default)]
    pub password: Option<String>,
}

/// `POST /api/v1/invites`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    /// Who may use it.
    pub email: String,
    /// The role the invited user gets.
    pub role: Role,
    /// The organisation (only the install's admin token may name one; others invite to theirs).
    #[serde(default)]
    pub org: Option<String>,
    /// How long the code is valid (`7d` by default, see `parse_lifetime`).
    #[serde(default)]
    pub expires: Option<String>,
}

/// An invite, as listed (the code itself is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Invite {
    /// Generated at creation.
    pub id: Uuid,
    /// Who may use it.
    pub email: String,
    /// Into which organisation.
    pub org: String,
    /// With which role.
    pub role: Role,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was used, if it was.
    pub used_at: Option<DateTime<Utc>>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// The answer to `POST /api/v1/invites`: the one-time code, shown only here.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedInvite {
    /// The invite.
    pub invite: Invite,
    /// The one-time code to pass to `racer register --invite`.
    pub code: String,
}

/// `POST /auth/register`: sets a password using an invite.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The invite code (`invite_code` in the PaaS seed's body is the same field).
    #[serde(alias = "invite_code")]
    pub invite: String,
    /// The email the invite was made for.
    pub email: String,
    /// The new password.
    pub password: String,
}

/// `POST /auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The account's email.
    pub email: String,
    /// Its password.
    pub password: String,
}

/// The answer to a login: a signed, short-lived token for `Authorization: Bearer`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// The JWT.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Who it is for.
    pub user: User,
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A label, e.g. `ci`.
    pub name: String,
    /// Lifetime (`30d`); never expires when absent.
    #[serde(default)]
    pub expires: Option<String>,
}

/// An API token, as listed (the secret is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    /// Generated at creation; `racer tokens revoke` takes it.
    pub id: Uuid,
    /// The label.
    pub name: String,
    /// The owner.
    pub user_id: Uuid,
    /// The owner's email.
    pub email: String,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// The answer to `POST /api/v1/tokens`: the secret, shown only here.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The token's record.
    pub token: ApiToken,
    /// The secret to send as `Authorization: Bearer`.
    pub secret: String,
}

/// `GET /api/v1/whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// `admin-token` (the install's bootstrap token), `session` (a login) or `api-token`.
    pub via: String,
    /// The user, unless this is the install's admin token.
    pub user: Option<User>,
    /// The organisation requests act in (none for the admin token: it sees every one).
    pub org: Option<String>,
    /// The effective role.
    pub role: Role,
    /// Whether this is the install's superuser.
    pub superuser: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.allows(Role::Developer));
        assert!(Role::Developer.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Developer));
        assert!(!Role::Developer.allows(Role::Admin));
        assert_eq!("developer".parse::<Role>(), Ok(Role::Developer));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn passwords_and_emails() {
        assert!(check_password("short").is_err());
        assert!(check_password("          ").is_err());
        assert!(check_password(&"x".repeat(300)).is_err());
        assert!(check_password("correct horse battery").is_ok());
        let msg = check_password("hunter2").unwrap_err();
        assert!(!msg.contains("hunter2"));
        assert_eq!(
            normalize_email(" Alice@Example.COM ").as_deref(),
            Ok("alice@example.com")
        );
        for bad in [
            "",
            "alice",
            "@x.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("30d"), Ok(30 * 86_400));
        assert_eq!(parse_lifetime("90s"), Ok(90));
        assert_eq!(parse_lifetime("2w"), Ok(14 * 86_400));
        for bad in ["", "d", "30", "30y", "0s", "-1d", "99999999999999999999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limiter_blocks_after_limit_until_window_ends() {
        let mut l = LoginLimiter::new(3, 1000);
        for t in 0..3 {
            assert!(l.check("a", t).is_ok());
            l.hit("a", t);
        }
        assert_eq!(l.check("a", 10), Err(990));
        assert!(l.check("b", 10).is_ok());
        assert!(l.check("a", 1000).is_ok());
        l.hit("a", 1000);
        assert!(l.check("a", 1001).is_ok());
        l.clear("a");
        assert!(l.check("a", 1002).is_ok());
    }
}
