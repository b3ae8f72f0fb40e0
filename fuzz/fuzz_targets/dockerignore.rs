//! `.dockerignore` (the build context's filter, from the user's folder): the text up to the
//! first NUL byte is the file, read with `Matcher::from_dockerignore` as `pack` reads it; each
//! line after it is a context path to match (a fixed set when there is none), with
//! `may_include_inside` on its folders and `clean` on it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use racer_build::dockerignore::{clean, Matcher};

const PATHS: &[&str] = &[
    "Dockerfile",
    ".dockerignore",
    "src/main.rs",
    "a/b/c/d.txt",
    "node_modules/x/y.js",
    ".git/HEAD",
    "envs/default/bin/python",
    "public/index.html",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (ignore, paths) = text.split_once('\0').unwrap_or((text, ""));
    let Ok(mut m) = Matcher::from_dockerignore(ignore) else {
        return;
    };
    let check = |m: &Matcher, path: &str| {
        let _ = m.matches(path);
        let _ = clean(path);
        let mut dir = path;
        while let Some((parent, _)) = dir.rsplit_once('/') {
            let _ = m.may_include_inside(parent);
            dir = parent;
        }
    };
    let given: Vec<&str> = paths.lines().filter(|p| !p.is_empty()).collect();
    let paths = if given.is_empty() { PATHS } else { &given[..] };
    for p in paths {
        check(&m, p);
    }
    // As `pack` does: the Dockerfile and .dockerignore are always sent.
    m.push_exception("Dockerfile");
    m.push_exception(".dockerignore");
    assert!(!m.matches("Dockerfile") && !m.matches(".dockerignore"));
    for p in paths {
        check(&m, p);
    }
});
