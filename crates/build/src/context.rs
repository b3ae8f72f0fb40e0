//! Build-context tarballs: packing a folder the way `docker build` does, and unpacking an
//! untrusted one safely.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use crate::dockerignore::{self, Matcher};
use crate::Error;

/// Largest `.dockerignore` read, in bytes.
const MAX_DOCKERIGNORE_BYTES: u64 = 1024 * 1024;

/// What [`pack`] put into the tarball.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackStats {
    /// Regular files written (generated extra files included).
    pub files: u64,
    /// Folders written.
    pub dirs: u64,
    /// Symlinks written (as links; never followed).
    pub symlinks: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Paths left out by `.dockerignore` (a left-out folder counts once).
    pub excluded: u64,
    /// Special files (sockets, fifos, devices) left out.
    pub skipped: u64,
}

/// What [`unpack`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Regular files written.
    pub files: u64,
    /// Folders created from folder entries.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Hard links created.
    pub hardlinks: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// Limits [`unpack`] enforces on an untrusted tarball.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of file content in total.
    pub max_bytes: u64,
    /// Most entries (files, folders, links) in total.
    pub max_entries: u64,
}

impl Default for Limits {
    /// 1 GiB of content in at most 200 000 entries.
    fn default() -> Self {
        Limits {
            max_bytes: 1024 * 1024 * 1024,
            max_entries: 200_000,
        }
    }
}

/// Packs the folder `dir` into a tar stream on `out`, as `docker build` sends it.
///
/// `.dockerignore` is honoured with Docker's matching rules (see [`dockerignore`]); like the
/// Docker CLI, `.dockerignore` and `Dockerfile` are sent even when a pattern excludes them.
/// Symlinks are stored as symlinks and never followed. Entries are sorted by name, owned by
/// root and have their modification time zeroed, so the same folder always packs to the same
/// bytes.
pub fn pack(dir: &Path, out: impl Write) -> Result<PackStats, Error> {
    pack_with_extra(dir, &[], out)
}

/// Like [`pack`], plus generated files (e.g. a generated `Dockerfile`) at the given
/// context-relative paths; a generated file replaces a file of the folder at the same path and
/// is never excluded.
pub fn pack_with_extra(
    dir: &Path,
    extra_files: &[(&str, &[u8])],
    out: impl Write,
) -> Result<PackStats, Error> {
    let mut extras: BTreeMap<String, &[u8]> = BTreeMap::new();
    for (name, data) in extra_files {
        let clean = dockerignore::clean(name);
        if clean == "." || clean.starts_with('/') || clean == ".." || clean.starts_with("../") {
            return Err(Error::Pack {
                path: PathBuf::from(name),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a generated file must have a relative path inside the context",
                ),
            });
        }
        extras.insert(clean, data);
    }
    let matcher = read_dockerignore(dir)?;
    let mut packer = Packer {
        builder: tar::Builder::new(out),
        matcher,
        extras: &extras,
        stats: PackStats::default(),
    };
    packer.builder.mode(tar::HeaderMode::Deterministic);
    for (name, data) in &extras {
        packer.add_bytes(name, data)?;
    }
    packer.walk(dir, "")?;
    packer.builder.finish().map_err(|source| Error::Pack {
        path: PathBuf::from("."),
        source,
    })?;
    Ok(packer.stats)
}

/// Reads and compiles `dir/.dockerignore` (absent: nothing is excluded), then re-includes
/// `.dockerignore` and `Dockerfile` as the Docker CLI does.
fn read_dockerignore(dir: &Path) -> Result<Matcher, Error> {
    let path = dir.join(".dockerignore");
    let is_file = fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
    if !is_file {
        return Ok(Matcher::default());
    }
    let read_err = |source| Error::Read {
        path: path.clone(),
        source,
    };
    let file = fs::File::open(&path).map_err(read_err)?;
    let mut text = String::new();
    file.take(MAX_DOCKERIGNORE_BYTES)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    let mut matcher = Matcher::from_dockerignore(&text)?;
    for keep in [".dockerignore", "Dockerfile"] {
        if matcher.matches(keep) {
            matcher.push_exception(keep);
        }
    }
    Ok(matcher)
}

struct Packer<'a, W: Write> {
    builder: tar::Builder<W>,
    matcher: Matcher,
    extras: &'a BTreeMap<String, &'a [u8]>,
    stats: PackStats,
}

impl<W: Write> Packer<'_, W> {
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode & 0o7777);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h
    }

    fn err(rel: &str) -> impl FnOnce(io::Error) -> Error + '_ {
        move |source| Error::Pack {
            path: PathBuf::from(rel),
            source,
        }
    }

    fn add_bytes(&mut self, rel: &str, data: &[u8]) -> Result<(), Error> {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, data.len() as u64);
        self.builder
            .append_data(&mut h, rel, data)
            .map_err(Self::err(rel))?;
        self.stats.files += 1;
        self.stats.bytes += data.len() as u64;
        Ok(())
    }

    /// Adds the children of `path` (context-relative `rel`, empty for the root), sorted by name.
    fn walk(&mut self, path: &Path, rel: &str) -> Result<(), Error> {
        let read_err = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut children: Vec<(String, PathBuf)> = Vec::new();
        for entry in fs::read_dir(path).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            children.push((name, entry.path()));
        }
        children.sort();
        for (name, child) in children {
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            self.add(&child, &child_rel)?;
        }
        Ok(())
    }

    fn add(&mut self, path: &Path, rel: &str) -> Result<(), Error> {
        if self.extras.contains_key(rel) {
            return Ok(());
        }
        let meta = fs::symlink_metadata(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let excluded = self.matcher.matches(rel);
        let kind = meta.file_type();
        let mode = meta.permissions().mode();
        if kind.is_dir() {
            if excluded {
                self.stats.excluded += 1;
                if self.matcher.may_include_inside(rel) {
                    self.walk(path, rel)?;
                }
                return Ok(());
            }
            let mut h = Self::header(tar::EntryType::Directory, mode, 0);
            self.builder
                .append_data(&mut h, format!("{rel}/"), io::empty())
                .map_err(Self::err(rel))?;
            self.stats.dirs += 1;
            return self.walk(path, rel);
        }
        if excluded {
            self.stats.excluded += 1;
            return Ok(());
        }
        if kind.is_symlink() {
            let target = fs::read_link(path).map_err(|source| Error::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
            self.builder
                .append_link(&mut h, rel, &target)
                .map_err(Self::err(rel))?;
            self.stats.symlinks += 1;
        } else if kind.is_file() {
            let file = fs::File::open(path).map_err(|source| Error::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let len = meta.len();
            // A file that changes while it is read must not corrupt the archive: write exactly
            // the size recorded in the header, zero-padded if the file shrank.
            let data = file.take(len).chain(io::repeat(0)).take(len);
            let mut h = Self::header(tar::EntryType::Regular, mode, len);
            self.builder
                .append_data(&mut h, rel, data)
                .map_err(Self::err(rel))?;
            self.stats.files += 1;
            self.stats.bytes += len;
        } else {
            self.stats.skipped += 1;
        }
        Ok(())
    }
}

/// A reader that fails once more than `limit` bytes have been read, remembering that it did.
struct LimitedReader<R> {
    inner: R,
    remaining: u64,
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            // Only an error if there is more to read.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.tripped.set(true);
                    Err(io::Error::other("the archive is larger than the limit"))
                }
            };
        }
        let cap = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..cap])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Unpacks an untrusted tar stream into `dest` (created if missing; it should be empty).
///
/// Refuses absolute paths, `..` components, symlinks whose target is absolute or leaves `dest`,
/// hard links to anything but a file already unpacked, device files and fifos, duplicate
/// entries, and any entry that would be written through a symlink. Enforces `limits` on the
/// total content bytes and the number of entries (and bounds the raw stream accordingly, so
/// oversized metadata cannot exhaust memory). Permissions keep their `rwx` bits (never setuid,
/// setgid or sticky); owners and times are not restored. On error, `dest` holds whatever was
/// written so far: callers should remove it.
pub fn unpack(reader: impl Read, dest: &Path, limits: &Limits) -> Result<UnpackStats, Error> {
    let io_err = |step: String| move |source| Error::Unpack { step, source };
    fs::create_dir_all(dest).map_err(io_err(format!("create {}", dest.display())))?;
    let root = fs::canonicalize(dest).map_err(io_err(format!("resolve {}", dest.display())))?;
    let tripped = Rc::new(Cell::new(false));
    let raw_limit = limits
        .max_bytes
        .saturating_add(limits.max_entries.saturating_add(16).saturating_mul(2048))
        .saturating_add(1024 * 1024);
    let limited = LimitedReader {
        inner: reader,
        remaining: raw_limit,
        tripped: tripped.clone(),
    };
    let mut archive = tar::Archive::new(limited);
    let mut u = Unpacker {
        root,
        limits: *limits,
        stats: UnpackStats::default(),
        entries: 0,
        symlinks: Vec::new(),
    };
    let too_large = |e: Error| {
        if tripped.get() {
            Error::TooLarge {
                limit: limits.max_bytes,
            }
        } else {
            e
        }
    };
    let entries = archive
        .entries()
        .map_err(io_err("read the archive".to_string()))
        .map_err(too_large)?;
    for entry in entries {
        let entry = entry
            .map_err(io_err("read an archive entry header".to_string()))
            .map_err(too_large)?;
        u.entry(entry).map_err(too_large)?;
    }
    u.check_symlinks()?;
    Ok(u.stats)
}

struct Unpacker {
    root: PathBuf,
    limits: Limits,
    stats: UnpackStats,
    entries: u64,
    /// Symlinks created, checked again once everything is unpacked.
    symlinks: Vec<(String, PathBuf)>,
}

fn unsafe_entry(path: &str, reason: impl Into<String>) -> Error {
    Error::UnsafeEntry {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// The normal components of an archive path, refusing absolute paths and `..`.
fn archive_components(shown: &str, path: &Path) -> Result<Vec<String>, Error> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_entry(shown, "the path contains `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry(shown, "the path is absolute"))
            }
        }
    }
    Ok(parts)
}

impl Unpacker {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), Error> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(Error::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader) {
            return Ok(());
        }
        let raw = entry
            .path()
            .map_err(|source| Error::Unpack {
                step: "read an entry path".to_string(),
                source,
            })?
            .into_owned();
        let shown = raw.to_string_lossy().into_owned();
        let parts = archive_components(&shown, &raw)?;
        if parts.is_empty() {
            return if kind.is_dir() {
                Ok(())
            } else {
                Err(unsafe_entry(&shown, "the path is empty"))
            };
        }
        let target = self.prepare_parents(&shown, &parts)?;
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        let write_err = |source| Error::Unpack {
            step: format!("write {shown}"),
            source,
        };
        match kind {
            tar::EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(unsafe_entry(&shown, "a file or link is already there")),
                    Err(_) => fs::create_dir(&target).map_err(write_err)?,
                }
                fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o700))
                    .map_err(write_err)?;
                self.stats.dirs += 1;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.header().size().map_err(write_err)?;
                if self.stats.bytes.saturating_add(size) > self.limits.max_bytes {
                    return Err(Error::TooLarge {
                        limit: self.limits.max_bytes,
                    });
                }
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode | 0o600)
                    .open(&target)
                    .map_err(|e| {
                        if e.kind() == io::ErrorKind::AlreadyExists {
                            unsafe_entry(&shown, "a duplicate entry (something is already there)")
                        } else {
                            write_err(e)
                        }
                    })?;
                let written =
                    io::copy(&mut (&mut entry).take(size), &mut file).map_err(|source| {
                        Error::Unpack {
                            step: format!("write {shown}"),
                            source,
                        }
                    })?;
                self.stats.bytes += written;
                self.stats.files += 1;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(write_err)?
                    .ok_or_else(|| unsafe_entry(&shown, "a symlink without a target"))?
                    .into_owned();
                check_symlink_target(&shown, parts.len() - 1, &link)?;
                std::os::unix::fs::symlink(&link, &target).map_err(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        unsafe_entry(&shown, "a duplicate entry (something is already there)")
                    } else {
                        write_err(e)
                    }
                })?;
                self.symlinks.push((shown.clone(), target));
                self.stats.symlinks += 1;
            }
            tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(write_err)?
                    .ok_or_else(|| unsafe_entry(&shown, "a hard link without a target"))?
                    .into_owned();
                let link_shown = link.to_string_lossy().into_owned();
                let link_parts = archive_components(&shown, &link).map_err(|_| {
                    unsafe_entry(
                        &shown,
                        format!("hard link target {link_shown:?} is absolute or contains `..`"),
                    )
                })?;
                let source = self.existing_file(&link_parts).ok_or_else(|| {
                    unsafe_entry(
                        &shown,
                        format!("hard link target {link_shown:?} is not a file unpacked before it"),
                    )
                })?;
                fs::hard_link(&source, &target).map_err(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        unsafe_entry(&shown, "a duplicate entry (something is already there)")
                    } else {
                        write_err(e)
                    }
                })?;
                self.stats.hardlinks += 1;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(unsafe_entry(&shown, "device files are not allowed"))
            }
            tar::EntryType::Fifo => return Err(unsafe_entry(&shown, "fifos are not allowed")),
            other => {
                return Err(unsafe_entry(
                    &shown,
                    format!("entries of type {other:?} are not allowed"),
                ))
            }
        }
        Ok(())
    }

    /// Creates the entry's missing parent folders, refusing to go through a symlink or a file,
    /// and returns where the entry goes.
    fn prepare_parents(&self, shown: &str, parts: &[String]) -> Result<PathBuf, Error> {
        let mut path = self.root.clone();
        for part in &parts[..parts.len() - 1] {
            path.push(part);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(unsafe_entry(
                        shown,
                        format!("its parent {part:?} is a symlink"),
                    ))
                }
                Ok(_) => {
                    return Err(unsafe_entry(
                        shown,
                        format!("its parent {part:?} is not a folder"),
                    ))
                }
                Err(_) => fs::create_dir(&path).map_err(|source| Error::Unpack {
                    step: format!("create the folder of {shown}"),
                    source,
                })?,
            }
        }
        if let Some(last) = parts.last() {
            path.push(last);
        }
        Ok(path)
    }

    /// The path of a regular file already unpacked at `parts`, reached without any symlink.
    fn existing_file(&self, parts: &[String]) -> Option<PathBuf> {
        let mut path = self.root.clone();
        for (i, part) in parts.iter().enumerate() {
            path.push(part);
            let meta = fs::symlink_metadata(&path).ok()?;
            let last = i + 1 == parts.len();
            if (last && !meta.is_file()) || (!last && !meta.is_dir()) {
                return None;
            }
        }
        (!parts.is_empty()).then_some(path)
    }

    /// Every symlink that resolves now must resolve inside the destination.
    fn check_symlinks(&self) -> Result<(), Error> {
        for (shown, path) in &self.symlinks {
            if let Ok(real) = fs::canonicalize(path) {
                if !real.starts_with(&self.root) {
                    return Err(unsafe_entry(
                        shown,
                        "the symlink resolves outside the destination",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A symlink at depth `depth` (number of folders above it inside the destination) may point
/// only to a relative target whose `..` components all come first and do not climb above the
/// destination. With parents never being symlinks, this keeps every resolution inside.
fn check_symlink_target(shown: &str, depth: usize, target: &Path) -> Result<(), Error> {
    let target_shown = target.to_string_lossy();
    if target.as_os_str().is_empty() {
        return Err(unsafe_entry(shown, "the symlink target is empty"));
    }
    let mut ups = 0usize;
    let mut descended = false;
    for c in target.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry(
                    shown,
                    format!("the symlink target {target_shown:?} is absolute"),
                ))
            }
            Component::ParentDir if descended => {
                return Err(unsafe_entry(
                    shown,
                    format!(
                        "the symlink target {target_shown:?} has `..` after a folder name; \
                         write it without going down and up again"
                    ),
                ))
            }
            Component::ParentDir => ups += 1,
            Component::Normal(_) => descended = true,
            Component::CurDir => {}
        }
    }
    if ups > depth {
        return Err(unsafe_entry(
            shown,
            format!("the symlink target {target_shown:?} points outside the destination"),
        ));
    }
    Ok(())
}
