//! Validating a conda project whose environments name one file many times through YAML aliases
//! (issue 19; the `conda_project` fuzz target's slow input): `cargo bench -p racer-build --bench
//! conda_aliases`.
//!
//! The project file is 164 KB and within every YAML budget: 90 anchored lists of 100
//! `environment.yml`, and 810 environments aliasing them, so the one 38 KB environment file (2,000
//! dependencies) is named 87,000 times. The peer is the same environment file named once. Before
//! each file was read once (commit 75d82a6) `detect` took over 300 s on it; the goal is that it
//! costs about what the project's own YAML costs, not what 87,000 reads would.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

/// Writes the project: `anchors` lists of `per` references, `environments` aliasing them.
fn write_project(dir: &Path, anchors: usize, per: usize, environments: usize) {
    let mut yml = String::from("name: aliases\nenvironments:\n");
    let list = vec!["environment.yml"; per].join(", ");
    for a in 0..anchors {
        yml.push_str(&format!("  a{a}: &a{a} [{list}]\n"));
    }
    for e in 0..environments {
        yml.push_str(&format!("  e{e}: *a{}\n", e % anchors.max(1)));
    }
    yml.push_str("commands:\n  serve:\n    cmd: python -m http.server\n");
    std::fs::write(dir.join("conda-project.yml"), yml).unwrap();
    let deps: String = (0..2000).map(|i| format!("  - pkg{i}>=1.{i}\n")).collect();
    std::fs::write(
        dir.join("environment.yml"),
        format!("name: x\nchannels: [conda-forge]\ndependencies:\n{deps}"),
    )
    .unwrap();
}

/// The median of `rounds` runs of `detect` on `dir`, which must accept the project.
fn median(dir: &Path, rounds: usize) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            let detected = racer_build::detect(dir);
            let took = t.elapsed();
            assert!(
                matches!(detected, Ok(racer_build::Detected::CondaProject(_))),
                "{:?}",
                detected.err()
            );
            took
        })
        .collect();
    times.sort();
    times[rounds / 2]
}

fn main() {
    let aliased = tempfile::tempdir().unwrap();
    write_project(aliased.path(), 90, 100, 810);
    let once = tempfile::tempdir().unwrap();
    write_project(once.path(), 1, 1, 1);
    let bytes = std::fs::metadata(aliased.path().join("conda-project.yml"))
        .unwrap()
        .len();
    let a = median(aliased.path(), 5);
    let o = median(once.path(), 5);
    println!(
        "detect, environment.yml named 87,000 times (project file {bytes} bytes): {:.1} ms",
        a.as_secs_f64() * 1e3
    );
    println!(
        "detect, environment.yml named once:                                     {:.1} ms",
        o.as_secs_f64() * 1e3
    );
    println!(
        "ratio: {:.1}x (before commit 75d82a6: over 300 s, over 10,000x)",
        a.as_secs_f64() / o.as_secs_f64()
    );
}
