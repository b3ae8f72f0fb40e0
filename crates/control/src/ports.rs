//! Host ports for replicas: from the configured ranges, never one in use.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;

use crate::Error;

/// Picks the first port of `ranges` not in `taken` that can be bound on 127.0.0.1 right now.
pub fn pick(ranges: &[RangeInclusive<u16>], taken: &HashSet<u16>) -> Result<u16, Error> {
    for range in ranges {
        for port in range.clone() {
            if taken.contains(&port) {
                continue;
            }
            if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(port);
            }
        }
    }
    Err(Error::PortsExhausted {
        ranges: describe(ranges),
    })
}

/// `8000-8999, 9000-9999`.
pub fn describe(ranges: &[RangeInclusive<u16>]) -> String {
    ranges
        .iter()
        .map(|r| format!("{}-{}", r.start(), r.end()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `8000-8999,9000-9999` (a single port is a range of one).
pub fn parse(s: &str) -> Result<Vec<RangeInclusive<u16>>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u16 = a
            .trim()
            .parse()
            .map_err(|_| format!("bad port {a:?} in {part:?}"))?;
        let b: u16 = b
            .trim()
            .parse()
            .map_err(|_| format!("bad port {b:?} in {part:?}"))?;
        if a == 0 || a > b {
            return Err(format!(
                "bad range {part:?}: want LOW-HIGH with 0 < LOW <= HIGH"
            ));
        }
        out.push(a..=b);
    }
    if out.is_empty() {
        return Err("no port range given".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        assert_eq!(
            parse("8000-8999,9000-9999"),
            Ok(vec![8000..=8999, 9000..=9999])
        );
        assert_eq!(parse("8500"), Ok(vec![8500..=8500]));
        assert!(parse("9-1").is_err());
        assert!(parse("x").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn skips_taken_and_bound_ports_and_says_when_full() {
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let p = held.local_addr().unwrap().port();
        let err = pick(&[p..=p], &HashSet::new()).unwrap_err();
        assert!(err.to_string().contains(&format!("{p}-{p}")), "{err}");
        let free = pick(&[p..=p.saturating_add(50)], &HashSet::from([p + 1])).unwrap();
        assert!(free != p && free != p + 1);
    }
}
