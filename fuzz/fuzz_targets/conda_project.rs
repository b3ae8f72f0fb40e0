//! A conda project folder (what a user uploads or a git checkout holds): `conda-project.yml` or
//! `.yaml`, environment files, `.env`, conda-lock files. The input is split into files by lines
//! `%%% <name>` (text before the first such line is `conda-project.yml`); the names are a fixed
//! set, so the target writes only inside its temporary folder. Then `detect` (`conda::load`),
//! and for an accepted project every Dockerfile (see `common/conda.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/conda.rs"]
mod common;

/// The files a fuzzed project may have.
const NAMES: &[&str] = &[
    "conda-project.yml",
    "conda-project.yaml",
    "environment.yml",
    "environment.yaml",
    ".env",
    "conda-lock.default.yml",
    "conda-lock.gpu.yml",
    "envs/gpu.yml",
    "requirements.txt",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = common::project_dir();
    let mut name = Some(NAMES[0]);
    let mut body = String::new();
    let flush = |name: Option<&str>, body: &mut String| {
        if let Some(n) = name {
            common::write(dir.path(), n, body.as_bytes());
        }
        body.clear();
    };
    for line in text.split_inclusive('\n') {
        if let Some(next) = line.strip_prefix("%%% ") {
            flush(name, &mut body);
            let next = next.trim_end();
            name = NAMES.iter().copied().find(|n| *n == next);
        } else {
            body.push_str(line);
        }
    }
    flush(name, &mut body);
    common::exercise(dir.path());
});
