//! Claims (warm pools, issue 15): a claimed container's named ports, each reachable at
//! `/<port>/<claim>/...` behind the claim's access token (see `access` for how a request
//! presents it): what a claim is, its token's digest, which ids and port names are valid, and
//! when a claim was last used. The claim table itself is in `table`, next to the route table
//! ([`Routes::set_claim`](crate::Routes::set_claim)); it holds SHA-256 digests of the tokens,
//! never the tokens.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A claimed container as the proxy routes it ([`Routes::set_claim`](crate::Routes::set_claim)):
/// `/<name>/<claim>/...` goes to the port's address with `/<name>/<claim>` stripped (sent as
/// `X-Forwarded-Prefix`), WebSockets included, for a client that presents the claim's token:
///
/// - as `X-Racer-Claim-Token: <token>`, `Authorization: Bearer <token>`, or the cookie
///   `racer_claim_<claim>` (or `racer_claim`);
/// - or as `?token=<token>`: the answer is then `303 See Other` to the same URL without the
///   parameter, with a cookie `racer_claim_<claim>` (`HttpOnly`, `SameSite=Lax`) for the path of
///   each of the claim's ports, so that the token leaves the URL at once. With a token presented
///   another way, a `token` parameter that is not the claim's is left for the app.
///
/// The token is taken off the request before it goes to the container (an `Authorization`
/// header that did not carry it stays). An unknown claim answers 404, a known one 401 without
/// its token and 404 for a port it does not have.
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimRoute {
    /// The claim's id, the second path segment: see [`is_claim_id`].
    pub claim: String,
    /// SHA-256 of the claim's access token ([`token_digest`]).
    pub token_sha256: [u8; 32],
    /// The container's named ports, `(name, address)`: see [`is_port_name`].
    pub ports: Vec<(String, SocketAddr)>,
}

impl std::fmt::Debug for ClaimRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The digest stays out of logs too.
        f.debug_struct("ClaimRoute")
            .field("claim", &self.claim)
            .field("token_sha256", &"<redacted>")
            .field("ports", &self.ports)
            .finish()
    }
}

/// Why [`Routes::set_claim`](crate::Routes::set_claim) refused a claim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The claim id is not one [`is_claim_id`] accepts.
    #[error("claim id {0:?}: use 8 to 64 ASCII letters, digits, '-' or '_'")]
    BadClaimId(String),
    /// A port name is not one [`is_port_name`] accepts.
    #[error(
        "port name {0:?}: use 1 to 63 ASCII letters, digits, '.', '-' or '_', starting with a \
         letter or digit (\"apps\" is taken by app routes)"
    )]
    BadPortName(String),
    /// Two ports of the claim have the same name.
    #[error("port name {0:?} is given twice")]
    DuplicatePort(String),
}

/// The SHA-256 digest of an access token, as [`ClaimRoute::token_sha256`] holds it.
pub fn token_digest(token: &str) -> [u8; 32] {
    digest_bytes(token.as_bytes())
}

pub(crate) fn digest_bytes(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Whether `s` is a claim id: 8 to 64 ASCII letters, digits, `-` or `_` (a UUID, with or
/// without hyphens, is one). Only a second path segment that is one can name a claim.
pub fn is_claim_id(s: &str) -> bool {
    (8..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `s` can name a claim's port: 1 to 63 ASCII letters, digits, `.`, `-` or `_`,
/// starting with a letter or digit, and not `apps` (the first segment of app path routes).
/// Case matters: `/Code/...` is not `/code/...`.
pub fn is_port_name(s: &str) -> bool {
    s.len() <= 63
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && s != "apps"
}

/// When a claim was last used, and how many of its requests and upgraded connections are open.
#[derive(Debug)]
pub(crate) struct Activity {
    base: Instant,
    /// Nanoseconds from `base` to the last request's start or end (u64: 584 years).
    last_seen_ns: AtomicU64,
    open: AtomicUsize,
}

impl Activity {
    /// Never used yet: last seen now.
    pub(crate) fn new() -> Activity {
        Activity {
            base: Instant::now(),
            last_seen_ns: AtomicU64::new(0),
            open: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ns = self.base.elapsed().as_nanos() as u64;
        self.last_seen_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// Now while a request or upgraded connection is open, else when the last one started or
    /// ended.
    pub(crate) fn last_seen(&self) -> Instant {
        if self.open.load(Ordering::Relaxed) > 0 {
            return Instant::now();
        }
        self.base + Duration::from_nanos(self.last_seen_ns.load(Ordering::Relaxed))
    }
}

/// A request (or upgraded connection) of a claim in progress: the claim counts as in use while
/// it lives, and was last seen when it ends.
#[derive(Debug)]
pub(crate) struct InUse(Arc<Activity>);

impl InUse {
    pub(crate) fn new(activity: &Arc<Activity>) -> InUse {
        activity.touch();
        activity.open.fetch_add(1, Ordering::Relaxed);
        InUse(activity.clone())
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.touch();
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_digest_is_sha256() {
        let hex: String = token_digest("abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn ids_and_port_names() {
        assert!(is_claim_id("4f9c2a1b"));
        assert!(is_claim_id("0b5c0a43-8f6e-4c53-9d0b-1f2e3d4c5b6a"));
        assert!(!is_claim_id("short"));
        assert!(!is_claim_id("index.html"));
        assert!(!is_claim_id(&"a".repeat(65)));
        assert!(!is_claim_id("4f9c2a1b%20"));
        assert!(is_port_name("code") && is_port_name("vnc-1") && is_port_name("a.b"));
        for bad in ["", ".", "..", "-x", "apps", "a/b", "é", &"a".repeat(64)] {
            assert!(!is_port_name(bad), "{bad:?}");
        }
    }
}
