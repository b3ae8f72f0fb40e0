//! Bearer credentials and the other small token-like inputs of the API. The first byte picks:
//!
//! - 0: the rest is a bearer token as presented: `Auth::decode_session` (the session JWT's
//!   checks: signature, algorithm, issuer, expiry, claims, the user id). Without the server's
//!   secret nothing may be accepted.
//! - 1: the rest is a JWT header and payload (JSON, split at the first NUL byte), encoded and
//!   signed with the server's secret (HS256), so the claims' decoding and checks are reached; a
//!   token is accepted only with `"alg":"HS256"`, this install as issuer and an expiry ahead.
//! - 2: the rest is what users type where racer expects a lifetime, an email address or a
//!   password (`racer tokens create --expires`, `racer register`): `parse_lifetime`,
//!   `normalize_email`, `check_password`.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use racer_server::auth::Auth;

const SECRET: &str = "fuzz-jwt-secret";
const INSTALL: &str = "fuzz-install";

fn auth() -> &'static Auth {
    static AUTH: OnceLock<Auth> = OnceLock::new();
    AUTH.get_or_init(|| {
        Auth::new(
            &std::env::temp_dir(),
            "racer_admin_fuzz",
            Some(SECRET),
            INSTALL,
            Duration::from_secs(3600),
        )
        .expect("an Auth")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return;
            };
            let r = auth().decode_session(token);
            assert!(
                r.is_err(),
                "a token not signed with the secret was accepted: {token:?}"
            );
        }
        1 => {
            let (header, payload) = match rest.iter().position(|&b| b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], rest),
            };
            let message = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(payload)
            );
            let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
            let signature = jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &key,
                jsonwebtoken::Algorithm::HS256,
            )
            .expect("sign");
            let token = format!("{message}.{signature}");
            if auth().decode_session(&token).is_ok() {
                let h: serde_json::Value =
                    serde_json::from_slice(header).expect("an accepted header is JSON");
                assert_eq!(h["alg"], "HS256", "accepted with another algorithm: {h}");
                let p: serde_json::Value =
                    serde_json::from_slice(payload).expect("accepted claims are JSON");
                assert_eq!(p["iss"], INSTALL, "accepted from another issuer: {p}");
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let exp = p["exp"].as_f64().expect("accepted claims have an exp");
                assert!(exp > now as f64 - 1.0, "accepted after its expiry: {p}");
            }
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(secs) = racer_core::auth::parse_lifetime(text) {
                assert!((1..=5 * 365 * 86_400).contains(&secs), "{text:?} -> {secs}");
            }
            if let Ok(email) = racer_core::auth::normalize_email(text) {
                assert_eq!(
                    racer_core::auth::normalize_email(&email).as_deref(),
                    Ok(email.as_str()),
                    "normalizing is not idempotent"
                );
            }
            let _ = racer_core::auth::check_password(text);
        }
    }
});
