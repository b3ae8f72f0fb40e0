//! Units users write: memory sizes.

/// Parses a memory size into MiB: Kubernetes' `512Mi`, `1Gi`, `256M`, `1G`; byte units
/// `512MiB`, `4GB`, `4096KB`; Docker's `512m`, `4g` (binary); a bare number is bytes.
pub fn memory_mib(s: &str) -> Option<u32> {
    const KIB: f64 = 1024.0;
    const UNITS: &[(&str, f64)] = &[
        ("TiB", KIB * KIB * KIB * KIB),
        ("GiB", KIB * KIB * KIB),
        ("MiB", KIB * KIB),
        ("KiB", KIB),
        ("Ti", KIB * KIB * KIB * KIB),
        ("Gi", KIB * KIB * KIB),
        ("Mi", KIB * KIB),
        ("Ki", KIB),
        ("TB", 1e12),
        ("GB", 1e9),
        ("MB", 1e6),
        ("KB", 1e3),
        ("kB", 1e3),
        ("T", 1e12),
        ("G", 1e9),
        ("M", 1e6),
        ("K", 1e3),
        ("t", KIB * KIB * KIB * KIB),
        ("g", KIB * KIB * KIB),
        ("m", KIB * KIB),
        ("k", KIB),
        ("B", 1.0),
        ("b", 1.0),
    ];
    let s = s.trim();
    let (num, bytes) = UNITS
        .iter()
        .find_map(|(unit, mult)| s.strip_suffix(unit).map(|n| (n, *mult)))
        .unwrap_or((s, 1.0));
    let v: f64 = num.trim().parse().ok()?;
    let mib = (v * bytes / (KIB * KIB)).round();
    (v.is_finite() && v > 0.0 && mib >= 1.0 && mib <= f64::from(u32::MAX)).then_some(mib as u32)
}
