//! TLS policies as plain functions: when a certificate is due for renewal, where an HTTP request
//! is redirected when TLS is on, and the validity period read out of a certificate's DER (the
//! one field racer needs, without an X.509 library).

/// A certificate's validity, seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Not valid before.
    pub not_before: i64,
    /// Not valid after.
    pub not_after: i64,
}

impl Validity {
    /// When to renew: when `max_left` seconds are left (30 days: a long-lived certificate is
    /// renewed a month ahead), but never before two thirds of the lifetime have passed
    /// (Let's Encrypt's advice for its 90 days: at 60; a 6-day certificate at day 4).
    pub fn renew_at(&self, max_left: i64) -> i64 {
        let life = (self.not_after - self.not_before).max(0);
        let by_fraction = self.not_before + life * 2 / 3;
        by_fraction.max(self.not_after - max_left)
    }

    /// Whether it is due for renewal at `now` (see [`Validity::renew_at`]).
    pub fn due(&self, now: i64, max_left: i64) -> bool {
        now >= self.renew_at(max_left)
    }
}

/// The validity of an X.509 certificate in DER (RFC 5280 §4.1: `Certificate ::= SEQUENCE {
/// tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer, validity
/// SEQUENCE { notBefore, notAfter }, ... } ... }`). `None` if it is not that shape.
pub fn validity(der: &[u8]) -> Option<Validity> {
    let (cert, _) = der_item(der, 0x30)?;
    let (mut tbs, _) = der_item(cert, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = der_item(tbs, 0xa0)?.1;
    }
    let (_, rest) = der_item(tbs, 0x02)?; // serial number
    let (_, rest) = der_item(rest, 0x30)?; // signature algorithm
    let (_, rest) = der_item(rest, 0x30)?; // issuer
    let (validity, _) = der_item(rest, 0x30)?;
    let (not_before, rest) = der_time(validity)?;
    let (not_after, _) = der_time(rest)?;
    Some(Validity {
        not_before,
        not_after,
    })
}

/// One DER item of tag `tag` at the start of `input`: its contents and what follows it.
fn der_item(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix seconds, and what
/// follows it.
fn der_time(input: &[u8]) -> Option<(i64, &[u8])> {
    let (text, rest, year) = match input.first()? {
        0x17 => {
            let (t, rest) = der_item(input, 0x17)?;
            if t.len() != 13 {
                return None;
            }
            let yy = digits(&t[0..2])?;
            // RFC 5280: 50-99 are 19xx, 00-49 are 20xx.
            (t, rest, if yy >= 50 { 1900 + yy } else { 2000 + yy })
        }
        0x18 => {
            let (t, rest) = der_item(input, 0x18)?;
            if t.len() != 15 {
                return None;
            }
            (&t[2..], rest, digits(&t[0..4])?)
        }
        _ => return None,
    };
    if text.last() != Some(&b'Z') {
        return None;
    }
    let month = digits(&text[2..4])?;
    let day = digits(&text[4..6])?;
    let hour = digits(&text[6..8])?;
    let minute = digits(&text[8..10])?;
    let second = digits(&text[10..12])?;
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(year).ok()?,
        u32::try_from(month).ok()?,
        u32::try_from(day).ok()?,
    )?;
    let at = date.and_hms_opt(
        u32::try_from(hour).ok()?,
        u32::try_from(minute).ok()?,
        u32::try_from(second).ok()?,
    )?;
    Some((at.and_utc().timestamp(), rest))
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// Where a plain-HTTP request for `host` (its `Host` header, maybe with a port) and
/// `path_and_query` is sent when TLS is on: the same host on `https_port` (left out when 443).
/// `None` when the host is not a plausible host name (no redirect to an attacker's choice of
/// odd text; the caller answers 400).
pub fn https_location(host: &str, https_port: u16, path_and_query: &str) -> Option<String> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => {
            if !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            name
        }
        _ => host,
    };
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        });
    if !ok {
        return None;
    }
    let path = if path_and_query.starts_with('/') {
        path_and_query
    } else {
        "/"
    };
    Some(if https_port == 443 {
        format!("https://{name}{path}")
    } else {
        format!("https://{name}:{https_port}{path}")
    })
}

/// The path ACME HTTP-01 challenges are fetched at, and the token in it (RFC 8555 §8.3).
pub fn acme_challenge_token(path: &str) -> Option<&str> {
    let token = path.strip_prefix("/.well-known/acme-challenge/")?;
    let ok = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate made by `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256
    /// -days 30 -subj /CN=a.test -nodes`: valid from 2026-12-07T14:52:55Z for 30 days.
    const SAMPLE: &str = "MIIBdzCCAR2gAwIBAgIUJLvzAhykhpzCNl8V/TnK0KHO2Y8wCgYIKoZIzj0EAwIwETEPMA0GA1UEAwwGYS50ZXN0MB4XDTI2MTIwNzE0NTI1NVoXDTI3MDEwNjE0NTI1NVowETEPMA0GA1UEAwwGYS50ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEuHHmEIRfs+NC9462gAT+1My/thvVAw0NgLBego1i/vgtVwS1I9JgcCmk/PtSmi9T1n7DuvdmQ4HH2KUdZNhHsKNTMFEwHQYDVR0OBBYEFPuPeqnmqCr03yZrxt8cYqtl2ZTLMB8GA1UdIwQYMBaAFPuPeqnmqCr03yZrxt8cYqtl2ZTLMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgWw3LKAKitAOaHP7TzbE1QGg/RoM3RKJ5vaukNLUTwpICIQDnHV9iQD6zXl8Kvcm94A7P5fDfpAp4EmyCgE2Mzl0KaQ==";

    fn decode_b64(s: &str) -> Vec<u8> {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let mut acc = 0u32;
        let mut bits = 0;
        for c in s.bytes().filter(|c| *c != b'=') {
            let v = A.iter().position(|x| *x == c).unwrap() as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }

    #[test]
    fn reads_a_real_certificates_validity() {
        let v = validity(&decode_b64(SAMPLE)).unwrap();
        assert_eq!(v.not_before, 1796655175);
        assert_eq!(v.not_after - v.not_before, 30 * 86400);
        // Every truncation is refused, never a panic.
        let der = decode_b64(SAMPLE);
        for n in 0..der.len() {
            let _ = validity(&der[..n]);
        }
    }

    #[test]
    fn rejects_what_is_not_a_certificate() {
        assert_eq!(validity(b""), None);
        assert_eq!(validity(&[0x30, 0x82, 0xff, 0xff]), None);
        assert_eq!(validity(&[0x30, 0x02, 0x30, 0x00]), None);
        assert_eq!(validity(&[0x02, 0x01, 0x00]), None);
    }

    #[test]
    fn generalized_time_and_year_pivot() {
        assert_eq!(
            der_time(b"\x18\x0f20500101000000Z").map(|x| x.0),
            Some(2524608000)
        );
        assert_eq!(
            der_time(b"\x17\x0d491231235959Z").map(|x| x.0),
            Some(2524607999)
        );
        assert_eq!(
            der_time(b"\x17\x0d991231235959Z").map(|x| x.0),
            Some(946684799)
        );
        assert_eq!(der_time(b"\x17\x0d99123123595xZ"), None);
        assert_eq!(der_time(b"\x17\x0d991332235959Z"), None, "month 13");
    }

    #[test]
    fn renewal_a_month_ahead_but_not_before_two_thirds() {
        const DAY: i64 = 86400;
        let v = Validity {
            not_before: 0,
            not_after: 90 * DAY,
        };
        assert_eq!(v.renew_at(30 * DAY), 60 * DAY);
        assert!(!v.due(59 * DAY, 30 * DAY));
        assert!(v.due(60 * DAY, 30 * DAY));
        let year = Validity {
            not_before: 0,
            not_after: 365 * DAY,
        };
        assert_eq!(year.renew_at(30 * DAY), 335 * DAY);
        // Short certificates: two thirds of their life, not "a month before" (= at once).
        let six_days = Validity {
            not_before: 0,
            not_after: 6 * DAY,
        };
        assert_eq!(six_days.renew_at(30 * DAY), 4 * DAY);
        let short = Validity {
            not_before: 100,
            not_after: 130,
        };
        assert!(!short.due(119, 30 * DAY));
        assert!(short.due(120, 30 * DAY));
    }

    #[test]
    fn redirects_keep_the_host_and_path() {
        assert_eq!(
            https_location("web.example.com", 443, "/a?b=1").as_deref(),
            Some("https://web.example.com/a?b=1")
        );
        assert_eq!(
            https_location("web.localhost:8080", 8443, "/").as_deref(),
            Some("https://web.localhost:8443/")
        );
        assert_eq!(
            https_location("[::1]:8080", 8443, "/x").as_deref(),
            Some("https://[::1]:8443/x")
        );
        assert_eq!(https_location("", 443, "/"), None);
        assert_eq!(https_location("evil.com/x", 443, "/"), None);
        assert_eq!(https_location("a b", 443, "/"), None);
        assert_eq!(https_location("a:xx", 443, "/"), None);
        assert_eq!(https_location("a", 443, "*").as_deref(), Some("https://a/"));
    }

    #[test]
    fn challenge_tokens() {
        assert_eq!(
            acme_challenge_token("/.well-known/acme-challenge/abc_DEF-1"),
            Some("abc_DEF-1")
        );
        assert_eq!(acme_challenge_token("/.well-known/acme-challenge/"), None);
        assert_eq!(
            acme_challenge_token("/.well-known/acme-challenge/a/b"),
            None
        );
        assert_eq!(acme_challenge_token("/x"), None);
    }
}
