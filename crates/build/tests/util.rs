//! Shared helpers: the fixture corpus, copied to a temporary folder and set up.

use std::fs;
use std::path::{Path, PathBuf};

/// The crate's `tests/` folder.
pub fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The workspace root.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether snapshots and expected files should be rewritten instead of compared.
pub fn updating() -> bool {
    std::env::var_os("RACER_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1")
}

/// Copies a folder recursively (regular files and folders only).
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &dest);
        } else if kind.is_file() {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The conda fixture corpus copied into a temporary folder, with each case's `setup.json`
/// applied: `symlinks` (link → target, made inside the case) and `pad` (file → size in bytes,
/// grown with comment lines). Symlinks and huge files are not committed; they are made here.
pub fn conda_corpus() -> (tempfile::TempDir, Vec<(String, PathBuf)>) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tests_dir().join("fixtures/conda");
    copy_dir(&src, tmp.path());
    let mut cases = Vec::new();
    for entry in fs::read_dir(tmp.path()).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let setup_path = dir.join("setup.json");
        if setup_path.exists() {
            let setup: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(&setup_path).unwrap()).unwrap();
            fs::remove_file(&setup_path).unwrap();
            if let Some(links) = setup.get("symlinks").and_then(|v| v.as_object()) {
                for (link, target) in links {
                    std::os::unix::fs::symlink(target.as_str().unwrap(), dir.join(link.as_str()))
                        .unwrap();
                }
            }
            if let Some(pads) = setup.get("pad").and_then(|v| v.as_object()) {
                for (file, size) in pads {
                    let path = dir.join(file);
                    let mut text = fs::read_to_string(&path).unwrap();
                    let line = format!("# {}\n", "x".repeat(77));
                    while (text.len() as u64) < size.as_u64().unwrap() {
                        text.push_str(&line);
                    }
                    fs::write(&path, text).unwrap();
                }
            }
        }
        cases.push((name, dir));
    }
    cases.sort();
    (tmp, cases)
}
