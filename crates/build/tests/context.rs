//! Build-context tarballs: pack/unpack round trips, `.dockerignore`, and unpack's refusals.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use racer_build::context::{self, Limits};
use racer_build::Error;

/// Every path under `dir` (relative, slash-separated) → its content, `dir/` for folders and
/// `-> target` for symlinks.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(rel, format!("-> {}", target.display()));
            } else if kind.is_dir() {
                out.insert(rel, "dir/".to_string());
                walk(root, &path, out);
            } else {
                out.insert(rel, fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A source folder with a `.dockerignore` that excludes itself, the Dockerfile, logs, a folder
/// with one exception inside, and all markdown but the README.
fn sample() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(
        d,
        ".dockerignore",
        "# docker's rules\n.dockerignore\nDockerfile\n*.log\n**/*.tmp\ndocs\n!docs/keep.md\n*.md\n!README.md\n/secret\n",
    );
    write(d, "Dockerfile", "FROM scratch\n");
    write(d, "app.py", "print('hi')\n");
    write(d, "run.log", "noise\n");
    write(d, "README.md", "# readme\n");
    write(d, "NOTES.md", "notes\n");
    write(d, "src/lib/mod.py", "x = 1\n");
    write(d, "src/lib/cache.tmp", "tmp\n");
    write(d, "src/deep.log", "kept: *.log is root-level only\n");
    write(d, "docs/keep.md", "kept\n");
    write(d, "docs/drop.md", "dropped\n");
    write(d, "secret/key", "k\n");
    fs::set_permissions(d.join("app.py"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("src/lib/mod.py", d.join("link.py")).unwrap();
    tmp
}

fn pack_to_vec(dir: &Path) -> Vec<u8> {
    let mut buf = Vec::new();
    context::pack(dir, &mut buf).unwrap();
    buf
}

#[test]
fn pack_then_unpack_round_trips_honouring_dockerignore() {
    let src = sample();
    let mut buf = Vec::new();
    let stats = context::pack(src.path(), &mut buf).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let out = context::unpack(&buf[..], dest.path(), &Limits::default()).unwrap();
    let got = tree(dest.path());
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in [
        (".dockerignore", None),
        ("Dockerfile", Some("FROM scratch\n")),
        ("app.py", Some("print('hi')\n")),
        ("README.md", Some("# readme\n")),
        ("docs", Some("dir/")),
        ("docs/keep.md", Some("kept\n")),
        ("link.py", Some("-> src/lib/mod.py")),
        ("src", Some("dir/")),
        ("src/lib", Some("dir/")),
        ("src/lib/mod.py", Some("x = 1\n")),
        ("src/deep.log", Some("kept: *.log is root-level only\n")),
    ] {
        let v = v
            .map(str::to_string)
            .unwrap_or_else(|| fs::read_to_string(src.path().join(k)).unwrap());
        want.insert(k.to_string(), v);
    }
    assert_eq!(got, want);
    assert_eq!(stats.files, 7);
    assert_eq!(stats.symlinks, 1);
    assert_eq!(out.files, 7);
    assert_eq!(out.symlinks, 1);
    assert_eq!(out.bytes, stats.bytes);
    let mode = fs::metadata(dest.path().join("app.py"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "the executable bit survives");
}

#[test]
fn packing_is_deterministic_and_zeroes_times() {
    let src = sample();
    let a = pack_to_vec(src.path());
    // Touch a file's time: the bytes must not change.
    let f = fs::File::options()
        .write(true)
        .open(src.path().join("app.py"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .unwrap();
    let b = pack_to_vec(src.path());
    assert_eq!(a, b);
    let mut archive = tar::Archive::new(&a[..]);
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        assert_eq!(entry.header().mtime().unwrap(), 0);
        assert_eq!(entry.header().uid().unwrap(), 0);
        names.push(entry.path().unwrap().to_string_lossy().into_owned());
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are in name order");
}

#[test]
fn extra_files_are_added_and_override() {
    let src = sample();
    let mut buf = Vec::new();
    context::pack_with_extra(
        src.path(),
        &[
            ("Dockerfile", b"FROM generated\n"),
            ("gen/info.txt", b"made by racer\n"),
        ],
        &mut buf,
    )
    .unwrap();
    let dest = tempfile::tempdir().unwrap();
    context::unpack(&buf[..], dest.path(), &Limits::default()).unwrap();
    assert_eq!(
        fs::read_to_string(dest.path().join("Dockerfile")).unwrap(),
        "FROM generated\n"
    );
    assert_eq!(
        fs::read_to_string(dest.path().join("gen/info.txt")).unwrap(),
        "made by racer\n"
    );
    let mut names = Vec::new();
    for e in tar::Archive::new(&buf[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    assert_eq!(names.iter().filter(|n| *n == "Dockerfile").count(), 1);
    assert!(context::pack_with_extra(src.path(), &[("../x", b"no")], Vec::new()).is_err());
}

#[test]
fn symlinks_out_of_the_folder_are_never_followed() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "private.txt", "do not send\n");
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "app.py", "x\n");
    std::os::unix::fs::symlink(outside.path(), src.path().join("escape")).unwrap();
    let buf = pack_to_vec(src.path());
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.contains("do not send"));
    let entries: Vec<(String, tar::EntryType)> = tar::Archive::new(&buf[..])
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().entry_type(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("app.py".to_string(), tar::EntryType::Regular),
            ("escape".to_string(), tar::EntryType::Symlink)
        ]
    );
    // And unpacking refuses that link, whose target is absolute.
    let dest = tempfile::tempdir().unwrap();
    let err = context::unpack(&buf[..], dest.path(), &Limits::default()).unwrap_err();
    assert!(
        matches!(err, Error::UnsafeEntry { ref path, .. } if path == "escape"),
        "{err}"
    );
}

#[test]
fn a_bad_dockerignore_is_an_error() {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), ".dockerignore", "ok\n[unclosed\n");
    let err = context::pack(src.path(), Vec::new()).unwrap_err();
    assert!(matches!(err, Error::Dockerignore { line: 2, .. }), "{err}");
}

/// Builds a tar by hand so that paths the `tar` crate would refuse can be written.
struct RawTar(Vec<u8>);

impl RawTar {
    fn new() -> Self {
        RawTar(Vec::new())
    }

    fn entry(mut self, path: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> Self {
        let mut h = tar::Header::new_old();
        {
            let old = h.as_old_mut();
            old.name[..path.len()].copy_from_slice(path.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    fn file(self, path: &str, data: &[u8]) -> Self {
        self.entry(path, tar::EntryType::Regular, "", data)
    }

    fn symlink(self, path: &str, target: &str) -> Self {
        self.entry(path, tar::EntryType::Symlink, target, b"")
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend(std::iter::repeat_n(0u8, 1024));
        self.0
    }
}

fn unpack_err(tar: Vec<u8>, limits: &Limits) -> (Error, tempfile::TempDir) {
    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("dest");
    let err = context::unpack(&tar[..], &dest, limits).unwrap_err();
    (err, parent)
}

#[test]
fn unpack_refuses_parent_dir_paths() {
    let (err, parent) = unpack_err(
        RawTar::new().file("../evil", b"x").finish(),
        &Limits::default(),
    );
    assert!(
        matches!(err, Error::UnsafeEntry { ref path, .. } if path == "../evil"),
        "{err}"
    );
    assert!(!parent.path().join("evil").exists());
    let (err, _) = unpack_err(
        RawTar::new().file("a/../../evil", b"x").finish(),
        &Limits::default(),
    );
    assert!(err.to_string().contains("`..`"), "{err}");
    assert_eq!(err.kind(), racer_core::ErrorKind::Invalid);
}

#[test]
fn unpack_refuses_absolute_paths() {
    let (err, _) = unpack_err(
        RawTar::new().file("/tmp/racer-abs-evil", b"x").finish(),
        &Limits::default(),
    );
    assert!(err.to_string().contains("absolute"), "{err}");
    assert!(!Path::new("/tmp/racer-abs-evil").exists());
}

#[test]
fn unpack_refuses_symlink_escapes() {
    for (target, why) in [
        ("/etc", "absolute"),
        ("../outside", "outside"),
        ("sub/../../outside", "`..` after a folder name"),
    ] {
        let (err, _) = unpack_err(
            RawTar::new().symlink("link", target).finish(),
            &Limits::default(),
        );
        assert!(err.to_string().contains(why), "{target}: {err}");
    }
    // A link that stays inside is fine, also from a subfolder.
    let dest = tempfile::tempdir().unwrap();
    let tar = RawTar::new()
        .file("a/b/file", b"x")
        .symlink("a/b/up", "../../a")
        .symlink("here", "a/b/file")
        .finish();
    let stats = context::unpack(&tar[..], dest.path(), &Limits::default()).unwrap();
    assert_eq!(stats.symlinks, 2);
    assert_eq!(fs::read_to_string(dest.path().join("here")).unwrap(), "x");
}

#[test]
fn unpack_never_writes_through_a_symlink() {
    let outside = tempfile::tempdir().unwrap();
    // Even a link inside: writing through any symlink is refused.
    let tar = RawTar::new()
        .file("real/keep", b"k")
        .symlink("dir", "real")
        .file("dir/evil", b"x")
        .finish();
    let (err, _) = unpack_err(tar, &Limits::default());
    assert!(err.to_string().contains("is a symlink"), "{err}");
    // A file entry over an existing symlink does not follow it.
    let tar = RawTar::new()
        .symlink("f", "g")
        .file("f", b"overwrite")
        .finish();
    let (err, parent) = unpack_err(tar, &Limits::default());
    assert!(err.to_string().contains("duplicate"), "{err}");
    assert!(!parent.path().join("dest/g").exists());
    drop(outside);
}

#[test]
fn unpack_refuses_hard_links_out_and_device_files() {
    let tar = RawTar::new()
        .entry("passwd", tar::EntryType::Link, "/etc/passwd", b"")
        .finish();
    let (err, _) = unpack_err(tar, &Limits::default());
    assert!(err.to_string().contains("hard link"), "{err}");
    let tar = RawTar::new()
        .entry("passwd", tar::EntryType::Link, "../x", b"")
        .finish();
    assert!(unpack_err(tar, &Limits::default())
        .0
        .to_string()
        .contains("hard link"));
    let tar = RawTar::new()
        .entry("null", tar::EntryType::Char, "", b"")
        .finish();
    assert!(unpack_err(tar, &Limits::default())
        .0
        .to_string()
        .contains("device"));
    // A hard link to a file unpacked before it is fine.
    let dest = tempfile::tempdir().unwrap();
    let tar = RawTar::new()
        .file("a", b"same")
        .entry("b", tar::EntryType::Link, "a", b"")
        .finish();
    let stats = context::unpack(&tar[..], dest.path(), &Limits::default()).unwrap();
    assert_eq!(stats.hardlinks, 1);
    assert_eq!(fs::read_to_string(dest.path().join("b")).unwrap(), "same");
}

#[test]
fn unpack_enforces_size_and_entry_limits() {
    let limits = Limits {
        max_bytes: 1000,
        max_entries: 3,
    };
    let big = RawTar::new()
        .file("a", &[b'a'; 600])
        .file("b", &[b'b'; 600])
        .finish();
    let (err, _) = unpack_err(big, &limits);
    assert!(matches!(err, Error::TooLarge { limit: 1000 }), "{err}");
    assert!(err
        .to_string()
        .contains("larger than the limit of 1000 bytes"));
    let many = RawTar::new()
        .file("a", b"1")
        .file("b", b"2")
        .file("c", b"3")
        .file("d", b"4")
        .finish();
    let (err, _) = unpack_err(many, &limits);
    assert!(matches!(err, Error::TooManyEntries { limit: 3 }), "{err}");
    assert_eq!(Limits::default().max_bytes, 1 << 30);
    assert_eq!(Limits::default().max_entries, 200_000);
}

#[test]
fn unpack_bounds_the_raw_stream_too() {
    // A GNU long-name entry claiming far more than the limits allow is refused without being
    // read into memory.
    let limits = Limits {
        max_bytes: 1000,
        max_entries: 10,
    };
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(64 * 1024 * 1024);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    let (err, _) = unpack_err(tar, &limits);
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}
