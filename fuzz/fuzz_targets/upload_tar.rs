//! Upload tarballs (`racer deploy --path`: the CLI's tar stream, unpacked by the builder and by
//! `inspect` with `racer_build::context::unpack`). The input is a tar stream whose header
//! checksums the target fixes up before unpacking (else nearly every mutation would only test
//! the checksum check). Unpacked into `<tmp>/dest` beside a sentinel file: whatever the archive
//! holds, nothing may appear or change outside `dest`, no file may be setuid, setgid or sticky,
//! and an accepted archive leaves no symlink that resolves outside `dest`.
#![no_main]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use racer_build::context::{unpack, Limits};

const SENTINEL: &[u8] = b"outside the destination\n";

/// Recomputes the checksum of each header, walking the stream as a tar reader does.
fn fix_checksums(data: &mut [u8]) {
    let mut at = 0usize;
    while let Some(block) = at.checked_add(512).and_then(|end| data.get_mut(at..end)) {
        if block.iter().all(|&b| b == 0) {
            at += 512;
            continue;
        }
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        let cksum = format!("{sum:06o}\0 ");
        block[148..156].copy_from_slice(cksum.as_bytes());
        let size = header_size(&block[124..136]);
        let blocks = size.div_ceil(512);
        at = at
            .saturating_add(512)
            .saturating_add(usize::try_from(blocks.saturating_mul(512)).unwrap_or(usize::MAX));
    }
}

/// The size field: octal text, or base-256 when its first byte has the high bit set.
fn header_size(field: &[u8]) -> u64 {
    if field[0] & 0x80 != 0 {
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            n = n.saturating_mul(256).saturating_add(u64::from(b));
        }
        return n;
    }
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    u64::from_str_radix(text.trim(), 8).unwrap_or(0)
}

fn base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join("racer-fuzz-tar")
}

/// Every path below `dir`, not following symlinks.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        out.push(path.clone());
        if is_dir {
            walk(&path, out);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    fix_checksums(&mut data);
    let _ = fs::create_dir_all(base());
    let tmp = tempfile::Builder::new()
        .prefix("t")
        .tempdir_in(base())
        .expect("create a temporary folder");
    let root = fs::canonicalize(tmp.path()).expect("resolve the temporary folder");
    fs::write(root.join("sentinel"), SENTINEL).expect("write the sentinel");
    let dest = root.join("dest");
    let result = unpack(&data[..], &dest, &Limits::default());

    // Nothing outside `dest`.
    let mut outside: Vec<String> = fs::read_dir(&root)
        .expect("list the temporary folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    outside.sort();
    assert_eq!(outside, ["dest", "sentinel"], "{result:?}");
    assert_eq!(
        fs::read(root.join("sentinel")).expect("read the sentinel"),
        SENTINEL,
        "{result:?}"
    );
    let dest = fs::canonicalize(&dest).expect("resolve dest");
    let mut all = Vec::new();
    walk(&dest, &mut all);
    for path in &all {
        let meta = fs::symlink_metadata(path).expect("stat an unpacked path");
        assert_eq!(
            meta.permissions().mode() & 0o7000,
            0,
            "{} has a setuid, setgid or sticky bit",
            path.display()
        );
        if result.is_ok() && meta.file_type().is_symlink() {
            if let Ok(real) = fs::canonicalize(path) {
                assert!(
                    real.starts_with(&dest),
                    "{} resolves to {} outside the destination",
                    path.display(),
                    real.display()
                );
            }
        }
    }
    // Make every folder writable again so the temporary folder can be removed.
    for path in all.iter().rev() {
        if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
        }
    }
});
