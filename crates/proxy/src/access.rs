//! A claim's requests, read: which claim and port a path names, whether the request presents
//! the claim's token (header, bearer, cookie or `?token=`), the cookie that carries it from the
//! first visit on, and the credentials taken off before the request goes to the container.
//! Pure functions, unit-tested; none of them fails or panics on malformed input.

use std::borrow::Cow;
use std::collections::HashSet;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::claims::{digest_bytes, is_claim_id};

/// The header a client may send the token in.
pub(crate) const X_RACER_CLAIM_TOKEN: HeaderName = HeaderName::from_static("x-racer-claim-token");
/// The query parameter that carries the token on a first visit.
const TOKEN_PARAM: &str = "token";
/// The claim cookie's name: `racer_claim_<claim>` (set by the proxy), or `racer_claim`.
const COOKIE_PREFIX: &[u8] = b"racer_claim";

/// A path that names a claim's port: `/<port>/<claim>[/...][?...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClaimPath<'a> {
    pub(crate) port: &'a str,
    pub(crate) claim: &'a str,
    /// `/<port>/<claim>`: stripped before forwarding, and sent as `X-Forwarded-Prefix`.
    pub(crate) prefix: &'a str,
    /// Path and query after the prefix: `/...`, or `?...` or empty (then a redirect adds `/`).
    pub(crate) rest: &'a str,
}

impl<'a> ClaimPath<'a> {
    /// The query (after `?`), if any.
    pub(crate) fn query(&self) -> Option<&'a str> {
        self.rest.split_once('?').map(|(_, q)| q)
    }
}

/// The claim path `path_and_query` names, if its first segment is one of `port_names` and its
/// second looks like a claim id.
pub(crate) fn claim_path<'a>(
    path_and_query: &'a str,
    port_names: &HashSet<String>,
) -> Option<ClaimPath<'a>> {
    let after = path_and_query.strip_prefix('/')?;
    let (port, tail) = after.split_once('/')?;
    if !port_names.contains(port) {
        return None;
    }
    let claim = &tail[..tail.find(['/', '?']).unwrap_or(tail.len())];
    if !is_claim_id(claim) {
        return None;
    }
    let cut = 1 + port.len() + 1 + claim.len();
    Some(ClaimPath {
        port,
        claim,
        prefix: path_and_query.get(..cut)?,
        rest: path_and_query.get(cut..)?,
    })
}

/// Which of the ways a request may present the claim's token it got through with.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Access {
    /// `X-Racer-Claim-Token`.
    pub(crate) header: bool,
    /// `Authorization: Bearer`.
    pub(crate) bearer: bool,
    /// The claim cookie.
    pub(crate) cookie: bool,
    /// `?token=`.
    pub(crate) query: bool,
}

impl Access {
    /// Whether any of them presented the token.
    pub(crate) fn granted(&self) -> bool {
        self.header || self.bearer || self.cookie || self.query
    }
}

/// Which ways of presenting a token in `headers` and `query` match `digest` (every value
/// presented is hashed and compared in constant time: the work is linear in the request's size).
pub(crate) fn check(
    headers: &HeaderMap,
    claim: &str,
    query: Option<&str>,
    digest: &[u8; 32],
) -> Access {
    let matches = |token: &[u8]| digest_matches(token, digest);
    Access {
        header: headers
            .get_all(X_RACER_CLAIM_TOKEN)
            .iter()
            .any(|v| matches(v.as_bytes())),
        bearer: headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| bearer(v.as_bytes()))
            .any(matches),
        cookie: claim_cookies(headers, claim).any(|v| matches(&percent_decode(v, false))),
        query: query_tokens(query).any(|v| matches(&v)),
    }
}

/// Whether `token`'s SHA-256 digest is `want`, compared in constant time.
fn digest_matches(token: &[u8], want: &[u8; 32]) -> bool {
    let got = digest_bytes(token);
    let diff = got.iter().zip(want).fold(0u8, |d, (a, b)| d | (a ^ b));
    std::hint::black_box(diff) == 0
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer(v: &[u8]) -> Option<&[u8]> {
    let scheme = v.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(v.get(7..)?.trim_ascii())
}

/// The `name=value` pairs of every `Cookie` header.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            Some((pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii()))
        })
}

/// Whether a cookie called `name` is the proxy's: `racer_claim` or `racer_claim_<anything>`.
fn is_claim_cookie(name: &[u8]) -> bool {
    name.strip_prefix(COOKIE_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"_"))
}

/// The values of the cookies that may carry `claim`'s token (`racer_claim_<claim>` and
/// `racer_claim`), quotes removed, still percent-encoded.
fn claim_cookies<'a>(headers: &'a HeaderMap, claim: &'a str) -> impl Iterator<Item = &'a [u8]> {
    cookies(headers).filter_map(move |(name, value)| {
        let rest = name.strip_prefix(COOKIE_PREFIX)?;
        let ours = rest.is_empty()
            || rest
                .strip_prefix(b"_")
                .is_some_and(|id| id == claim.as_bytes());
        ours.then(|| {
            value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value)
        })
    })
}

/// The decoded values of every `token` parameter of `query`.
fn query_tokens(query: Option<&str>) -> impl Iterator<Item = Cow<'_, [u8]>> {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            is_token_param(name).then(|| percent_decode(value.as_bytes(), true))
        })
}

fn is_token_param(name: &str) -> bool {
    percent_decode(name.as_bytes(), true).as_ref() == TOKEN_PARAM.as_bytes()
}

/// Where a request that presented the token as `?token=` is sent: the same path (with the `/`
/// after the claim id if it lacked it) and query, without the `token` parameters.
pub(crate) fn location_without_token(at: &ClaimPath<'_>) -> String {
    let (path, query) = at.rest.split_once('?').unwrap_or((at.rest, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| !is_token_param(p.split_once('=').map_or(*p, |(n, _)| n)))
        .collect();
    let mut out = String::with_capacity(at.prefix.len() + path.len() + query.len() + 2);
    out.push_str(at.prefix);
    out.push_str(if path.is_empty() { "/" } else { path });
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    out
}

/// The `Set-Cookie` value that carries `token` for `claim`'s port `port`: scoped to that port's
/// paths (the browser sends it to nothing else on the host), kept from scripts, sent on
/// top-level navigations from other sites but not on their sub-requests.
pub(crate) fn set_cookie(claim: &str, port: &str, token: &[u8]) -> Option<HeaderValue> {
    let mut v = format!("racer_claim_{claim}=");
    percent_encode_into(token, &mut v);
    v.push_str("; Path=/");
    v.push_str(port);
    v.push('/');
    v.push_str(claim);
    v.push_str("; HttpOnly; SameSite=Lax");
    HeaderValue::from_str(&v).ok()
}

/// The token the request's `?token=` presented (the first that matches `digest`).
pub(crate) fn query_token(query: Option<&str>, digest: &[u8; 32]) -> Option<Vec<u8>> {
    query_tokens(query)
        .find(|t| digest_matches(t, digest))
        .map(Cow::into_owned)
}

/// Takes the claim's credentials off a request before it goes to the container: the
/// `X-Racer-Claim-Token` header, the proxy's cookies, and the `Authorization` header if it was
/// what carried the token (else it is the app's own and stays).
pub(crate) fn strip_credentials(headers: &mut HeaderMap, access: &Access) {
    headers.remove(X_RACER_CLAIM_TOKEN);
    if access.bearer {
        headers.remove(header::AUTHORIZATION);
    }
    if cookies(headers).any(|(name, _)| is_claim_cookie(name)) {
        let mut kept: Vec<u8> = Vec::new();
        for (name, value) in cookies(headers).filter(|(name, _)| !is_claim_cookie(name)) {
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(name);
            kept.push(b'=');
            kept.extend_from_slice(value);
        }
        headers.remove(header::COOKIE);
        if let Ok(v) = HeaderValue::from_bytes(&kept) {
            if !kept.is_empty() {
                headers.insert(header::COOKIE, v);
            }
        }
    }
}

/// `%XX` decoded (a `%` not followed by two hex digits stays as it is), and `+` as a space in a
/// query.
fn percent_decode(s: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    if !s.iter().any(|&b| b == b'%' || (plus_is_space && b == b'+')) {
        return Cow::Borrowed(s);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let pair = s
                    .get(i + 1)
                    .and_then(|&h| hex(h))
                    .zip(s.get(i + 2).and_then(|&l| hex(l)));
                if let Some((h, l)) = pair {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// Appends `bytes` with everything but unreserved characters (RFC 3986) as `%XX`.
fn percent_encode_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::token_digest;

    const ID: &str = "4f9c2a1b77";

    fn ports(names: &[&str]) -> HashSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn claim_paths() {
        let names = ports(&["code", "vnc"]);
        let at = claim_path("/code/4f9c2a1b77/index.html?x=1", &names).unwrap();
        assert_eq!(
            (at.port, at.claim, at.prefix, at.rest),
            ("code", ID, "/code/4f9c2a1b77", "/index.html?x=1")
        );
        assert_eq!(at.query(), Some("x=1"));
        let bare = claim_path("/vnc/4f9c2a1b77?token=t", &names).unwrap();
        assert_eq!((bare.rest, bare.query()), ("?token=t", Some("token=t")));
        assert_eq!(claim_path("/vnc/4f9c2a1b77", &names).unwrap().rest, "");
        // Not claims: other first segments, ids that are not ids, app routes.
        for p in [
            "/web/4f9c2a1b77/",
            "/code/index.html",
            "/code/short/",
            "/code",
            "/code/",
            "/apps/web/",
            "/",
            "",
            "/code/4f9c%2a1b77/",
        ] {
            assert!(claim_path(p, &names).is_none(), "{p}");
        }
    }

    #[test]
    fn every_way_of_presenting_the_token() {
        let d = token_digest("s3cret");
        let none = check(&HeaderMap::new(), ID, None, &d);
        assert!(!none.granted());
        let h = headers(&[("x-racer-claim-token", "s3cret")]);
        assert_eq!(
            check(&h, ID, None, &d),
            Access {
                header: true,
                ..Access::default()
            }
        );
        let h = headers(&[("authorization", "Bearer s3cret")]);
        assert!(check(&h, ID, None, &d).bearer);
        let h = headers(&[("authorization", "bearer  s3cret ")]);
        assert!(check(&h, ID, None, &d).bearer);
        let h = headers(&[("authorization", "Basic s3cret")]);
        assert!(!check(&h, ID, None, &d).granted());
        let h = headers(&[("cookie", "a=1; racer_claim_4f9c2a1b77=s3cret; b=2")]);
        assert!(check(&h, ID, None, &d).cookie);
        let h = headers(&[("cookie", "racer_claim=\"s3cret\"")]);
        assert!(check(&h, ID, None, &d).cookie);
        // Another claim's cookie is not this one's.
        let h = headers(&[("cookie", "racer_claim_other00001=s3cret")]);
        assert!(!check(&h, ID, None, &d).granted());
        assert!(check(&HeaderMap::new(), ID, Some("a=1&token=s3cret"), &d).query);
        assert!(check(&HeaderMap::new(), ID, Some("%74oken=s3c%72et"), &d).query);
        assert!(!check(&HeaderMap::new(), ID, Some("token=wrong&x"), &d).granted());
        let wrong = headers(&[
            ("x-racer-claim-token", "nope"),
            ("cookie", "racer_claim_4f9c2a1b77=nope"),
        ]);
        assert!(!check(&wrong, ID, Some("token="), &d).granted());
        // A token with reserved characters survives the cookie round trip.
        let odd = "a b;c=d%\"é";
        let set = set_cookie(ID, "code", odd.as_bytes()).unwrap();
        let value = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        let h = headers(&[("cookie", &value)]);
        assert!(check(&h, ID, None, &token_digest(odd)).cookie);
    }

    #[test]
    fn malformed_input_does_not_panic() {
        let d = token_digest("x");
        let huge = format!("racer_claim_{ID}={}", "%".repeat(100_000));
        for (k, v) in [
            ("cookie", huge.as_str()),
            ("cookie", ";;;==;racer_claim; =;racer_claim_"),
            ("authorization", "Bearer"),
            ("authorization", "B"),
        ] {
            assert!(!check(&headers(&[(k, v)]), ID, None, &d).granted());
        }
        for q in [
            "%",
            "%4",
            "token=%",
            "token=%zz%4",
            "&&=&token",
            "token=%FF%FE",
        ] {
            assert!(!check(&HeaderMap::new(), ID, Some(q), &d).granted(), "{q}");
        }
        assert_eq!(percent_decode(b"%zz%4", false).as_ref(), b"%zz%4");
        assert_eq!(percent_decode(b"a%20b+c", true).as_ref(), b"a b c");
    }

    #[test]
    fn the_location_drops_only_the_token() {
        let names = ports(&["code"]);
        let loc = |p: &str| location_without_token(&claim_path(p, &names).unwrap());
        assert_eq!(loc("/code/4f9c2a1b77/a/b?token=t"), "/code/4f9c2a1b77/a/b");
        assert_eq!(
            loc("/code/4f9c2a1b77/?x=1&token=t&y=%20&tok=2"),
            "/code/4f9c2a1b77/?x=1&y=%20&tok=2"
        );
        assert_eq!(loc("/code/4f9c2a1b77?token=t"), "/code/4f9c2a1b77/");
        assert_eq!(
            loc("/code/4f9c2a1b77?%74oken=t&token=u"),
            "/code/4f9c2a1b77/"
        );
    }

    #[test]
    fn the_cookie_is_scoped_to_the_port() {
        let v = set_cookie(ID, "vnc", b"tok").unwrap();
        assert_eq!(
            v,
            "racer_claim_4f9c2a1b77=tok; Path=/vnc/4f9c2a1b77; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn credentials_are_taken_off() {
        let mut h = headers(&[
            ("x-racer-claim-token", "t"),
            ("authorization", "Bearer app-own"),
            ("cookie", "a=1; racer_claim_4f9c2a1b77=t"),
            ("cookie", "racer_claim=t; b=2"),
        ]);
        strip_credentials(
            &mut h,
            &Access {
                cookie: true,
                ..Access::default()
            },
        );
        assert!(h.get("x-racer-claim-token").is_none());
        assert_eq!(h["authorization"], "Bearer app-own", "the app's own");
        assert_eq!(h.get_all("cookie").iter().count(), 1);
        assert_eq!(h["cookie"], "a=1; b=2");
        let mut h = headers(&[("authorization", "Bearer t"), ("cookie", "racer_claim=t")]);
        strip_credentials(
            &mut h,
            &Access {
                bearer: true,
                ..Access::default()
            },
        );
        assert!(h.get("authorization").is_none() && h.get("cookie").is_none());
        let mut h = headers(&[("cookie", "a=1")]);
        strip_credentials(
            &mut h,
            &Access {
                header: true,
                ..Access::default()
            },
        );
        assert_eq!(h["cookie"], "a=1", "untouched");
    }
}
